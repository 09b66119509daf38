"""The ``ordered-sender`` command, one module per command or concern.

- ``app``: the command group, logging, and the one place errors become messages and exit codes;
- ``options``: options shared by commands, and how a command opens an outbox or a sender;
- ``send``, ``run``: putting JSON lines, delivering an outbox;
- ``operate``: ``status``, ``resume``, ``dead-letters``;
- ``jsonl``: reading and checking JSON-lines input; ``progress``: waiting with a progress display
  and the summary; ``output``: the stdout console and ``--output json``;
- ``demo/``: the ``demo`` command and everything it needs (nothing of it is the library's).

The library never imports from here.
"""

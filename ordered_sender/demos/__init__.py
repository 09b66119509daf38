"""Demonstrations of why order matters, against detector models, shared by the ``ordered-sender
demo`` command and the scripts in ``examples/``.

- ``endpoint``: the endpoint a demonstration talks to (the embedded emulator or another one),
  the two ways of sending (naive requests of ten, ``OrderedSender``) and reading detectors back;
- ``motors``: the developer guide's motor-pressure model fed the same readings both ways.

Nothing here prints; each caller decides what to show.
"""

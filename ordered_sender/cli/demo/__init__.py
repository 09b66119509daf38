"""``ordered-sender demo``: the command and what it needs.

- ``command``: the command; its first part sends through faults, its second compares on a
  detector model;
- ``verdict``: which messages the first part plans and whether every lane arrived in order;
- ``report``: what the first part prints; ``targets``: where the demo sends, and its clean-up;
- ``endpoint``: the endpoint the comparison talks to, the naive and the ordered way of sending,
  and reading detectors back;
- ``motors``: the developer guide's motor-pressure model fed the same readings both ways.

Only ``command``, ``report`` and ``targets`` (what it could not clean up) print.
"""

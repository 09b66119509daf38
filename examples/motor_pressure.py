"""Why order matters: AWS's motor-pressure detector model fed the same readings two ways.

Every motor's pressure readings go (a) naively, ten at a time per BatchPutMessage request, and
(b) through ``OrderedSender`` with one lane per motor, each time to a fresh detector model; then
every motor's detector is compared with the state its readings imply. The comparison is
``ordered_sender.demos.motors`` (``ordered-sender demo`` runs it too). Exit status 0 means the
ordered run got every motor right. Run ``python examples/motor_pressure.py --help``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from example_command import command_line

from ordered_sender.demos import motors


def main(argv: Sequence[str] | None = None) -> int:
    return command_line(
        __doc__,
        {"motors": (20, "how many motors"), "readings": (30, "pressure readings per motor")},
        motors.run,
        argv,
    )


if __name__ == "__main__":
    sys.exit(main())

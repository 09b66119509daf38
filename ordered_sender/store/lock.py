"""OutboxLock: one live sender per outbox file.

Two senders delivering from one outbox would each send a lane's head, breaking the promise of one
message in flight per lane. The lock is an OS file lock beside the outbox; the OS drops it when the
process ends in any way, SIGKILL included, so a crashed sender never blocks the next one. Reading an
outbox (``ordered-sender status``) needs no lock.
"""

from __future__ import annotations

import fcntl
from pathlib import Path

from ordered_sender.errors import OutboxInUse


class OutboxLock:
    """Held from construction until ``release()``; raises OutboxInUse when another holds it."""

    def __init__(self, outbox: Path) -> None:
        self.path = Path(f"{outbox}.lock")
        self._file = open(self.path, "a+b")  # noqa: SIM115 - held open until release()
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            raise OutboxInUse(
                f"outbox {outbox} is used by another live sender; close it first or use "
                "another file"
            ) from None

    def release(self) -> None:
        self._file.close()

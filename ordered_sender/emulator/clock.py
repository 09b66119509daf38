"""A clock that moves only when told to, for the emulator's injectable ``clock``.

Tests and accelerated-time examples pass a ``ManualClock`` where ``time.time`` would go, so the
five-minute de-duplication window (and detector timers) pass without anyone waiting.
"""

from __future__ import annotations

import threading


class ManualClock:
    """Seconds since the epoch, as ``time.time`` returns, advanced explicitly; thread-safe."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._lock = threading.Lock()
        self._now = start

    def __call__(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0) and return the new time."""
        if seconds < 0:
            raise ValueError(f"A clock cannot go back: seconds={seconds!r} must be >= 0")
        with self._lock:
            self._now += seconds
            return self._now

"""Upkeep of a delivering outbox, done about once a second by whoever delivers: is the outbox file
still the one this sender locked, did the wall clock jump back, which delivered ids may be
forgotten. No threads: the caller decides when.
"""

from __future__ import annotations

import time

from ordered_sender.config import SenderConfig
from ordered_sender.events import log
from ordered_sender.outbox import Clock
from ordered_sender.store import Store
from ordered_sender.store.open import OutboxHold

EVERY_SECONDS = 1.0
"""How often the file and the clock are checked."""
FORGET_SECONDS = 60.0
"""How often delivered ids past the retention are forgotten."""
CLOCK_JUMP_SECONDS = 1.0
"""How far the wall clock must fall behind the monotonic one to count as set back."""


class Upkeep:
    """Checks for one delivering sender; ``run`` returns why delivery must stop, if it must."""

    def __init__(self, lock: OutboxHold, store: Store, clock: Clock, config: SenderConfig) -> None:
        self._lock = lock
        self._store = store
        self._clock = clock
        self._retention = config.delivered_retention_seconds
        now = clock()
        # A retry stored under a clock that was ahead is never further away than its backoff.
        store.clamp_retries(now)
        self._clock_offset = now - time.monotonic()
        self._next_check = time.monotonic() + EVERY_SECONDS
        self._next_forget = 0.0
        self.forget_old_deliveries()

    def run(self, *, force: bool = False) -> str | None:
        """The checks, when due (or now with ``force``): a sentence when the outbox file was
        deleted or replaced, else None."""
        if not force and time.monotonic() < self._next_check:
            return None
        self._next_check = time.monotonic() + EVERY_SECONDS
        problem = self._lock.problem()
        if problem is not None:
            return problem
        now = self._clock()
        offset = now - time.monotonic()
        if offset < self._clock_offset - CLOCK_JUMP_SECONDS:
            moved = self._store.clamp_retries(now)
            log.warning(
                "clock.moved_back", seconds=round(self._clock_offset - offset, 1), retries=moved
            )
        self._clock_offset = offset
        if time.monotonic() >= self._next_forget:
            self.forget_old_deliveries()
        return None

    def forget_old_deliveries(self) -> None:
        """Drop delivered ids past the retention; a daemon does this about once a minute."""
        self._store.forget_delivered(self._clock() - self._retention)
        self._next_forget = time.monotonic() + FORGET_SECONDS

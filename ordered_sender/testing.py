"""Test doubles for code that uses ordered_sender, and for ordered_sender's own tests.

``MockTransport(handler)`` stands where the boto3 transport would: ``handler`` receives each
request's messages and returns the BatchResponse to act on, so any sequence of service answers can
be scripted without a network. ``ManualClock`` is a clock that moves only when told to, for
anything that takes an injectable ``clock`` (the sender, the outbox, the local endpoint): the
five-minute de-duplication window, backoff and detector timers pass without anyone waiting. For
end-to-end tests use ``ordered_sender.emulator.Emulator``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ordered_sender.message import Message
from ordered_sender.transport import BatchResponse

Handler = Callable[[Sequence[Message]], BatchResponse]


def accept_all(messages: Sequence[Message]) -> BatchResponse:
    """The handler of a service that processes every message."""
    return BatchResponse()


class MockTransport:
    """A Transport whose answers come from ``handler``; keeps every request it was given."""

    def __init__(self, handler: Handler = accept_all) -> None:
        self.handler = handler
        self._lock = threading.Lock()
        self._requests: list[tuple[Message, ...]] = []

    def send(self, messages: Sequence[Message]) -> BatchResponse:
        with self._lock:
            self._requests.append(tuple(messages))
        return self.handler(messages)

    @property
    def requests(self) -> list[tuple[Message, ...]]:
        """Every request sent so far, in sending order."""
        with self._lock:
            return list(self._requests)


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

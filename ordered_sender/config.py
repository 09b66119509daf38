"""SenderConfig: every setting of an OrderedSender, validated when it is made.

Retry timing is expressed with tenacity's strategies (``wait_*`` and ``stop_*`` objects, combinable
with ``+`` and ``|``); the sender feeds them the attempt number and age kept in the outbox, so a
policy behaves the same across restarts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import tenacity

from ordered_sender.errors import InvalidConfig
from ordered_sender.lanes import ByInput, LaneFunction
from ordered_sender.limits import MAX_MESSAGES_PER_REQUEST, MAX_PAYLOAD_BYTES_PER_REQUEST
from ordered_sender.store import PendingLimits

Synchronous = Literal["OFF", "NORMAL", "FULL", "EXTRA"]
_SYNCHRONOUS_LEVELS = ("OFF", "NORMAL", "FULL", "EXTRA")
PermanentFailurePolicy = Literal["pause", "dead_letter"]
_PERMANENT_FAILURE_POLICIES = ("pause", "dead_letter")
WhenFull = Literal["block", "raise"]
_WHEN_FULL = ("block", "raise")


def default_retry_wait() -> tenacity.wait.wait_base:
    """Exponential backoff with jitter: 0.1 s, 0.2 s, 0.4 s ... capped at 30 s, plus up to 0.1 s
    at random so that lanes failing together do not retry in lockstep."""
    return tenacity.wait_exponential(multiplier=0.1, max=30.0) + tenacity.wait_random(0, 0.1)


@dataclass(frozen=True, slots=True)
class SenderConfig:
    """How an OrderedSender delivers. Every field is checked in ``__post_init__``."""

    lane: LaneFunction = field(default_factory=ByInput)
    """Maps each message to its lane (unit of ordering); stored with the message at put time."""

    concurrency: int = 4
    """BatchPutMessage requests in flight at once (each carries at most one message per lane)."""

    max_messages_per_request: int = MAX_MESSAGES_PER_REQUEST
    """Messages per request, 1 to 10; each from a different lane."""

    max_payload_bytes_per_request: int = MAX_PAYLOAD_BYTES_PER_REQUEST
    """Payload bytes per request; a single payload larger than this is refused at put()."""

    retry_wait: tenacity.wait.wait_base = field(default_factory=default_retry_wait)
    """Delay before a transient failure is retried, as a tenacity wait strategy."""

    retry_stop: tenacity.stop.stop_base = field(default_factory=lambda: tenacity.stop_never)
    """When a message that keeps failing transiently counts as failed for good (tenacity stop
    strategy, e.g. ``stop_after_attempt(50) | stop_after_delay(3600)``). Default: never."""

    on_permanent_failure: PermanentFailurePolicy = "pause"
    """What a message that failed for good does to its lane (a permanent error entry, a request
    refused for it alone, or ``retry_stop`` reached). "pause": the lane stops at it, with the reason
    stored, until ``resume(lane)``; nothing later in the lane overtakes it. "dead_letter": it moves
    to the dead letters (``dead_letters()``, ``redrive()``, ``drop()``) and the lane goes on."""

    max_pending_messages: int | None = None
    """Back-pressure: the most undelivered messages the outbox may hold; None for no limit."""

    max_pending_bytes: int | None = None
    """Back-pressure: the most undelivered payload bytes the outbox may hold; None for no limit."""

    when_full: WhenFull = "block"
    """What put() does when a limit would be passed: "block" until delivery makes room (at most
    put's ``timeout``, then OutboxFull), or "raise" OutboxFull at once. Either way nothing of a
    refused put is stored."""

    synchronous: Synchronous = "FULL"
    """SQLite ``PRAGMA synchronous`` of the outbox; FULL survives power loss,
    NORMAL survives process crashes only."""

    send_timestamp: bool = True
    """Send the time of put() as ``timestamp.timeInMillis`` when the caller gives none, so a message
    delivered late still carries the time it happened."""

    request_timeout: float = 10.0
    """Seconds to connect to and read from IoT Events, for a client the sender builds itself."""

    max_messages_per_second_per_lane: float | None = None
    """Pacing, off by default: at most this many messages of one lane a second (the next message
    of a lane waits 1/rate after the last one was acknowledged). IoT Events processes at most 10
    messages a second per detector and refuses the rest as ThrottlingException; with lanes of one
    detector each (``ByInputAndKey``), 10 keeps under that quota."""

    max_requests_per_second: float | None = None
    """Pacing, off by default: at most this many BatchPutMessage requests a second from this
    sender, in bursts of at most ``concurrency`` (IoT Events allows 1,000 a second per account,
    adjustable)."""

    endpoint_backoff_max: float = 2.0
    """While the endpoint fails whole requests (down, refusing connections, 5xx, 429), the sender
    sends one probe at a time, from 0.1 s apart doubling to this many seconds, whatever the
    number of lanes; the first probe that gets through releases every lane at once."""

    idle_poll_seconds: float = 1.0
    """Longest the delivery thread sleeps between looks at the outbox when nothing wakes it."""

    delivered_retention_seconds: float = 600.0
    """How long ids of delivered messages are remembered to refuse their reuse; longer than
    IoT Events' 5-minute de-duplication window, which would silently drop a reused id."""

    def __post_init__(self) -> None:
        if not callable(self.lane):
            raise InvalidConfig("lane", self.lane, "must be a lane function such as ByInput()")
        _check_int("concurrency", self.concurrency, 1, 256)
        _check_int(
            "max_messages_per_request", self.max_messages_per_request, 1, MAX_MESSAGES_PER_REQUEST
        )
        _check_int(
            "max_payload_bytes_per_request", self.max_payload_bytes_per_request, 1, 10 * 1024 * 1024
        )
        if not callable(self.retry_wait):
            raise InvalidConfig("retry_wait", self.retry_wait, "must be a tenacity wait strategy")
        if not callable(self.retry_stop):
            raise InvalidConfig("retry_stop", self.retry_stop, "must be a tenacity stop strategy")
        if self.synchronous not in _SYNCHRONOUS_LEVELS:
            raise InvalidConfig(
                "synchronous", self.synchronous, f"must be one of {', '.join(_SYNCHRONOUS_LEVELS)}"
            )
        if self.on_permanent_failure not in _PERMANENT_FAILURE_POLICIES:
            raise InvalidConfig(
                "on_permanent_failure",
                self.on_permanent_failure,
                f"must be one of {', '.join(_PERMANENT_FAILURE_POLICIES)}",
            )
        for name in ("max_pending_messages", "max_pending_bytes"):
            value = getattr(self, name)
            if value is not None:
                _check_int(name, value, 1, 2**62)
        if self.when_full not in _WHEN_FULL:
            raise InvalidConfig(
                "when_full", self.when_full, f"must be one of {', '.join(_WHEN_FULL)}"
            )
        if not isinstance(self.send_timestamp, bool):
            raise InvalidConfig("send_timestamp", self.send_timestamp, "must be True or False")
        _check_seconds("request_timeout", self.request_timeout)
        _check_seconds("idle_poll_seconds", self.idle_poll_seconds)
        _check_seconds("endpoint_backoff_max", self.endpoint_backoff_max)
        for name in ("max_messages_per_second_per_lane", "max_requests_per_second"):
            rate = getattr(self, name)
            if rate is not None and (
                not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 < rate < 1e9
            ):
                raise InvalidConfig(name, rate, "must be a positive number per second, or None")
        _check_seconds("delivered_retention_seconds", self.delivered_retention_seconds)

    @property
    def pending_limits(self) -> PendingLimits | None:
        """The back-pressure limits as the store takes them, None when there are none."""
        if self.max_pending_messages is None and self.max_pending_bytes is None:
            return None
        return PendingLimits(self.max_pending_messages, self.max_pending_bytes)


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InvalidConfig(name, value, f"must be an integer from {low} to {high}")


def _check_seconds(name: str, value: object) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise InvalidConfig(name, value, "must be a positive number of seconds")

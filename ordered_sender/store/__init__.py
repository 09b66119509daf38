"""The outbox: where messages wait, durably, until IoT Events acknowledged them.

``Store`` is the protocol every backend implements (``SqliteStore`` is the embedded default); one
contract suite in the tests runs against each. A store holds the whole delivery state: attempt
counts, next-attempt times, last errors and lane pauses, so a new process resumes exactly where the
last one stopped. Stores decide nothing: the scheduler's decisions are applied as given, each batch
of them in one transaction.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ordered_sender.message import Message


@dataclass(frozen=True, slots=True)
class NewEntry:
    """A validated message and its lane, about to be stored."""

    message: Message
    lane: str


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """A pending message as the outbox holds it."""

    seq: int
    """Position in the outbox: commit order, the order of its lane."""
    message: Message
    lane: str
    enqueued_at: float
    attempts: int = 0
    """Attempts made so far (requests that carried it and came back, or failed, not delivered)."""
    first_attempt_at: float | None = None
    next_attempt_at: float = 0.0
    solo: bool = False
    """Send alone: a request it was in was refused whole, so the bad message must be isolated."""
    last_error_code: str | None = None
    last_error_text: str | None = None


class MessageState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"


@dataclass(frozen=True, slots=True)
class MessageStatus:
    message_id: str
    lane: str
    seq: int
    state: MessageState
    lane_paused: bool


@dataclass(frozen=True, slots=True)
class PausedLane:
    """A lane stopped at its head after a permanent failure, and why."""

    lane: str
    seq: int
    message_id: str
    error_code: str
    error_text: str
    paused_at: float


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    """Messages not yet delivered, in every lane."""
    blocked: int
    """Of those, messages in paused lanes."""
    paused_lanes: int
    lanes: int
    """Lanes with pending messages."""


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int


@dataclass(frozen=True, slots=True)
class Retry:
    """Try again at ``next_attempt_at`` (solo when the message must be isolated)."""

    seq: int
    attempts: int
    first_attempt_at: float
    next_attempt_at: float
    error_code: str
    error_text: str
    solo: bool = False


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop the lane at this message, which keeps its place at the head."""

    seq: int
    lane: str
    attempts: int
    first_attempt_at: float
    error_code: str
    error_text: str


Decision = Delivered | Retry | Pause


class Store(Protocol):
    def add(self, entries: Sequence[NewEntry], now: float) -> list[StoredMessage]:
        """Store all entries in one transaction, in order, or none (InvalidMessage on a used id)."""
        ...

    def ready_heads(
        self, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        """Heads of unpaused lanes not in ``exclude_lanes`` whose next attempt is due: earliest
        due first, then oldest (a head never tried is due from time 0)."""
        ...

    def next_attempt_at(self, exclude_lanes: Collection[str]) -> float | None:
        """Earliest next-attempt time among heads of unpaused lanes not excluded, if any."""
        ...

    def apply(self, decisions: Sequence[Decision], now: float) -> None:
        """Apply the outcome of one request, atomically."""
        ...

    def paused_lanes(self) -> list[PausedLane]: ...

    def resume(self, lane: str, now: float) -> bool:
        """Unpause a lane and make its head due now; False when it was not paused."""
        ...

    def status(self, message_id: str) -> MessageStatus | None: ...

    def counts(self) -> OutboxCounts:
        """Exact counts; reads every pending message, so not for hot paths."""
        ...

    def deliverable_lanes(self) -> int:
        """Lanes with pending messages that are not paused: cheap, for flush()."""
        ...

    def forget_delivered(self, before: float) -> int:
        """Drop delivered ids older than ``before``; returns how many."""
        ...

    def close(self) -> None: ...

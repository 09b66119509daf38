"""The outbox: where messages wait, durably, until IoT Events acknowledged them.

``Store`` is the protocol every backend implements (``SqliteStore`` is the embedded default,
``PostgresStore`` the one for many hosts); one contract suite in the tests runs against each. A
store holds the whole delivery state: attempt counts, next-attempt times, last errors and lane
pauses, so a new process resumes exactly where the last one stopped. Stores decide nothing: the
scheduler's decisions are applied as given, each batch of them in one transaction.
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
    retry_wait: float = 0.0
    """The backoff that set ``next_attempt_at``: after the clock jumps back, the retry is never
    further away than this."""
    retry_age: float = 0.0
    """Seconds spent trying so far, added up attempt by attempt with each step bounded, so that a
    clock jumping forward does not age the message at once (for ``stop_after_delay``)."""
    last_attempt_at: float | None = None


class MessageState(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD_LETTER = "dead_letter"
    """Failed for good under the dead-letter policy; waits for ``redrive`` or ``drop``."""
    DROPPED = "dropped"
    """A dead letter an operator dropped; only its id is kept, like a delivered one."""


@dataclass(frozen=True, slots=True)
class MessageStatus:
    message_id: str
    lane: str
    seq: int
    state: MessageState
    lane_paused: bool


PAUSED_BY_OPERATOR = "PausedByOperator"
"""The ``error_code`` of a lane an operator paused (``pause(lane)``); its ``error_text`` is the
reason given, or ``NO_REASON_GIVEN``."""

NO_REASON_GIVEN = "paused by an operator, no reason given"


@dataclass(frozen=True, slots=True)
class PausedLane:
    """A lane stopped at its head, and why: after a permanent failure (the failure's code and
    text, at the message that failed) or by an operator (``PAUSED_BY_OPERATOR`` and the reason,
    at the head when it was paused)."""

    lane: str
    seq: int
    message_id: str
    error_code: str
    error_text: str
    paused_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that failed for good and left its lane (``on_permanent_failure="dead_letter"``)."""

    lane: str
    seq: int
    message_id: str
    input_name: str
    error_code: str
    error_text: str
    attempts: int
    enqueued_at: float
    failed_at: float


@dataclass(frozen=True, slots=True)
class LaneOverview:
    """One lane with pending messages, as ``status`` shows it."""

    lane: str
    pending: int
    oldest_enqueued_at: float
    head_message_id: str
    attempts: int
    next_attempt_at: float
    last_error_code: str | None
    last_error_text: str | None
    paused: bool


@dataclass(frozen=True, slots=True)
class PendingLimits:
    """Back-pressure: the most pending messages and payload bytes an outbox may hold (None: no
    limit). An ``add`` that would pass either raises OutboxFull and stores nothing."""

    messages: int | None = None
    payload_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxCounts:
    pending: int
    """Messages not yet delivered, in every lane."""
    blocked: int
    """Of those, messages in paused lanes."""
    paused_lanes: int
    lanes: int
    """Lanes with pending messages."""
    dead_letters: int = 0
    """Messages in the dead letters."""
    pending_bytes: int = 0
    """Payload bytes of the pending messages (what ``max_pending_bytes`` limits)."""


@dataclass(frozen=True, slots=True)
class Delivered:
    seq: int
    next_head_not_before: float = 0.0
    """Pacing: the lane's next message may not be sent before this time."""


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
    retry_wait: float = 0.0
    retry_age: float = 0.0


@dataclass(frozen=True, slots=True)
class Pause:
    """Stop the lane at this message, which keeps its place at the head."""

    seq: int
    lane: str
    attempts: int
    first_attempt_at: float
    error_code: str
    error_text: str
    retry_age: float = 0.0


@dataclass(frozen=True, slots=True)
class MoveToDeadLetters:
    """Take this message out of its lane into the dead letters; the lane goes on."""

    seq: int
    lane: str
    attempts: int
    first_attempt_at: float
    error_code: str
    error_text: str


Decision = Delivered | Retry | Pause | MoveToDeadLetters


class Store(Protocol):
    """Every method raises StoreError (or NotAnOutbox) for a fault of the storage itself."""

    def add(
        self, entries: Sequence[NewEntry], now: float, limits: PendingLimits | None = None
    ) -> list[StoredMessage]:
        """Store all entries in one transaction, in order, or none (InvalidMessage on a used id,
        OutboxFull when ``limits`` would be passed)."""
        ...

    def ready_heads(
        self, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        """Heads of unpaused lanes not in ``exclude_lanes`` whose next attempt is due, oldest put
        first: a retried head due again goes before heads put after it.

        On PostgreSQL, only heads of lanes this worker holds the lease of: it first leases due
        lanes nobody holds, up to its fair share among the live workers (postgres_leases), and
        another worker's lanes are never returned. The lease is given back by the ``apply`` that
        records the head's outcome, so every head returned must be applied."""
        ...

    def pending_messages(self, seqs: Sequence[int]) -> list[StoredMessage]:
        """The messages of ``seqs`` that are still pending, as stored now, by seq: the sender
        judges a failed attempt from these, since a ``resume`` while a head was in flight (from
        any process) reset its attempts."""
        ...

    def next_attempt_at(self, exclude_lanes: Collection[str]) -> float | None:
        """Earliest next-attempt time among heads of unpaused lanes not excluded, if any (on
        PostgreSQL, of this worker's lanes and lanes nobody holds)."""
        ...

    def apply(self, decisions: Sequence[Decision], now: float) -> None:
        """Apply the outcome of one request, atomically. On PostgreSQL an outcome is recorded
        only while this worker's lease on its lane still carries the token the head was handed
        out with; one whose lane another worker took over is logged and dropped."""
        ...

    def paused_lanes(self) -> list[PausedLane]: ...

    def pause(self, lane: str, now: float, reason: str | None = None) -> bool:
        """Stop a lane at its head by hand (``PAUSED_BY_OPERATOR``, the reason as its text);
        False when it was paused already, NothingPending when it has no pending messages. A head
        in flight meanwhile still has its outcome recorded; the lane stays paused whatever it is
        (a delivery moves the pause to the next head; with nothing left the lane is gone)."""
        ...

    def resume(self, lane: str, now: float) -> bool:
        """Unpause a lane and make its head due now with its attempts and age reset; False when
        it was not paused."""
        ...

    def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        """Dead letters, oldest put first, of one lane or all."""
        ...

    def redrive(self, message_id: str, now: float) -> str | None:
        """Put a dead letter back at the head of its lane with the same messageId and fresh
        attempts; returns its lane, None when there is no such dead letter. Raises LanePaused
        when its lane is paused."""
        ...

    def drop(self, message_id: str, now: float) -> bool:
        """Forget a dead letter (its id stays refused for the retention); False if none."""
        ...

    def changed_elsewhere(self) -> bool:
        """Whether another connection committed since the last call (cheap, for waking)."""
        ...

    def pending_totals(self) -> tuple[int, int]:
        """Pending messages and their payload bytes, without counting them."""
        ...

    def clamp_retries(self, now: float) -> int:
        """After the clock jumped back: no retry further away than the backoff that set it."""
        ...

    def lanes_overview(self, limit: int) -> list[LaneOverview]:
        """Lanes with pending messages, paused first then oldest head first."""
        ...

    def oldest_pending_enqueued_at(self) -> float | None:
        """When the oldest pending message was put (paused lanes included), None when nothing is
        pending: read from the lane heads, without counting the messages behind them."""
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

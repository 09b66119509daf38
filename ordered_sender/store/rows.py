"""What every store does alike with what it reads and writes: a row of pending message columns
made a StoredMessage, a status or lane-overview row made its value, a new message made the
parameters of its INSERT, and the back-pressure verdict on a put. Pure: no queries, no
connections."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ordered_sender.errors import OutboxFull
from ordered_sender.message import Message
from ordered_sender.store import (
    LaneOverview,
    MessageState,
    MessageStatus,
    NewEntry,
    PendingLimits,
    StoredMessage,
)


def new_message_row(entry: NewEntry, now: float) -> dict[str, Any]:
    """The named parameters of both stores' INSERT_MESSAGE for a new entry put at ``now``."""
    message = entry.message
    return {
        "message_id": message.message_id,
        "lane": entry.lane,
        "input_name": message.input_name,
        "payload": message.payload,
        "timestamp_ms": message.timestamp_ms,
        "enqueued_at": now,
    }


def stored_message(row: Sequence[Any]) -> StoredMessage:
    """The one place a row becomes a value: the columns of MESSAGE_COLUMNS, in that order."""
    (
        seq,
        message_id,
        lane,
        input_name,
        payload,
        timestamp_ms,
        enqueued_at,
        attempts,
        first_attempt_at,
        next_attempt_at,
        solo,
        last_error_code,
        last_error_text,
        retry_wait,
        retry_age,
        last_attempt_at,
    ) = row
    return StoredMessage(
        seq=seq,
        message=Message(input_name, bytes(payload), message_id, timestamp_ms),
        lane=lane,
        enqueued_at=enqueued_at,
        attempts=attempts,
        first_attempt_at=first_attempt_at,
        next_attempt_at=next_attempt_at,
        solo=bool(solo),
        last_error_code=last_error_code,
        last_error_text=last_error_text,
        retry_wait=retry_wait,
        retry_age=retry_age,
        last_attempt_at=last_attempt_at,
    )


def message_status(row: Sequence[Any]) -> MessageStatus:
    """A row of SELECT_STATUS: id, lane, seq, state, whether its lane is paused."""
    state = MessageState(row[3])
    paused = state is MessageState.PENDING and bool(row[4])
    return MessageStatus(row[0], row[1], row[2], state, paused)


def lane_overview(row: Sequence[Any]) -> LaneOverview:
    """A row of LANES_OVERVIEW."""
    lane, pending, oldest, head_id, attempts, due, code, text, paused = row
    return LaneOverview(
        lane, pending, oldest, head_id, attempts, due, code, text, paused=bool(paused)
    )


def check_room(
    pending: int, pending_bytes: int, entries: Sequence[NewEntry], limits: PendingLimits
) -> None:
    """OutboxFull when adding ``entries`` to ``pending`` messages of ``pending_bytes`` would pass
    ``limits``."""
    adding = len(entries)
    adding_bytes = sum(len(entry.message.payload) for entry in entries)
    if limits.messages is not None and pending + adding > limits.messages:
        raise OutboxFull(
            f"the outbox holds {pending} pending messages; {adding} more would pass "
            f"max_pending_messages={limits.messages}"
        )
    if limits.payload_bytes is not None and pending_bytes + adding_bytes > limits.payload_bytes:
        raise OutboxFull(
            f"the outbox holds {pending_bytes} bytes of pending payload; {adding_bytes} more "
            f"would pass max_pending_bytes={limits.payload_bytes}"
        )

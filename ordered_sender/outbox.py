"""Outbox: the put side of an outbox file, and its operator's handles, without delivery.

Putting validates each message, fixes its lane and commits it; nothing here sends. Any number of
Outbox objects, in any number of processes, may put into one file while a single OrderedSender
(``ordered-sender run``, say) delivers it: SQLite serialises their commits, and the order of
commits is the order of each lane. An OrderedSender holds an Outbox of its own and tells it, through
``Changes``, when deliveries happen, so waiting for one costs no polling.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Protocol, Self

from ordered_sender.config import SenderConfig
from ordered_sender.errors import (
    DeliveryError,
    DeliveryFailed,
    LanePaused,
    OutboxFull,
    SenderClosed,
    StoreError,
)
from ordered_sender.events import debug_enabled, log
from ordered_sender.message import build_message, unpack_put_item
from ordered_sender.store import (
    NO_REASON_GIVEN,
    PAUSED_BY_OPERATOR,
    DeadLetter,
    MessageState,
    NewEntry,
    OutboxCounts,
    PausedLane,
    Store,
    StoredMessage,
)
from ordered_sender.store.open import (
    DatabaseUrl,
    OutboxTarget,
    add_in_transaction,
    open_store,
    outbox_target,
)

Clock = Callable[[], float]
"""Seconds since the Unix epoch; ``wall_clock`` unless a test injects its own."""


def wall_clock() -> float:
    """``time.time()``, looked up at each call so that tools that patch it (freezegun) apply."""
    return time.time()


PutItem = (
    tuple[str, object] | tuple[str, object, str | None] | tuple[str, object, str | None, int | None]
)
"""``(input_name, payload)``, optionally followed by ``message_id`` and ``timestamp_ms``."""


class Changes(Protocol):
    """How an Outbox waits for deliveries to change something (a message delivered, room made).

    ``watching()`` is held from before each look at the store until the wait, so that no change
    between the two is missed; ``wait`` returns False once ``deadline`` (time.monotonic) passed;
    ``check`` raises DeliveryError when a message cannot arrive without someone acting.
    """

    def watching(self) -> contextlib.AbstractContextManager[object]: ...

    def wait(self, deadline: float | None) -> bool: ...

    def check(self, message_id: str, lane: str) -> None: ...


@dataclass(frozen=True, slots=True)
class PolledChanges:
    """A sender in another process delivers, so nothing tells of a change: look every poll."""

    poll_seconds: float

    def watching(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext()

    def wait(self, deadline: float | None) -> bool:
        seconds = poll_seconds(self.poll_seconds, deadline)
        if seconds is None:
            return False
        time.sleep(seconds)
        return True

    def check(self, message_id: str, lane: str) -> None:
        """An Outbox cannot tell whether anything delivers its file."""


def poll_seconds(poll: float, deadline: float | None) -> float | None:
    """A poll interval, or what is left of it before ``deadline``; None once that passed."""
    if deadline is None:
        return poll
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        return None
    return min(remaining, poll)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Proof that a message is committed to the outbox, and a handle to wait for its delivery.

    A receipt of ``put_many(..., connection=...)`` is handed out before the caller's transaction
    commits: its message exists for others only once it does, and never if it rolls back. Such a
    receipt answers from what it saw: until it saw its message in the outbox, ``delivered()`` is
    False and ``result()`` waits for the message to appear (the commit) and then be delivered.
    """

    message_id: str
    lane: str
    seq: int
    _outbox: Outbox = field(repr=False, compare=False)
    _committed: threading.Event | None = field(default=None, repr=False, compare=False)
    """For a put inside the caller's transaction: set once its message was seen committed."""

    def result(self, timeout: float | None = None) -> None:
        """Block until the message is delivered.

        Raises ``LanePaused`` while its lane is paused (it will not move until ``resume``),
        ``DeliveryFailed`` when it was dead-lettered, ``DeliveryError`` when the sender stopped
        first (it stays in the outbox) and ``TimeoutError`` when ``timeout`` seconds pass first.
        A receipt of a put inside the caller's transaction that never saw its message says so
        in its TimeoutError: the transaction rolled back, or has not committed yet (with
        ``timeout=None`` it would wait for ever after a rollback).
        """
        self._outbox.wait_delivered(self.message_id, timeout, committed=self._committed)

    def delivered(self) -> bool:
        """Whether the message was delivered (False for a put inside the caller's transaction
        until its commit was seen)."""
        self._outbox._check_open()
        status = self._outbox.store.status(self.message_id)
        if status is None:
            # A missing id was delivered and forgotten after the retention period, unless its
            # put was in a transaction not seen committed: then it may not exist yet, or ever.
            return self._committed is None or self._committed.is_set()
        if self._committed is not None:
            self._committed.set()
        return status.state is MessageState.DELIVERED


class Outbox:
    """Puts messages into an outbox file for a sender, in this or another process, to deliver.

    ``create=False`` refuses to make a new file (NotAnOutbox), for tools that only read or operate
    an outbox that must exist already.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | DatabaseUrl,
        config: SenderConfig | None = None,
        *,
        clock: Clock = wall_clock,
        create: bool = True,
        changes: Changes | None = None,
    ) -> None:
        self.config = config or SenderConfig()
        self.path: OutboxTarget = outbox_target(path)
        self.clock = clock
        self._changes = changes or PolledChanges(self.config.idle_poll_seconds)
        self._limits = self.config.pending_limits
        self._closed = False
        self.store: Store = open_store(
            self.path, synchronous=self.config.synchronous, create=create
        )

    def put(
        self,
        input_name: str,
        payload: object,
        *,
        message_id: str | None = None,
        timestamp_ms: int | None = None,
        timeout: float | None = None,
    ) -> Receipt:
        """Commit one message and return once it is on disk (see ``put_many``)."""
        self._check_open()
        now = self.clock()
        entry = self._entry(input_name, payload, message_id, timestamp_ms, now)
        return self._commit_entries([entry], now, timeout, None)[0]

    def put_many(
        self,
        items: Iterable[PutItem],
        *,
        timeout: float | None = None,
        connection: object | None = None,
    ) -> list[Receipt]:
        """Commit several messages in one transaction: all of them, in order, or none.

        Each item is ``(input_name, payload)``, optionally followed by ``message_id`` and
        ``timestamp_ms`` (None for either means: generate one, or use the time of the put). When
        the outbox is at its pending limit, blocks until delivery makes room (at most ``timeout``
        seconds, then OutboxFull), or raises OutboxFull at once with ``when_full="raise"``.

        ``connection`` (a PostgreSQL outbox only): the caller's psycopg connection to the
        outbox's database, in a transaction; the messages are put inside that transaction, so
        they commit with the caller's own writes or vanish with them (the transactional outbox).
        Their receipts know it: one that has not yet seen its message committed answers
        ``delivered()`` False, and ``result()`` waits for the commit, then the delivery (a
        rollback ends in its TimeoutError, which says so). A full outbox then raises
        OutboxFull at once: waiting would hold the caller's transaction open.
        """
        self._check_open()
        now = self.clock()
        entries = [self._entry(*unpack_put_item(item), now) for item in items]
        return self._commit_entries(entries, now, timeout, connection)

    def _entry(
        self,
        input_name: object,
        payload: object,
        message_id: object,
        timestamp_ms: object,
        now: float,
    ) -> NewEntry:
        """One validated message and its lane; None for ``timestamp_ms`` is the time of the
        put when the config sends timestamps."""
        if timestamp_ms is None and self.config.send_timestamp:
            timestamp_ms = int(now * 1000)
        message = build_message(
            input_name,
            payload,
            message_id=message_id,
            timestamp_ms=timestamp_ms,
            max_payload_bytes=self.config.max_payload_bytes_per_request,
        )
        return NewEntry(message, self.config.lane(message))

    def _commit_entries(
        self,
        entries: list[NewEntry],
        now: float,
        timeout: float | None,
        connection: object | None,
    ) -> list[Receipt]:
        """Commit the entries (inside ``connection``'s transaction, if given) and receipt them."""
        try:
            if connection is None:
                stored = self._add_when_room(entries, now, timeout)
            else:
                stored = add_in_transaction(
                    self.path, self.store, connection, entries, now, self._limits
                )
        except StoreError:
            if self._closed:  # closed by another thread while this put waited or wrote
                raise SenderClosed(f"the outbox {self.path} was closed during the put") from None
            raise
        for record in stored if debug_enabled() else ():
            log.debug(
                "message.enqueued",
                lane=record.lane,
                input_name=record.message.input_name,
                message_id=record.message.message_id,
                seq=record.seq,
                payload_bytes=len(record.message.payload),
            )
        if connection is not None:
            return [
                Receipt(r.message.message_id, r.lane, r.seq, self, threading.Event())
                for r in stored
            ]
        return [Receipt(r.message.message_id, r.lane, r.seq, self) for r in stored]

    def _add_when_room(
        self, entries: list[NewEntry], now: float, timeout: float | None
    ) -> list[StoredMessage]:
        limits = self._limits
        if limits is None:
            return self.store.add(entries, now)
        _check_fits_at_all(entries, self.config)
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changes.watching():
            while True:
                try:
                    return self.store.add(entries, now, limits)
                except OutboxFull as full:
                    if self.config.when_full == "raise":
                        raise
                    if not self._changes.wait(deadline):
                        raise OutboxFull(f"{full} (waited {timeout} s for room)") from None
                self._check_open()

    # -- operating -----------------------------------------------------------------------------

    def paused_lanes(self) -> list[PausedLane]:
        self._check_open()
        return self.store.paused_lanes()

    def pause(self, lane: str, reason: str | None = None) -> bool:
        """Stop delivering a lane until ``resume(lane)``: its pending messages stay, none is sent,
        and ``paused_lanes()`` lists it with the code ``PausedByOperator`` and ``reason``. True
        when this call paused it, False when it was paused already; NothingPending when the lane
        has no pending messages (a lane exists only while messages wait in it).

        A head in flight when the pause lands still has its outcome recorded and the lane stays
        paused: delivered, the pause moves on to the next message; failed, the failure policy
        applies as ever (a failure that pauses the lane names itself instead). When the last
        pending message is delivered that way, the lane is gone, pause and all: nothing is left
        to hold. Receipts of the lane's messages raise LanePaused from the pause on, that head's
        too while its outcome is not yet recorded (``delivered()`` tells once it is).
        ``resume`` resets the head's attempts, as after any pause."""
        self._check_open()
        paused = self.store.pause(lane, self.clock(), reason)
        if paused:
            log.info(
                "lane.paused",
                lane=lane,
                error_code=PAUSED_BY_OPERATOR,
                error_text=reason or NO_REASON_GIVEN,
            )
        return paused

    def resume(self, lane: str) -> bool:
        """Retry the head of a paused lane now, its attempts and age reset; False if the lane was
        not paused."""
        self._check_open()
        resumed = self.store.resume(lane, self.clock())
        if resumed:
            log.info("lane.resumed", lane=lane)
        return resumed

    def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        """Messages that failed for good under ``on_permanent_failure="dead_letter"``."""
        self._check_open()
        return self.store.dead_letters(lane)

    def redrive(self, message_id: str) -> bool:
        """Put a dead letter back at the head of its lane, same messageId, fresh attempts; False
        when there is no such dead letter. LanePaused when its lane is paused (resume first)."""
        self._check_open()
        lane = self.store.redrive(message_id, self.clock())
        if lane is None:
            return False
        log.info("message.redriven", lane=lane, message_id=message_id)
        return True

    def drop(self, message_id: str) -> bool:
        """Forget a dead letter for good; False when there is no such dead letter."""
        self._check_open()
        dropped = self.store.drop(message_id, self.clock())
        if dropped:
            log.info("message.dropped", message_id=message_id)
        return dropped

    def counts(self) -> OutboxCounts:
        self._check_open()
        return self.store.counts()

    def pause_reason(self, lane: str) -> str:
        self._check_open()
        for paused in self.store.paused_lanes():
            if paused.lane == lane:
                return (
                    f"lane paused at message {paused.message_id}: "
                    f"{paused.error_code}: {paused.error_text}"
                )
        return "lane paused"

    def wait_delivered(
        self,
        message_id: str,
        timeout: float | None = None,
        *,
        committed: threading.Event | None = None,
    ) -> None:
        """Block until the message is delivered; see ``Receipt.result`` for what it raises.
        ``committed`` (a put inside the caller's transaction): set once the message was seen; a
        missing message not yet seen is waited for, as its transaction may not have committed."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changes.watching():
            while True:
                if self._closed:
                    raise DeliveryError(
                        message_id, "", "the outbox was closed first; it stays there"
                    )
                status = self.store.status(message_id)
                if status is None and committed is not None and not committed.is_set():
                    if not self._changes.wait(deadline):
                        raise TimeoutError(
                            f"message {message_id} did not appear in the outbox within "
                            f"{timeout} s: the transaction of its put_many(connection=...) "
                            "rolled back, or has not committed yet"
                        )
                    continue
                if status is not None and committed is not None:
                    committed.set()
                # A missing id was delivered and forgotten after the retention period.
                if status is None or status.state is MessageState.DELIVERED:
                    return
                if status.state in (MessageState.DEAD_LETTER, MessageState.DROPPED):
                    raise self._failed(message_id, status.lane, status.state)
                if status.lane_paused:
                    raise LanePaused(message_id, status.lane, self.pause_reason(status.lane))
                self._changes.check(message_id, status.lane)
                if not self._changes.wait(deadline):
                    raise TimeoutError(f"message {message_id} not delivered within {timeout} s")

    def _failed(self, message_id: str, lane: str, state: MessageState) -> DeliveryFailed:
        if state is MessageState.DROPPED:
            return DeliveryFailed(message_id, lane, "Dropped", "it was dead-lettered and dropped")
        for letter in self.store.dead_letters(lane):
            if letter.message_id == message_id:
                return DeliveryFailed(
                    message_id,
                    lane,
                    letter.error_code,
                    f"dead-lettered after {letter.attempts} attempts: {letter.error_code}: "
                    f"{letter.error_text}; redrive({message_id!r}) sends it again",
                )
        return DeliveryFailed(message_id, lane, "unknown", "dead-lettered")

    def _check_open(self) -> None:
        if self._closed:
            raise SenderClosed(f"the outbox {self.path} was closed here; open it again to go on")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _check_fits_at_all(entries: list[NewEntry], config: SenderConfig) -> None:
    """A put larger than the limit itself would wait forever: refuse it at once."""
    if config.max_pending_messages is not None and len(entries) > config.max_pending_messages:
        raise OutboxFull(
            f"{len(entries)} messages in one put can never fit under "
            f"max_pending_messages={config.max_pending_messages}; put fewer at a time"
        )
    size = sum(len(entry.message.payload) for entry in entries)
    if config.max_pending_bytes is not None and size > config.max_pending_bytes:
        raise OutboxFull(
            f"{size} payload bytes in one put can never fit under "
            f"max_pending_bytes={config.max_pending_bytes}; put fewer at a time"
        )

"""SqliteStore: the embedded outbox in one SQLite file (WAL, synchronous FULL by default).

The tables and every statement are in ``sqlite_schema``; opening, checking and migrating a file in
``sqlite_file``; ``sqlite_errors`` turns every sqlite3 error into StoreError or NotAnOutbox, so no
sqlite3 exception leaves this module as itself. The store takes no decisions and holds no threads;
one lock serialises use of its connection, and SQLite serialises writers across processes.

Reads go through a second, read-only connection with a lock of its own: in WAL mode they see every
committed write and need not wait while a commit holds the writing connection through its fsync,
so planning the next request overlaps the commit of the last one.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ordered_sender.errors import InvalidMessage, LanePaused, NothingPending, OutboxFull
from ordered_sender.store import (
    NO_REASON_GIVEN,
    PAUSED_BY_OPERATOR,
    DeadLetter,
    Decision,
    Delivered,
    LaneOverview,
    MessageStatus,
    MoveToDeadLetters,
    NewEntry,
    OutboxCounts,
    Pause,
    PausedLane,
    PendingLimits,
    Retry,
    StoredMessage,
)
from ordered_sender.store import sqlite_schema as sql
from ordered_sender.store.group_commit import GroupCommit
from ordered_sender.store.rows import (
    check_room,
    lane_overview,
    message_status,
    new_message_row,
    stored_message,
)
from ordered_sender.store.sqlite_errors import translated_errors
from ordered_sender.store.sqlite_file import open_outbox, open_reader

FORGET_CHUNK = 2_000
"""Delivered rows forgotten per transaction (a few milliseconds of the writer each)."""


class SqliteStore:
    """The Store protocol on one SQLite file."""

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: str = "FULL",
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        """Open the outbox at ``path``. ``create=False`` refuses (NotAnOutbox) to make one;
        ``read_only`` opens it for reading alone (``status``), on a read-only file or disk too."""
        self.path = Path(path)
        self._connection = open_outbox(
            self.path,
            schema=sql.SCHEMA,
            schema_version=sql.SCHEMA_VERSION,
            migrations=sql.MIGRATIONS,
            create=create,
            read_only=read_only,
            synchronous=synchronous,
        )
        # The sender's threads share this connection (check_same_thread is off in open_outbox);
        # this lock serialises them, and writes waiting together share a commit.
        self._lock = threading.RLock()
        self._writes = GroupCommit(self._connection, self._using, self.path)
        self._data_version: int | None = None
        self._reader, self._reader_lock = self._connection, self._lock
        if not read_only:
            try:
                self._reader = open_reader(self.path)
            except BaseException:
                self._connection.close()
                raise
            self._reader_lock = threading.RLock()

    @contextmanager
    def _using(self) -> Iterator[sqlite3.Connection]:
        """The connection, alone, with sqlite3's errors translated."""
        with self._lock, translated_errors(self.path):
            yield self._connection

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The reading connection, alone, with sqlite3's errors translated."""
        with self._reader_lock, translated_errors(self.path):
            yield self._reader

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """Several reads that see one state of the file."""
        with self._read() as connection:
            connection.execute("BEGIN DEFERRED")
            try:
                yield connection
            finally:
                connection.execute("COMMIT")

    def add(
        self, entries: Sequence[NewEntry], now: float, limits: PendingLimits | None = None
    ) -> list[StoredMessage]:
        # One message is refused (full, or its id reused) before anything of it is stored: its
        # first statement fails whole, so in a group it needs no savepoint of its own. Without
        # limits to check, it is a single INSERT (its lane opened by a trigger): alone, SQLite
        # commits it by itself.
        one = len(entries) == 1
        return self._writes.run(
            lambda connection: _add(connection, entries, now, limits),
            refusals=_REFUSED_BEFORE_ANY_CHANGE if one else (),
            one_statement=one and limits is None,
        )

    def changed_elsewhere(self) -> bool:
        """True when another connection (another process's Outbox, say) committed since the
        last call: a cheap look (no disk read) that lets a sender notice their puts at once."""
        with self._using() as connection:
            (version,) = connection.execute("PRAGMA data_version").fetchone()
        changed = version != self._data_version
        self._data_version = version
        return bool(changed)

    def pending_totals(self) -> tuple[int, int]:
        """Pending messages and their payload bytes, from the totals the triggers keep."""
        with self._read() as connection:
            pending, pending_bytes = connection.execute(sql.SELECT_TOTALS).fetchone()
        return int(pending), int(pending_bytes)

    def ready_heads(
        self, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        with self._read() as connection:
            rows = connection.execute(
                sql.READY_HEADS, {"now": now, "limit": limit + len(exclude_lanes)}
            ).fetchall()
        heads = [stored_message(row) for row in rows if row[2] not in exclude_lanes]
        return heads[:limit]

    def pending_messages(self, seqs: Sequence[int]) -> list[StoredMessage]:
        with self._read() as connection:
            rows = connection.execute(
                sql.PENDING_MESSAGES, {"seqs": json.dumps(list(seqs))}
            ).fetchall()
        return [stored_message(row) for row in rows]

    def next_attempt_at(self, exclude_lanes: Collection[str]) -> float | None:
        with self._read() as connection:
            rows = connection.execute(
                sql.UPCOMING_HEADS, {"limit": len(exclude_lanes) + 1}
            ).fetchall()
        for lane, next_attempt_at in rows:
            if lane not in exclude_lanes:
                return float(next_attempt_at)
        return None

    def apply(self, decisions: Sequence[Decision], now: float) -> None:
        def work(connection: sqlite3.Connection) -> None:
            delivered = [d for d in decisions if isinstance(d, Delivered)]
            if delivered:
                not_before = max(d.next_head_not_before for d in delivered)
                _deliver_all(connection, [d.seq for d in delivered], now, not_before)
            for decision in decisions:
                if not isinstance(decision, Delivered):
                    _apply(connection, decision, now)

        self._writes.run(work, one_statement=all(isinstance(d, Delivered) for d in decisions))

    def paused_lanes(self) -> list[PausedLane]:
        with self._read() as connection:
            rows = connection.execute(sql.SELECT_PAUSED).fetchall()
        return [PausedLane(*row) for row in rows]

    def pause(self, lane: str, now: float, reason: str | None = None) -> bool:
        def work(connection: sqlite3.Connection) -> bool:
            row = connection.execute(sql.SELECT_LANE, {"lane": lane}).fetchone()
            if row is None:
                raise NothingPending(lane)
            if row[1] is not None:
                return False
            connection.execute(
                sql.PAUSE_LANE_BY_OPERATOR,
                {
                    "lane": lane,
                    "now": now,
                    "code": PAUSED_BY_OPERATOR,
                    "text": reason or NO_REASON_GIVEN,
                },
            )
            return True

        return self._writes.run(work, refusals=(NothingPending,))

    def resume(self, lane: str, now: float) -> bool:
        def work(connection: sqlite3.Connection) -> bool:
            row = connection.execute(sql.SELECT_PAUSED_SEQ, {"lane": lane}).fetchone()
            if row is None:
                return False
            connection.execute(sql.RESUME_LANE, {"lane": lane, "now": now})
            connection.execute(sql.RESET_ATTEMPTS, {"now": now, "seq": row[0]})
            return True

        return self._writes.run(work)

    def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        with self._read() as connection:
            rows = connection.execute(sql.SELECT_DEAD_LETTERS, {"lane": lane}).fetchall()
        return [DeadLetter(*row) for row in rows]

    def redrive(self, message_id: str, now: float) -> str | None:
        def work(connection: sqlite3.Connection) -> str | None:
            found = connection.execute(
                sql.SELECT_DEAD_LETTER, {"message_id": message_id}
            ).fetchone()
            if found is None:
                return None
            seq, lane = found
            head = connection.execute(sql.SELECT_LANE, {"lane": lane}).fetchone()
            if head is not None and head[1] is not None:
                raise LanePaused(
                    message_id,
                    lane,
                    "its lane is paused at another message; resume the lane before redriving",
                )
            connection.execute(sql.REDRIVE_MESSAGE, {"seq": seq, "now": now})
            # Its seq is older than anything put into the lane after it, so it goes first.
            connection.execute(sql.INSERT_LANE, {"lane": lane, "seq": seq})
            _advance_lane(connection, lane, seq)
            return str(lane)

        return self._writes.run(work)

    def drop(self, message_id: str, now: float) -> bool:
        return self._writes.run(
            lambda connection: (
                connection.execute(
                    sql.DROP_DEAD_LETTER, {"message_id": message_id, "now": now}
                ).rowcount
                > 0
            )
        )

    def clamp_retries(self, now: float) -> int:
        return self._writes.run(
            lambda connection: connection.execute(sql.CLAMP_RETRIES, {"now": now}).rowcount
        )

    def status(self, message_id: str) -> MessageStatus | None:
        with self._read() as connection:
            row = connection.execute(sql.SELECT_STATUS, {"message_id": message_id}).fetchone()
        return None if row is None else message_status(row)

    def counts(self) -> OutboxCounts:
        with self._reading() as connection:
            pending, pending_bytes = connection.execute(sql.SELECT_TOTALS).fetchone()
            lanes, paused = connection.execute(sql.COUNT_LANES).fetchone()
            (blocked,) = connection.execute(sql.COUNT_BLOCKED).fetchone()
            (dead,) = connection.execute(sql.COUNT_DEAD_LETTERS).fetchone()
        return OutboxCounts(
            pending=pending,
            blocked=blocked,
            paused_lanes=paused,
            lanes=lanes,
            dead_letters=dead,
            pending_bytes=pending_bytes,
        )

    def lanes_overview(self, limit: int) -> list[LaneOverview]:
        with self._read() as connection:
            rows = connection.execute(sql.LANES_OVERVIEW, {"limit": limit}).fetchall()
        return [lane_overview(row) for row in rows]

    def oldest_pending_enqueued_at(self) -> float | None:
        with self._read() as connection:
            (oldest,) = connection.execute(sql.OLDEST_PENDING_ENQUEUED_AT).fetchone()
        return None if oldest is None else float(oldest)

    def deliverable_lanes(self) -> int:
        with self._read() as connection:
            lanes, paused = connection.execute(sql.COUNT_LANES).fetchone()
        return int(lanes - paused)

    def forget_delivered(self, before: float, *, chunk: int = FORGET_CHUNK) -> int:
        """In transactions of at most ``chunk`` rows, so puts and outcomes get the outbox in
        between instead of waiting behind one long delete."""
        arguments = {"before": before, "chunk": chunk}
        forgotten = 0
        while True:
            removed: int = self._writes.run(
                lambda connection: connection.execute(sql.FORGET_DELIVERED, arguments).rowcount
            )
            forgotten += removed
            if removed < chunk:
                return forgotten

    def close(self) -> None:
        with self._reader_lock:
            self._reader.close()
        with self._lock:
            self._connection.close()


_REFUSED_BEFORE_ANY_CHANGE = (InvalidMessage, OutboxFull)
"""What ``_add`` of one entry raises before it stored anything: the room check, and the reused id
of its first INSERT (a failed statement leaves nothing behind)."""


def _add(
    connection: sqlite3.Connection,
    entries: Sequence[NewEntry],
    now: float,
    limits: PendingLimits | None,
) -> list[StoredMessage]:
    """Store the entries, in order (the caller holds the transaction, or, for one entry without
    limits, SQLite commits its single INSERT; the trigger lane_of_new_message opens its lane)."""
    if limits is not None:
        pending, pending_bytes = connection.execute(sql.SELECT_TOTALS).fetchone()
        check_room(pending, pending_bytes, entries, limits)
    stored: list[StoredMessage] = []
    for entry in entries:
        message = entry.message
        try:
            cursor = connection.execute(sql.INSERT_MESSAGE, new_message_row(entry, now))
        except sqlite3.IntegrityError:
            raise InvalidMessage(
                "message_id",
                message.message_id,
                "is already used by a message in this outbox; message ids must be unique "
                "(IoT Events would drop a reused id as a duplicate)",
            ) from None
        seq = cursor.lastrowid
        assert seq is not None
        stored.append(StoredMessage(seq, message, entry.lane, enqueued_at=now))
    return stored


def _deliver_all(
    connection: sqlite3.Connection, seqs: list[int], now: float, not_before: float
) -> None:
    """Mark the delivered heads of one request (distinct lanes), in one statement however many
    there are; the trigger lane_after_delivery moves each lane on, its next head not due before
    ``not_before``."""
    connection.execute(
        sql.MARK_ALL_DELIVERED, {"seqs": json.dumps(seqs), "now": now, "not_before": not_before}
    )


def _apply(
    connection: sqlite3.Connection, decision: Retry | Pause | MoveToDeadLetters, now: float
) -> None:
    """Record one failure's decision; the caller holds the transaction."""
    if isinstance(decision, MoveToDeadLetters):
        row = connection.execute(
            sql.MARK_DEAD_LETTER,
            {
                "seq": decision.seq,
                "now": now,
                "attempts": decision.attempts,
                "first_attempt_at": decision.first_attempt_at,
                "error_code": decision.error_code,
                "error_text": decision.error_text,
            },
        ).fetchone()
        if row is not None:
            _advance_lane(connection, row[0], decision.seq)
        return
    retry = decision if isinstance(decision, Retry) else None
    due = now if retry is None else retry.next_attempt_at
    retry_wait = 0.0 if retry is None else retry.retry_wait
    connection.execute(
        sql.RECORD_ATTEMPT,
        {
            "seq": decision.seq,
            "attempts": decision.attempts,
            "first_attempt_at": decision.first_attempt_at,
            "next_attempt_at": due,
            "error_code": decision.error_code,
            "error_text": decision.error_text,
            "solo": int(retry is not None and retry.solo),
            "retry_wait": retry_wait,
            "retry_age": decision.retry_age,
            "now": now,
        },
    )
    connection.execute(
        sql.RESCHEDULE_LANE,
        {"seq": decision.seq, "next_attempt_at": due, "retry_wait": retry_wait},
    )
    if isinstance(decision, Pause):
        connection.execute(
            sql.PAUSE_LANE,
            {
                "seq": decision.seq,
                "lane": decision.lane,
                "error_code": decision.error_code,
                "error_text": decision.error_text,
                "now": now,
            },
        )


def _advance_lane(connection: sqlite3.Connection, lane: str, seq: int) -> None:
    """Message ``seq`` left the lane or came back to it: the oldest pending message is the head,
    or the lane is gone."""
    head = connection.execute(sql.NEXT_HEAD, {"lane": lane, "seq": seq}).fetchone()
    if head is None:
        connection.execute("DELETE FROM lanes WHERE lane = :lane", {"lane": lane})
    else:
        connection.execute(
            sql.MOVE_HEAD, {"lane": lane, "seq": head[0], "due": head[1], "retry_wait": head[2]}
        )

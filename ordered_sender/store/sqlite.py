"""SqliteStore: the embedded outbox in one SQLite file (WAL, synchronous FULL by default).

Two tables. ``messages`` holds pending and recently delivered messages; delivered rows keep only
their id (payload dropped) until they are older than the retention, so a reused id is refused while
IoT Events would still de-duplicate it. ``lanes`` holds one row per lane with pending messages: its
head, when the head may next be sent, and why the lane is paused, if it is. Planning reads only
``lanes`` through an index, so its cost does not grow with the backlog behind each head.
The store takes no decisions and holds no threads; one lock serialises use of its connection.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ordered_sender.errors import InvalidMessage, NotAnOutbox
from ordered_sender.message import Message
from ordered_sender.store import (
    Decision,
    Delivered,
    MessageState,
    MessageStatus,
    NewEntry,
    OutboxCounts,
    Pause,
    PausedLane,
    Retry,
    StoredMessage,
)

SCHEMA_VERSION = 1

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id TEXT NOT NULL UNIQUE,
    lane TEXT NOT NULL,
    input_name TEXT NOT NULL,
    payload BLOB NOT NULL,
    timestamp_ms INTEGER,
    enqueued_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    first_attempt_at REAL,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    solo INTEGER NOT NULL DEFAULT 0,
    last_error_code TEXT,
    last_error_text TEXT,
    delivered_at REAL
);
CREATE INDEX IF NOT EXISTS messages_pending_by_lane
    ON messages (lane, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS messages_delivered_at
    ON messages (delivered_at) WHERE state = 'delivered';
CREATE TABLE IF NOT EXISTS lanes (
    lane TEXT PRIMARY KEY,
    head_seq INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    paused_at REAL,
    pause_code TEXT,
    pause_text TEXT
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS lanes_ready
    ON lanes (next_attempt_at, head_seq) WHERE paused_at IS NULL;
"""

INSERT_MESSAGE = """
INSERT INTO messages (message_id, lane, input_name, payload, timestamp_ms, enqueued_at)
VALUES (:message_id, :lane, :input_name, :payload, :timestamp_ms, :enqueued_at)
"""

# A new message becomes its lane's head only when the lane had nothing pending.
INSERT_LANE = """
INSERT INTO lanes (lane, head_seq, next_attempt_at) VALUES (:lane, :seq, 0)
ON CONFLICT (lane) DO NOTHING
"""

MESSAGE_COLUMNS = """
    m.seq, m.message_id, m.lane, m.input_name, m.payload, m.timestamp_ms, m.enqueued_at,
    m.attempts, m.first_attempt_at, m.next_attempt_at, m.solo, m.last_error_code, m.last_error_text
"""

READY_HEADS = f"""
SELECT {MESSAGE_COLUMNS}
FROM lanes AS l JOIN messages AS m ON m.seq = l.head_seq
WHERE l.paused_at IS NULL AND l.next_attempt_at <= :now
ORDER BY l.next_attempt_at, l.head_seq
LIMIT :limit
"""

UPCOMING_HEADS = """
SELECT lane, next_attempt_at FROM lanes WHERE paused_at IS NULL
ORDER BY next_attempt_at, head_seq
LIMIT :limit
"""

MARK_DELIVERED = """
UPDATE messages SET state = 'delivered', delivered_at = :now, payload = X'', attempts = attempts + 1
WHERE seq = :seq AND state = 'pending'
RETURNING lane
"""

NEXT_HEAD = """
SELECT seq, next_attempt_at FROM messages
WHERE lane = :lane AND state = 'pending' ORDER BY seq LIMIT 1
"""

RECORD_ATTEMPT = """
UPDATE messages
SET attempts = :attempts, first_attempt_at = :first_attempt_at, next_attempt_at = :next_attempt_at,
    last_error_code = :error_code, last_error_text = :error_text, solo = :solo
WHERE seq = :seq AND state = 'pending'
"""

RESCHEDULE_LANE = """
UPDATE lanes SET next_attempt_at = :next_attempt_at WHERE head_seq = :seq
"""

PAUSE_LANE = """
UPDATE lanes SET paused_at = :now, pause_code = :error_code, pause_text = :error_text,
    next_attempt_at = :now
WHERE lane = :lane
"""

RESUME_LANE = """
UPDATE lanes SET paused_at = NULL, pause_code = NULL, pause_text = NULL, next_attempt_at = :now
WHERE lane = :lane AND paused_at IS NOT NULL
RETURNING head_seq
"""

SELECT_PAUSED = """
SELECT l.lane, l.head_seq, m.message_id, l.pause_code, l.pause_text, l.paused_at
FROM lanes AS l JOIN messages AS m ON m.seq = l.head_seq
WHERE l.paused_at IS NOT NULL
ORDER BY l.paused_at, l.lane
"""

SELECT_STATUS = """
SELECT m.message_id, m.lane, m.seq, m.state, l.paused_at IS NOT NULL
FROM messages AS m LEFT JOIN lanes AS l ON l.lane = m.lane
WHERE m.message_id = :message_id
"""

COUNT_LANES = """
SELECT COUNT(*), COUNT(paused_at) FROM lanes
"""

COUNT_PENDING = """
SELECT COUNT(*), COUNT(l.paused_at)
FROM messages AS m JOIN lanes AS l ON l.lane = m.lane
WHERE m.state = 'pending'
"""


class SqliteStore:
    """The Store protocol on one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL", create: bool = True) -> None:
        """Open the outbox at ``path``; ``create=False`` refuses (NotAnOutbox) to make one, or to
        add tables to a file that is not an outbox."""
        self.path = Path(path)
        if not create:
            _check_is_outbox(self.path)
        elif not self.path.parent.is_dir():
            # SQLite would only say "unable to open database file"; name the path instead.
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(self.path))
        # check_same_thread is off because the sender's threads share this connection; the lock
        # below serialises them, and SQLite itself serialises writers across processes.
        self._connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            self._connection.executescript(SCHEMA)
            self._connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def transaction(self, mode: str = "IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """One transaction; IMMEDIATE takes the write lock up front so commit order is seq order."""
        with self._lock:
            self._connection.execute(f"BEGIN {mode}")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def add(self, entries: Sequence[NewEntry], now: float) -> list[StoredMessage]:
        stored: list[StoredMessage] = []
        with self.transaction() as connection:
            for entry in entries:
                message = entry.message
                try:
                    cursor = connection.execute(
                        INSERT_MESSAGE,
                        {
                            "message_id": message.message_id,
                            "lane": entry.lane,
                            "input_name": message.input_name,
                            "payload": message.payload,
                            "timestamp_ms": message.timestamp_ms,
                            "enqueued_at": now,
                        },
                    )
                except sqlite3.IntegrityError:
                    raise InvalidMessage(
                        "message_id",
                        message.message_id,
                        "is already used by a message in this outbox; message ids must be unique "
                        "(IoT Events would drop a reused id as a duplicate)",
                    ) from None
                seq = cursor.lastrowid
                assert seq is not None
                connection.execute(INSERT_LANE, {"lane": entry.lane, "seq": seq})
                stored.append(StoredMessage(seq, message, entry.lane, enqueued_at=now))
        return stored

    def ready_heads(
        self, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        with self._lock:
            rows = self._connection.execute(
                READY_HEADS, {"now": now, "limit": limit + len(exclude_lanes)}
            ).fetchall()
        heads = [_stored_message(row) for row in rows if row[2] not in exclude_lanes]
        return heads[:limit]

    def next_attempt_at(self, exclude_lanes: Collection[str]) -> float | None:
        with self._lock:
            rows = self._connection.execute(
                UPCOMING_HEADS, {"limit": len(exclude_lanes) + 1}
            ).fetchall()
        for lane, next_attempt_at in rows:
            if lane not in exclude_lanes:
                return float(next_attempt_at)
        return None

    def apply(self, decisions: Sequence[Decision], now: float) -> None:
        with self.transaction() as connection:
            for decision in decisions:
                if isinstance(decision, Delivered):
                    _deliver(connection, decision.seq, now)
                    continue
                due = decision.next_attempt_at if isinstance(decision, Retry) else now
                connection.execute(
                    RECORD_ATTEMPT,
                    {
                        "seq": decision.seq,
                        "attempts": decision.attempts,
                        "first_attempt_at": decision.first_attempt_at,
                        "next_attempt_at": due,
                        "error_code": decision.error_code,
                        "error_text": decision.error_text,
                        "solo": int(isinstance(decision, Retry) and decision.solo),
                    },
                )
                connection.execute(RESCHEDULE_LANE, {"seq": decision.seq, "next_attempt_at": due})
                if isinstance(decision, Pause):
                    connection.execute(
                        PAUSE_LANE,
                        {
                            "lane": decision.lane,
                            "error_code": decision.error_code,
                            "error_text": decision.error_text,
                            "now": now,
                        },
                    )

    def paused_lanes(self) -> list[PausedLane]:
        with self._lock:
            rows = self._connection.execute(SELECT_PAUSED).fetchall()
        return [PausedLane(*row) for row in rows]

    def resume(self, lane: str, now: float) -> bool:
        with self.transaction() as connection:
            row = connection.execute(RESUME_LANE, {"lane": lane, "now": now}).fetchone()
            if row is None:
                return False
            connection.execute(
                "UPDATE messages SET next_attempt_at = :now WHERE seq = :seq",
                {"now": now, "seq": row[0]},
            )
        return True

    def status(self, message_id: str) -> MessageStatus | None:
        with self._lock:
            row = self._connection.execute(SELECT_STATUS, {"message_id": message_id}).fetchone()
        if row is None:
            return None
        state = MessageState(row[3])
        paused = state is MessageState.PENDING and bool(row[4])
        return MessageStatus(row[0], row[1], row[2], state, paused)

    def counts(self) -> OutboxCounts:
        with self._lock:
            pending, blocked = self._connection.execute(COUNT_PENDING).fetchone()
            lanes, paused = self._connection.execute(COUNT_LANES).fetchone()
        return OutboxCounts(pending=pending, blocked=blocked, paused_lanes=paused, lanes=lanes)

    def deliverable_lanes(self) -> int:
        with self._lock:
            lanes, paused = self._connection.execute(COUNT_LANES).fetchone()
        return int(lanes - paused)

    def forget_delivered(self, before: float) -> int:
        with self.transaction() as connection:
            cursor = connection.execute(
                "DELETE FROM messages WHERE state = 'delivered' AND delivered_at < :before",
                {"before": before},
            )
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def _check_is_outbox(path: Path) -> None:
    if not path.is_file():
        raise NotAnOutbox(f"outbox {path} does not exist")
    try:
        # Read-only, so that looking cannot change a file that turns out to be something else.
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
            tables = {
                name
                for (name,) in connection.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table'"
                )
            }
    except sqlite3.DatabaseError as error:
        raise NotAnOutbox(f"{path} is not an ordered-sender outbox ({error})") from None
    if not {"messages", "lanes"} <= tables:
        raise NotAnOutbox(f"{path} is an SQLite file but not an ordered-sender outbox")


def _deliver(connection: sqlite3.Connection, seq: int, now: float) -> None:
    """Mark a head delivered and make the next pending message of its lane the head."""
    row = connection.execute(MARK_DELIVERED, {"seq": seq, "now": now}).fetchone()
    if row is None:
        return
    (lane,) = row
    head = connection.execute(NEXT_HEAD, {"lane": lane}).fetchone()
    if head is None:
        connection.execute("DELETE FROM lanes WHERE lane = :lane", {"lane": lane})
    else:
        connection.execute(
            "UPDATE lanes SET head_seq = :seq, next_attempt_at = :due WHERE lane = :lane",
            {"seq": head[0], "due": head[1], "lane": lane},
        )


def _stored_message(row: tuple[Any, ...]) -> StoredMessage:
    """The one place a row becomes a value."""
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
    )

"""SqliteStore: the embedded outbox in one SQLite file (WAL, synchronous FULL by default).

Pending and recently delivered messages share one table; a partial index over pending rows keeps
lane heads cheap to find. Delivered rows keep only their id (payload dropped) until they are older
than the retention, so a reused id is refused while IoT Events would still de-duplicate it.
The store takes no decisions and holds no threads; one lock serialises use of its connection.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ordered_sender.errors import InvalidMessage
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
CREATE TABLE IF NOT EXISTS paused_lanes (
    lane TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    error_code TEXT NOT NULL,
    error_text TEXT NOT NULL,
    paused_at REAL NOT NULL
);
"""

INSERT_MESSAGE = """
INSERT INTO messages (message_id, lane, input_name, payload, timestamp_ms, enqueued_at)
VALUES (:message_id, :lane, :input_name, :payload, :timestamp_ms, :enqueued_at)
"""

MESSAGE_COLUMNS = """
    m.seq, m.message_id, m.lane, m.input_name, m.payload, m.timestamp_ms, m.enqueued_at,
    m.attempts, m.first_attempt_at, m.next_attempt_at, m.solo, m.last_error_code, m.last_error_text
"""

LANE_HEADS = """
SELECT lane, MIN(seq) AS seq FROM messages WHERE state = 'pending' GROUP BY lane
"""

READY_HEADS = f"""
SELECT {MESSAGE_COLUMNS}
FROM messages AS m JOIN ({LANE_HEADS}) AS head ON m.seq = head.seq
WHERE m.next_attempt_at <= :now
  AND m.lane NOT IN (SELECT lane FROM paused_lanes)
ORDER BY m.seq
LIMIT :limit
"""

UPCOMING_HEADS = f"""
SELECT m.lane, m.next_attempt_at
FROM messages AS m JOIN ({LANE_HEADS}) AS head ON m.seq = head.seq
WHERE m.lane NOT IN (SELECT lane FROM paused_lanes)
ORDER BY m.next_attempt_at
LIMIT :limit
"""

MARK_DELIVERED = """
UPDATE messages SET state = 'delivered', delivered_at = :now, payload = X'', attempts = attempts + 1
WHERE seq = :seq AND state = 'pending'
"""

RECORD_ATTEMPT = """
UPDATE messages
SET attempts = :attempts, first_attempt_at = :first_attempt_at, next_attempt_at = :next_attempt_at,
    last_error_code = :error_code, last_error_text = :error_text, solo = :solo
WHERE seq = :seq AND state = 'pending'
"""

PAUSE_LANE = """
INSERT INTO paused_lanes (lane, seq, error_code, error_text, paused_at)
VALUES (:lane, :seq, :error_code, :error_text, :now)
ON CONFLICT (lane) DO UPDATE SET seq = excluded.seq, error_code = excluded.error_code,
    error_text = excluded.error_text, paused_at = excluded.paused_at
"""

SELECT_PAUSED = """
SELECT p.lane, p.seq, m.message_id, p.error_code, p.error_text, p.paused_at
FROM paused_lanes AS p JOIN messages AS m ON m.seq = p.seq
ORDER BY p.paused_at, p.lane
"""

SELECT_STATUS = """
SELECT m.message_id, m.lane, m.seq, m.state, p.lane IS NOT NULL AS lane_paused
FROM messages AS m LEFT JOIN paused_lanes AS p ON p.lane = m.lane
WHERE m.message_id = :message_id
"""

COUNT_PENDING = """
SELECT COUNT(*), COUNT(p.lane), COUNT(DISTINCT m.lane)
FROM messages AS m LEFT JOIN paused_lanes AS p ON p.lane = m.lane
WHERE m.state = 'pending'
"""


class SqliteStore:
    """The Store protocol on one SQLite file."""

    def __init__(self, path: str | Path, *, synchronous: str = "FULL") -> None:
        self.path = Path(path)
        # check_same_thread is off because the sender's threads share this connection; the lock
        # below serialises them, and SQLite itself serialises writers across processes.
        self._connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        self._lock = threading.RLock()
        with self._lock:
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute(f"PRAGMA synchronous = {synchronous}")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.executescript(SCHEMA)

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
                    connection.execute(MARK_DELIVERED, {"seq": decision.seq, "now": now})
                elif isinstance(decision, Retry):
                    connection.execute(
                        RECORD_ATTEMPT,
                        {
                            "seq": decision.seq,
                            "attempts": decision.attempts,
                            "first_attempt_at": decision.first_attempt_at,
                            "next_attempt_at": decision.next_attempt_at,
                            "error_code": decision.error_code,
                            "error_text": decision.error_text,
                            "solo": int(decision.solo),
                        },
                    )
                elif isinstance(decision, Pause):
                    connection.execute(
                        RECORD_ATTEMPT,
                        {
                            "seq": decision.seq,
                            "attempts": decision.attempts,
                            "first_attempt_at": decision.first_attempt_at,
                            "next_attempt_at": now,
                            "error_code": decision.error_code,
                            "error_text": decision.error_text,
                            "solo": 0,
                        },
                    )
                    connection.execute(
                        PAUSE_LANE,
                        {
                            "lane": decision.lane,
                            "seq": decision.seq,
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
            row = connection.execute(
                "DELETE FROM paused_lanes WHERE lane = :lane RETURNING seq", {"lane": lane}
            ).fetchone()
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
        return MessageStatus(row[0], row[1], row[2], MessageState(row[3]), bool(row[4]))

    def counts(self) -> OutboxCounts:
        with self._lock:
            pending, blocked, lanes = self._connection.execute(COUNT_PENDING).fetchone()
            (paused,) = self._connection.execute("SELECT COUNT(*) FROM paused_lanes").fetchone()
        return OutboxCounts(pending=pending, blocked=blocked, paused_lanes=paused, lanes=lanes)

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

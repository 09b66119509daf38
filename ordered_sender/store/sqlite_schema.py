"""The SQLite outbox's schema, its migrations and every statement SqliteStore runs, as named
constants. Nothing here executes anything.

Tables:
- ``messages``: pending, delivered, dead-lettered and dropped messages. Delivered and dropped rows
  keep only their id (payload emptied) until older than the retention, so a reused id is refused
  while IoT Events would still de-duplicate it; dead letters keep everything, for ``redrive``.
- ``lanes``: one row per lane with pending messages: its head, when the head may next be sent,
  the backoff that set that time, and why the lane is paused, if it is. Planning reads only this
  table, through an index, so its cost does not grow with the backlog behind each head.
  ``head_seq`` is always the lane's oldest pending message (a pause names the message that
  failed in ``paused_seq``), so every look at a lane's pending messages starts at its head.
- ``totals``: one row, the pending count and payload bytes, the lanes and the paused ones, kept by
  triggers in the same transaction as every change, for back-pressure and ``flush`` without
  counting the backlog or the lanes at each look.
"""

from __future__ import annotations

from collections.abc import Mapping

SCHEMA_VERSION = 4

_TOTALS_AND_TRIGGERS = """
CREATE TABLE totals (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    pending INTEGER NOT NULL,
    pending_bytes INTEGER NOT NULL,
    lanes INTEGER NOT NULL,
    paused_lanes INTEGER NOT NULL
);
INSERT INTO totals (id, pending, pending_bytes, lanes, paused_lanes)
SELECT 1, COUNT(*), COALESCE(SUM(length(payload)), 0),
    (SELECT COUNT(*) FROM lanes), (SELECT COUNT(paused_at) FROM lanes)
FROM messages WHERE state = 'pending';
CREATE TRIGGER pending_added AFTER INSERT ON messages WHEN NEW.state = 'pending'
BEGIN
    UPDATE totals SET pending = pending + 1, pending_bytes = pending_bytes + length(NEW.payload);
END;
CREATE TRIGGER pending_left AFTER UPDATE OF state ON messages
WHEN OLD.state = 'pending' AND NEW.state != 'pending'
BEGIN
    UPDATE totals SET pending = pending - 1, pending_bytes = pending_bytes - length(OLD.payload);
END;
CREATE TRIGGER pending_again AFTER UPDATE OF state ON messages
WHEN OLD.state != 'pending' AND NEW.state = 'pending'
BEGIN
    UPDATE totals SET pending = pending + 1, pending_bytes = pending_bytes + length(NEW.payload);
END;
CREATE TRIGGER pending_deleted AFTER DELETE ON messages WHEN OLD.state = 'pending'
BEGIN
    UPDATE totals SET pending = pending - 1, pending_bytes = pending_bytes - length(OLD.payload);
END;
CREATE TRIGGER lane_added AFTER INSERT ON lanes
BEGIN
    UPDATE totals SET lanes = lanes + 1, paused_lanes = paused_lanes + (NEW.paused_at IS NOT NULL);
END;
CREATE TRIGGER lane_gone AFTER DELETE ON lanes
BEGIN
    UPDATE totals SET lanes = lanes - 1, paused_lanes = paused_lanes - (OLD.paused_at IS NOT NULL);
END;
CREATE TRIGGER lane_paused_or_resumed AFTER UPDATE OF paused_at ON lanes
WHEN (OLD.paused_at IS NULL) != (NEW.paused_at IS NULL)
BEGIN
    UPDATE totals
    SET paused_lanes = paused_lanes + (NEW.paused_at IS NOT NULL) - (OLD.paused_at IS NOT NULL);
END;
CREATE INDEX messages_dead_letters ON messages (lane, seq) WHERE state = 'dead_letter';
CREATE INDEX lanes_by_head ON lanes (head_seq) WHERE paused_at IS NULL;
"""

# A new pending message opens its lane if the lane had nothing pending (it is then the head), in
# the INSERT itself: a one-message put is one statement, which SQLite commits on its own.
_LANE_OF_NEW_MESSAGE = """
CREATE TRIGGER lane_of_new_message AFTER INSERT ON messages WHEN NEW.state = 'pending'
BEGIN
    INSERT INTO lanes (lane, head_seq, next_attempt_at) VALUES (NEW.lane, NEW.seq, 0)
    ON CONFLICT (lane) DO NOTHING;
END;
"""

# A delivered message moves its lane on, in the UPDATE that marks it: the lane's next pending
# message is the head, due not before the time MARK_ALL_DELIVERED leaves in the delivered row's
# next_attempt_at (pacing; a delivered row has no next attempt otherwise), or the lane is gone.
# The search starts at the head: a redrive may have made an older message the head while this
# one was in flight. A pause at the head that left (an operator's, while it was in flight) moves
# with the head.
_LANE_AFTER_DELIVERY = """
CREATE TRIGGER lane_after_delivery AFTER UPDATE OF state ON messages
WHEN OLD.state = 'pending' AND NEW.state = 'delivered'
BEGIN
    UPDATE lanes SET (head_seq, next_attempt_at, retry_wait, paused_seq) = (
        SELECT m.seq, MAX(m.next_attempt_at, NEW.next_attempt_at), m.retry_wait,
            CASE WHEN lanes.paused_seq = lanes.head_seq THEN m.seq ELSE lanes.paused_seq END
        FROM messages AS m
        WHERE m.lane = NEW.lane AND m.seq >= lanes.head_seq AND m.state = 'pending'
        ORDER BY m.seq LIMIT 1
    )
    WHERE lane = NEW.lane
        AND EXISTS (
            SELECT 1 FROM messages AS m
            WHERE m.lane = NEW.lane AND m.seq >= lanes.head_seq AND m.state = 'pending'
        );
    DELETE FROM lanes
    WHERE lane = NEW.lane
        AND NOT EXISTS (
            SELECT 1 FROM messages AS m
            WHERE m.lane = NEW.lane AND m.seq >= lanes.head_seq AND m.state = 'pending'
        );
END;
"""

SCHEMA = (
    """
CREATE TABLE messages (
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
    delivered_at REAL,
    retry_wait REAL NOT NULL DEFAULT 0,
    retry_age REAL NOT NULL DEFAULT 0,
    last_attempt_at REAL,
    failed_at REAL
);
CREATE INDEX messages_by_lane ON messages (lane, seq);
CREATE INDEX messages_delivered_at ON messages (delivered_at) WHERE delivered_at IS NOT NULL;
CREATE TABLE lanes (
    lane TEXT PRIMARY KEY,
    head_seq INTEGER NOT NULL,
    next_attempt_at REAL NOT NULL,
    paused_at REAL,
    pause_code TEXT,
    pause_text TEXT,
    retry_wait REAL NOT NULL DEFAULT 0,
    paused_seq INTEGER
) WITHOUT ROWID;
CREATE INDEX lanes_ready ON lanes (next_attempt_at) WHERE paused_at IS NULL;
"""
    + _TOTALS_AND_TRIGGERS
    + _LANE_OF_NEW_MESSAGE
    + _LANE_AFTER_DELIVERY
)
"""A new outbox, at SCHEMA_VERSION."""

MIGRATIONS: Mapping[int, str] = {
    1: """
ALTER TABLE messages ADD COLUMN retry_wait REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN retry_age REAL NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN last_attempt_at REAL;
ALTER TABLE messages ADD COLUMN failed_at REAL;
ALTER TABLE lanes ADD COLUMN retry_wait REAL NOT NULL DEFAULT 0;
DROP INDEX messages_delivered_at;
CREATE INDEX messages_delivered_at ON messages (delivered_at) WHERE delivered_at IS NOT NULL;
"""
    + _TOTALS_AND_TRIGGERS,
    # Lanes index all their messages, not only the pending ones: a delivery then changes no
    # index entry of its lane (with only the pending ones indexed, each delivery deleted one, a
    # page written per lane per commit: 16-18 pages a commit instead of 11 with 1,000,000 pending
    # over 10,000 lanes, and 0.7x the delivery rate of 10,000 pending). Searches start at the
    # head, so the delivered rows kept for the retention are not read. A pause used to move the
    # head to the failed message even with an older redriven one pending; the pause now names it
    # in paused_seq, and every head goes back to its lane's oldest pending message. lanes_ready
    # orders by due time alone: a lane moving to its next head, due at once, keeps its entry
    # (with head_seq in it, each delivery moved 10 entries of it: 3 pages a commit).
    2: """
ALTER TABLE lanes ADD COLUMN paused_seq INTEGER;
UPDATE lanes SET paused_seq = head_seq WHERE paused_at IS NOT NULL;
UPDATE lanes SET head_seq = COALESCE((
    SELECT MIN(m.seq) FROM messages AS m WHERE m.lane = lanes.lane AND m.state = 'pending'
), head_seq);
DROP INDEX messages_pending_by_lane;
CREATE INDEX messages_by_lane ON messages (lane, seq);
DROP INDEX lanes_ready;
CREATE INDEX lanes_ready ON lanes (next_attempt_at) WHERE paused_at IS NULL;
""",
    3: _LANE_OF_NEW_MESSAGE + _LANE_AFTER_DELIVERY,
}
"""``MIGRATIONS[v]`` takes an outbox of version v to v + 1, in one transaction."""

INSERT_MESSAGE = """
INSERT INTO messages (message_id, lane, input_name, payload, timestamp_ms, enqueued_at)
VALUES (:message_id, :lane, :input_name, :payload, :timestamp_ms, :enqueued_at)
"""

# A message pending again (redriven) opens its lane if the lane had nothing pending; a new message
# opens it through the trigger lane_of_new_message.
INSERT_LANE = """
INSERT INTO lanes (lane, head_seq, next_attempt_at) VALUES (:lane, :seq, 0)
ON CONFLICT (lane) DO NOTHING
"""

SELECT_TOTALS = "SELECT pending, pending_bytes FROM totals"

MESSAGE_COLUMNS = """
    m.seq, m.message_id, m.lane, m.input_name, m.payload, m.timestamp_ms, m.enqueued_at,
    m.attempts, m.first_attempt_at, m.next_attempt_at, m.solo, m.last_error_code,
    m.last_error_text, m.retry_wait, m.retry_age, m.last_attempt_at
"""

# Oldest put first among due heads: a head retried once must not wait behind every head put
# after it (planning by due time would put never-tried heads, due from 0, always first).
READY_HEADS = f"""
SELECT {MESSAGE_COLUMNS}
FROM lanes AS l INDEXED BY lanes_by_head JOIN messages AS m ON m.seq = l.head_seq
WHERE l.paused_at IS NULL AND l.next_attempt_at <= :now
ORDER BY l.head_seq
LIMIT :limit
"""

PENDING_MESSAGES = f"""
SELECT {MESSAGE_COLUMNS}
FROM messages AS m
WHERE m.seq IN (SELECT value FROM json_each(:seqs)) AND m.state = 'pending'
ORDER BY m.seq
"""

# Only the earliest time counts, not which head has it: ordered by the time alone, through an
# index that a head moving on leaves alone while its lane stays due.
UPCOMING_HEADS = """
SELECT lane, next_attempt_at FROM lanes WHERE paused_at IS NULL
ORDER BY next_attempt_at
LIMIT :limit
"""

# The delivered heads of one request, as a JSON array of seqs: one statement for all of them, and
# for their lanes (lane_after_delivery), so SQLite commits it by itself. :not_before goes to the
# delivered rows' next_attempt_at, unused otherwise once delivered, for the trigger to read.
MARK_ALL_DELIVERED = """
UPDATE messages
SET state = 'delivered', delivered_at = :now, payload = X'', attempts = attempts + 1,
    next_attempt_at = :not_before
WHERE seq IN (SELECT value FROM json_each(:seqs)) AND state = 'pending'
"""

MARK_DEAD_LETTER = """
UPDATE messages
SET state = 'dead_letter', failed_at = :now, attempts = :attempts,
    first_attempt_at = :first_attempt_at, last_error_code = :error_code,
    last_error_text = :error_text
WHERE seq = :seq AND state = 'pending'
RETURNING lane
"""

# From the older of the lane's head and :seq, a message that left the lane or came back to it.
NEXT_HEAD = """
SELECT seq, next_attempt_at, retry_wait FROM messages
WHERE lane = :lane AND state = 'pending'
    AND seq >= MIN(:seq, COALESCE((SELECT head_seq FROM lanes WHERE lane = :lane), :seq))
ORDER BY seq LIMIT 1
"""

# A pause at the head that left (an operator's, while it was in flight) moves with the head.
MOVE_HEAD = """
UPDATE lanes SET head_seq = :seq, next_attempt_at = :due, retry_wait = :retry_wait,
    paused_seq = CASE WHEN paused_seq = head_seq THEN :seq ELSE paused_seq END
WHERE lane = :lane
"""

RECORD_ATTEMPT = """
UPDATE messages
SET attempts = :attempts, first_attempt_at = :first_attempt_at, next_attempt_at = :next_attempt_at,
    last_error_code = :error_code, last_error_text = :error_text, solo = :solo,
    retry_wait = :retry_wait, retry_age = :retry_age, last_attempt_at = :now
WHERE seq = :seq AND state = 'pending'
"""

RESCHEDULE_LANE = """
UPDATE lanes SET next_attempt_at = :next_attempt_at, retry_wait = :retry_wait
WHERE head_seq = :seq
"""

# The pause names the message that failed, even if a redrive slipped in before it while it was in
# flight; the head stays the oldest pending message.
PAUSE_LANE = """
UPDATE lanes SET paused_at = :now, pause_code = :error_code, pause_text = :error_text,
    next_attempt_at = :now, retry_wait = 0, paused_seq = :seq
WHERE lane = :lane
"""

# An operator's pause, at the lane's head; the head may be in flight, and its outcome is still
# recorded (the trigger lane_after_delivery, MOVE_HEAD).
PAUSE_LANE_BY_OPERATOR = """
UPDATE lanes SET paused_at = :now, pause_code = :code, pause_text = :text, paused_seq = head_seq
WHERE lane = :lane AND paused_at IS NULL
"""

SELECT_PAUSED_SEQ = """
SELECT paused_seq FROM lanes WHERE lane = :lane AND paused_at IS NOT NULL
"""

RESUME_LANE = """
UPDATE lanes SET paused_at = NULL, pause_code = NULL, pause_text = NULL, paused_seq = NULL,
    next_attempt_at = :now, retry_wait = 0
WHERE lane = :lane
"""

# Resuming forgets the head's history: a head paused by retry_stop gets a whole new policy.
RESET_ATTEMPTS = """
UPDATE messages
SET attempts = 0, first_attempt_at = NULL, next_attempt_at = :now, retry_wait = 0, retry_age = 0,
    last_attempt_at = NULL
WHERE seq = :seq
"""

SELECT_DEAD_LETTER = """
SELECT seq, lane FROM messages WHERE message_id = :message_id AND state = 'dead_letter'
"""

SELECT_LANE = "SELECT head_seq, paused_at FROM lanes WHERE lane = :lane"

REDRIVE_MESSAGE = """
UPDATE messages
SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = :now,
    retry_wait = 0, retry_age = 0, last_attempt_at = NULL, failed_at = NULL, solo = 0
WHERE seq = :seq
"""

DROP_DEAD_LETTER = """
UPDATE messages SET state = 'dropped', payload = X'', delivered_at = :now
WHERE message_id = :message_id AND state = 'dead_letter'
"""

SELECT_DEAD_LETTERS = """
SELECT lane, seq, message_id, input_name, last_error_code, last_error_text, attempts,
    enqueued_at, failed_at
FROM messages
WHERE state = 'dead_letter' AND (:lane IS NULL OR lane = :lane)
ORDER BY seq
"""

CLAMP_RETRIES = """
UPDATE lanes SET next_attempt_at = :now + retry_wait
WHERE paused_at IS NULL AND next_attempt_at > :now + retry_wait
"""

SELECT_PAUSED = """
SELECT l.lane, l.paused_seq, m.message_id, l.pause_code, l.pause_text, l.paused_at
FROM lanes AS l JOIN messages AS m ON m.seq = l.paused_seq
WHERE l.paused_at IS NOT NULL
ORDER BY l.paused_at, l.lane
"""

SELECT_STATUS = """
SELECT m.message_id, m.lane, m.seq, m.state, l.paused_at IS NOT NULL
FROM messages AS m LEFT JOIN lanes AS l ON l.lane = m.lane
WHERE m.message_id = :message_id
"""

COUNT_LANES = "SELECT lanes, paused_lanes FROM totals"

# Paused lanes first (CROSS JOIN fixes the order), then their messages from the head on by index:
# reads only the blocked messages, not every pending one (0.1 ms instead of 110 ms with 200,000
# pending), nor the delivered ones kept before the head.
COUNT_BLOCKED = """
SELECT COUNT(*) FROM lanes AS l CROSS JOIN messages AS m
WHERE l.paused_at IS NOT NULL AND m.lane = l.lane AND m.seq >= l.head_seq
    AND m.state = 'pending'
"""

COUNT_DEAD_LETTERS = "SELECT COUNT(*) FROM messages WHERE state = 'dead_letter'"

LANES_OVERVIEW = """
SELECT l.lane,
    (
        SELECT COUNT(*) FROM messages AS p
        WHERE p.lane = l.lane AND p.seq >= l.head_seq AND p.state = 'pending'
    ),
    m.enqueued_at, m.message_id, m.attempts, l.next_attempt_at, m.last_error_code,
    m.last_error_text, l.paused_at IS NOT NULL
FROM lanes AS l JOIN messages AS m ON m.seq = l.head_seq
ORDER BY l.paused_at IS NULL, l.head_seq
LIMIT :limit
"""

# The oldest pending message is a lane head: the smallest head of the moving lanes (one index
# step through lanes_by_head) or the head of a paused lane (a look at each lane, never at the
# backlog behind the heads).
OLDEST_PENDING_ENQUEUED_AT = """
SELECT MIN(m.enqueued_at) FROM messages AS m
WHERE m.seq = (SELECT MIN(head_seq) FROM lanes WHERE paused_at IS NULL)
    OR m.seq IN (SELECT head_seq FROM lanes WHERE paused_at IS NOT NULL)
"""

# At most :chunk rows a statement, found through messages_delivered_at (delivered_at < :before
# implies the index's delivered_at IS NOT NULL).
FORGET_DELIVERED = """
DELETE FROM messages WHERE seq IN (
    SELECT seq FROM messages
    WHERE delivered_at < :before AND state IN ('delivered', 'dropped')
    LIMIT :chunk
)
"""

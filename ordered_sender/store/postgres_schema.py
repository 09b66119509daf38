"""The PostgreSQL outbox's schema and every statement PostgresStore runs, as named constants.
Nothing here executes anything.

Every table lives in one schema of its own (``ordered_sender`` unless told otherwise), written
``{schema}`` below and filled in, quoted, by ``PostgresStore``; statements name their tables in
full so that they also run on a caller's own connection (``put_many(..., connection=...)``),
whatever its search_path.

Tables, as in the SQLite outbox:
- ``outbox_version``: one row, the schema's version; a schema of another version is refused.
- ``messages``: pending, delivered, dead-lettered and dropped messages; delivered and dropped rows
  keep only their id until older than the retention.
- ``lanes``: one row per lane with pending messages: its head, when the head may next be sent,
  and why the lane is paused.
- ``lane_leases``: which worker may send a lane's head, until when (the server's clock), and the
  lease's token, new at each taking, which fences what the worker records. A worker takes the
  lease of a due lane nobody holds (or whose holder let it expire), renews it while the head is in
  flight, and gives it back in the transaction that records the outcome; the next head may then
  go to any worker. Only workers write here, so producers never wait for them.
- ``workers``: the workers delivering this outbox, each with when it was last seen (the server's
  clock), renewed with its leases; those seen within ``lease_seconds`` are live, and each takes
  at most its fair share of the due lanes, in whole requests (``ACQUIRE_LEASES``), so that
  workers share the lanes.

Many transactions write at once here, so lanes are locked by rule, which makes the order of each
lane its commit order and keeps a lane's row from being dropped while a message is being put into
it: a put locks the row of each lane it writes (``LOCK_LANE``, lanes sorted, before taking a seq)
until it commits; whoever moves a lane's head locks the row first (``LOCK_LANES_OF``, sorted) and
only then, in a new statement and so a new snapshot, looks for the next pending message.
"""

from __future__ import annotations

from typing import Final

SCHEMA_VERSION: Final = 2

CREATE_SCHEMA: Final = (
    "CREATE SCHEMA {schema}",
    "CREATE TABLE {schema}.outbox_version (version integer NOT NULL)",
    """
CREATE TABLE {schema}.messages (
    seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id text NOT NULL UNIQUE,
    lane text NOT NULL,
    input_name text NOT NULL,
    payload bytea NOT NULL,
    timestamp_ms bigint,
    enqueued_at double precision NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'delivered', 'dead_letter', 'dropped')),
    attempts integer NOT NULL DEFAULT 0,
    first_attempt_at double precision,
    next_attempt_at double precision NOT NULL DEFAULT 0,
    solo boolean NOT NULL DEFAULT false,
    last_error_code text,
    last_error_text text,
    delivered_at double precision,
    retry_wait double precision NOT NULL DEFAULT 0,
    retry_age double precision NOT NULL DEFAULT 0,
    last_attempt_at double precision,
    failed_at double precision
)""",
    "CREATE INDEX messages_pending_by_lane ON {schema}.messages (lane, seq) "
    "WHERE state = 'pending'",
    "CREATE INDEX messages_delivered_at ON {schema}.messages (delivered_at) "
    "WHERE delivered_at IS NOT NULL",
    "CREATE INDEX messages_dead_letters ON {schema}.messages (lane, seq) "
    "WHERE state = 'dead_letter'",
    """
CREATE TABLE {schema}.lanes (
    lane text PRIMARY KEY,
    head_seq bigint,
    next_attempt_at double precision NOT NULL DEFAULT 0,
    paused_at double precision,
    pause_code text,
    pause_text text,
    retry_wait double precision NOT NULL DEFAULT 0
)""",
    "CREATE INDEX lanes_by_head ON {schema}.lanes (head_seq) WHERE paused_at IS NULL",
    "CREATE INDEX lanes_upcoming ON {schema}.lanes (next_attempt_at) WHERE paused_at IS NULL",
    "CREATE SEQUENCE {schema}.lease_tokens",
    """
CREATE TABLE {schema}.lane_leases (
    lane text PRIMARY KEY,
    owner text NOT NULL,
    token bigint NOT NULL,
    expires_at double precision NOT NULL
)""",
    "CREATE INDEX lane_leases_by_owner ON {schema}.lane_leases (owner)",
    """
CREATE TABLE {schema}.workers (
    owner text PRIMARY KEY,
    seen_at double precision NOT NULL
)""",
)
"""A new outbox, at SCHEMA_VERSION; ``INSERT_VERSION`` marks it."""

INSERT_VERSION: Final = "INSERT INTO {schema}.outbox_version (version) VALUES (%(version)s)"

# Creators of one schema in one database wait for each other; the key is the schema's name.
LOCK_FOR_CREATION: Final = "SELECT pg_advisory_xact_lock(hashtext('ordered_sender:' || %(name)s))"

SCHEMA_EXISTS: Final = "SELECT 1 FROM pg_namespace WHERE nspname = %(name)s"

VERSION_TABLE: Final = "SELECT to_regclass(%(table)s) IS NOT NULL"

SELECT_VERSION: Final = "SELECT version FROM {schema}.outbox_version"

# Locks the lane's row for the put's transaction, creating it (head unknown) if the lane is new;
# RETURNING says whether the lane already had a head.
LOCK_LANE: Final = """
INSERT INTO {schema}.lanes AS l (lane) VALUES (%(lane)s)
ON CONFLICT (lane) DO UPDATE SET lane = l.lane
RETURNING head_seq, paused_at
"""

INSERT_MESSAGE: Final = """
INSERT INTO {schema}.messages (message_id, lane, input_name, payload, timestamp_ms, enqueued_at)
VALUES (%(message_id)s, %(lane)s, %(input_name)s, %(payload)s, %(timestamp_ms)s, %(enqueued_at)s)
ON CONFLICT (message_id) DO NOTHING
RETURNING seq
"""

SET_NEW_HEAD: Final = "UPDATE {schema}.lanes SET head_seq = %(seq)s WHERE lane = %(lane)s"

NOTIFY: Final = "SELECT pg_notify(%(channel)s, '')"

PENDING_TOTALS: Final = """
SELECT count(*), COALESCE(sum(length(payload)), 0) FROM {schema}.messages
WHERE state = 'pending'
"""

MESSAGE_COLUMNS: Final = """
    m.seq, m.message_id, m.lane, m.input_name, m.payload, m.timestamp_ms, m.enqueued_at,
    m.attempts, m.first_attempt_at, m.next_attempt_at, m.solo, m.last_error_code,
    m.last_error_text, m.retry_wait, m.retry_age, m.last_attempt_at
"""

PENDING_MESSAGES: Final = (
    "SELECT"
    + MESSAGE_COLUMNS
    + """
FROM {schema}.messages AS m
WHERE m.seq = ANY(%(seqs)s::bigint[]) AND m.state = 'pending'
ORDER BY m.seq
"""
)

# Every lane a request's outcomes touch, locked in one order (so never a deadlock with a put).
LOCK_LANES_OF: Final = """
SELECT lane FROM {schema}.lanes
WHERE lane IN (SELECT lane FROM {schema}.messages WHERE seq = ANY(%(seqs)s::bigint[]))
ORDER BY lane
FOR UPDATE
"""

MARK_ALL_DELIVERED: Final = """
UPDATE {schema}.messages
SET state = 'delivered', delivered_at = %(now)s, payload = '', attempts = attempts + 1
WHERE seq = ANY(%(seqs)s::bigint[]) AND state = 'pending'
"""

# Each lane whose head (of ``seqs``) left it gets its next pending message as the head ...
ADVANCE_LANES: Final = """
UPDATE {schema}.lanes AS l
SET head_seq = n.seq, next_attempt_at = GREATEST(n.next_attempt_at, %(not_before)s),
    retry_wait = n.retry_wait
FROM (SELECT DISTINCT lane FROM {schema}.messages WHERE seq = ANY(%(seqs)s::bigint[])) AS t
CROSS JOIN LATERAL (
    SELECT m.seq, m.next_attempt_at, m.retry_wait FROM {schema}.messages AS m
    WHERE m.lane = t.lane AND m.state = 'pending' ORDER BY m.seq LIMIT 1
) AS n
WHERE l.lane = t.lane
"""

# ... or, with nothing left, is gone.
DROP_EMPTY_LANES: Final = """
DELETE FROM {schema}.lanes AS l
WHERE l.lane IN (SELECT lane FROM {schema}.messages WHERE seq = ANY(%(seqs)s::bigint[]))
    AND NOT EXISTS (
        SELECT 1 FROM {schema}.messages AS m WHERE m.lane = l.lane AND m.state = 'pending'
    )
"""

MARK_DEAD_LETTER: Final = """
UPDATE {schema}.messages
SET state = 'dead_letter', failed_at = %(now)s, attempts = %(attempts)s,
    first_attempt_at = %(first_attempt_at)s, last_error_code = %(error_code)s,
    last_error_text = %(error_text)s
WHERE seq = %(seq)s AND state = 'pending'
RETURNING lane
"""

RECORD_ATTEMPT: Final = """
UPDATE {schema}.messages
SET attempts = %(attempts)s, first_attempt_at = %(first_attempt_at)s,
    next_attempt_at = %(next_attempt_at)s, last_error_code = %(error_code)s,
    last_error_text = %(error_text)s, solo = %(solo)s, retry_wait = %(retry_wait)s,
    retry_age = %(retry_age)s, last_attempt_at = %(now)s
WHERE seq = %(seq)s AND state = 'pending'
"""

RESCHEDULE_LANE: Final = """
UPDATE {schema}.lanes SET next_attempt_at = %(next_attempt_at)s, retry_wait = %(retry_wait)s
WHERE head_seq = %(seq)s
"""

# The failed message is the head the lane stops at, even if a redrive slipped in before it while
# it was in flight: the pause names the message that failed.
PAUSE_LANE: Final = """
UPDATE {schema}.lanes
SET paused_at = %(now)s, pause_code = %(error_code)s, pause_text = %(error_text)s,
    next_attempt_at = %(now)s, retry_wait = 0, head_seq = %(seq)s
WHERE lane = %(lane)s
"""

# An operator's pause, at the lane's head: the lane's row locked first (a worker recording the
# head's outcome waits for it, or it for the worker). The head may be in flight; its outcome is
# still recorded, and ADVANCE_LANES leaves the pause alone, so it moves with the head.
LOCK_LANE_TO_PAUSE: Final = """
SELECT head_seq, paused_at FROM {schema}.lanes WHERE lane = %(lane)s FOR UPDATE
"""

PAUSE_LANE_BY_OPERATOR: Final = """
UPDATE {schema}.lanes SET paused_at = %(now)s, pause_code = %(code)s, pause_text = %(text)s
WHERE lane = %(lane)s
"""

# The lane goes on in put order (its oldest pending message first: a redrive may have slipped in
# before the failed one while it was in flight); returns the failed message, whose attempts reset.
RESUME_LANE: Final = """
UPDATE {schema}.lanes AS l
SET paused_at = NULL, pause_code = NULL, pause_text = NULL, next_attempt_at = %(now)s,
    retry_wait = 0,
    head_seq = (
        SELECT MIN(m.seq) FROM {schema}.messages AS m
        WHERE m.lane = l.lane AND m.state = 'pending'
    )
FROM (
    SELECT head_seq AS failed_seq FROM {schema}.lanes
    WHERE lane = %(lane)s AND paused_at IS NOT NULL
    FOR UPDATE
) AS f
WHERE l.lane = %(lane)s AND l.paused_at IS NOT NULL
RETURNING f.failed_seq
"""

RESET_ATTEMPTS: Final = """
UPDATE {schema}.messages
SET attempts = 0, first_attempt_at = NULL, next_attempt_at = %(now)s, retry_wait = 0,
    retry_age = 0, last_attempt_at = NULL
WHERE seq = %(seq)s
"""

SELECT_DEAD_LETTER: Final = """
SELECT seq, lane FROM {schema}.messages
WHERE message_id = %(message_id)s AND state = 'dead_letter'
FOR UPDATE
"""

REDRIVE_MESSAGE: Final = """
UPDATE {schema}.messages
SET state = 'pending', attempts = 0, first_attempt_at = NULL, next_attempt_at = %(now)s,
    retry_wait = 0, retry_age = 0, last_attempt_at = NULL, failed_at = NULL, solo = false
WHERE seq = %(seq)s
"""

NEXT_HEAD: Final = """
SELECT seq, next_attempt_at, retry_wait FROM {schema}.messages
WHERE lane = %(lane)s AND state = 'pending' ORDER BY seq LIMIT 1
"""

MOVE_HEAD: Final = """
UPDATE {schema}.lanes
SET head_seq = %(seq)s, next_attempt_at = %(due)s, retry_wait = %(retry_wait)s
WHERE lane = %(lane)s
"""

DELETE_LANE: Final = "DELETE FROM {schema}.lanes WHERE lane = %(lane)s"

DROP_DEAD_LETTER: Final = """
UPDATE {schema}.messages SET state = 'dropped', payload = '', delivered_at = %(now)s
WHERE message_id = %(message_id)s AND state = 'dead_letter'
"""

SELECT_DEAD_LETTERS: Final = """
SELECT lane, seq, message_id, input_name, last_error_code, last_error_text, attempts,
    enqueued_at, failed_at
FROM {schema}.messages
WHERE state = 'dead_letter' AND (%(lane)s::text IS NULL OR lane = %(lane)s)
ORDER BY seq
"""

CLAMP_RETRIES: Final = """
UPDATE {schema}.lanes SET next_attempt_at = %(now)s + retry_wait
WHERE paused_at IS NULL AND next_attempt_at > %(now)s + retry_wait
"""

SELECT_PAUSED: Final = """
SELECT l.lane, l.head_seq, m.message_id, l.pause_code, l.pause_text, l.paused_at
FROM {schema}.lanes AS l JOIN {schema}.messages AS m ON m.seq = l.head_seq
WHERE l.paused_at IS NOT NULL
ORDER BY l.paused_at, l.lane
"""

SELECT_STATUS: Final = """
SELECT m.message_id, m.lane, m.seq, m.state, l.paused_at IS NOT NULL
FROM {schema}.messages AS m LEFT JOIN {schema}.lanes AS l ON l.lane = m.lane
WHERE m.message_id = %(message_id)s
"""

COUNT_LANES: Final = """
SELECT count(*), count(paused_at) FROM {schema}.lanes WHERE head_seq IS NOT NULL
"""

COUNT_BLOCKED: Final = """
SELECT count(*) FROM {schema}.messages AS m JOIN {schema}.lanes AS l ON l.lane = m.lane
WHERE m.state = 'pending' AND l.paused_at IS NOT NULL
"""

COUNT_DEAD_LETTERS: Final = "SELECT count(*) FROM {schema}.messages WHERE state = 'dead_letter'"

LANES_OVERVIEW: Final = """
SELECT l.lane,
    (SELECT count(*) FROM {schema}.messages AS p WHERE p.lane = l.lane AND p.state = 'pending'),
    m.enqueued_at, m.message_id, m.attempts, l.next_attempt_at, m.last_error_code,
    m.last_error_text, l.paused_at IS NOT NULL
FROM {schema}.lanes AS l JOIN {schema}.messages AS m ON m.seq = l.head_seq
ORDER BY l.paused_at IS NULL, l.head_seq
LIMIT %(limit)s
"""

# The oldest pending message is a lane head: the smallest head of the moving lanes (one step
# through lanes_by_head) or the head of a paused lane; the backlog behind the heads is not read.
OLDEST_PENDING_ENQUEUED_AT: Final = """
SELECT min(m.enqueued_at)
FROM {schema}.lanes AS l JOIN {schema}.messages AS m ON m.seq = l.head_seq
WHERE l.paused_at IS NOT NULL
    OR l.head_seq = (SELECT min(head_seq) FROM {schema}.lanes WHERE paused_at IS NULL)
"""

FORGET_DELIVERED: Final = """
DELETE FROM {schema}.messages
WHERE state IN ('delivered', 'dropped') AND delivered_at < %(before)s
"""

# -- leases ---------------------------------------------------------------------------------------
# Lease times are the server's (one clock for every host); scheduling times are the caller's.

SERVER_NOW: Final = "extract(epoch FROM clock_timestamp())"

RENEW_LEASES: Final = (
    "UPDATE {schema}.lane_leases SET expires_at = "
    + SERVER_NOW
    + """ + %(seconds)s
WHERE owner = %(owner)s
RETURNING lane, token
"""
)

# The worker is alive: seen now (with each renewal of its leases).
SEEN_WORKER: Final = (
    """
INSERT INTO {schema}.workers AS w (owner, seen_at) VALUES (%(owner)s, """
    + SERVER_NOW
    + """)
ON CONFLICT (owner) DO UPDATE SET seen_at = EXCLUDED.seen_at
"""
)

# Due heads of lanes nobody holds a live lease on, oldest put first; a lease that another worker
# took or renewed meanwhile is left alone (the WHERE of DO UPDATE sees its latest version). A
# worker takes lanes only up to its fair share of the due lanes, counting the live leases it
# holds: ceil(due lanes / live workers), rounded up to whole requests (``request`` heads, 10), so
# that its requests stay full; a lane it just gave back goes to a worker with fewer, and each live
# worker delivers a part. A worker that did not yet see itself counts as one.
ACQUIRE_LEASES: Final = (
    """
INSERT INTO {schema}.lane_leases AS k (lane, owner, token, expires_at)
SELECT l.lane, %(owner)s, nextval('{schema}.lease_tokens'), """
    + SERVER_NOW
    + """ + %(seconds)s
FROM {schema}.lanes AS l
WHERE l.paused_at IS NULL AND l.head_seq IS NOT NULL AND l.next_attempt_at <= %(now)s
    AND l.lane <> ALL(%(exclude)s::text[])
    AND NOT EXISTS (
        SELECT 1 FROM {schema}.lane_leases AS o
        WHERE o.lane = l.lane AND o.expires_at >= """
    + SERVER_NOW
    + """
    )
ORDER BY l.head_seq
LIMIT least(%(limit)s, greatest(0, (
    SELECT (%(request)s * ceil(ceil(due.n::numeric / greatest(1, live.n)) / %(request)s))::bigint
        - mine.n
    FROM (
        SELECT count(*) AS n FROM {schema}.lanes
        WHERE paused_at IS NULL AND head_seq IS NOT NULL AND next_attempt_at <= %(now)s
    ) AS due, (
        SELECT count(*) AS n FROM {schema}.workers WHERE seen_at >= """
    + SERVER_NOW
    + """ - %(seconds)s
    ) AS live, (
        SELECT count(*) AS n FROM {schema}.lane_leases
        WHERE owner = %(owner)s AND expires_at >= """
    + SERVER_NOW
    + """
    ) AS mine
)))
ON CONFLICT (lane) DO UPDATE
SET owner = EXCLUDED.owner, token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
WHERE k.expires_at < """
    + SERVER_NOW
    + """
RETURNING lane, token
"""
)

LEASED_HEADS: Final = (
    "SELECT"
    + MESSAGE_COLUMNS
    + """, k.token
FROM {schema}.lane_leases AS k
JOIN {schema}.lanes AS l ON l.lane = k.lane
JOIN {schema}.messages AS m ON m.seq = l.head_seq
WHERE k.owner = %(owner)s AND l.paused_at IS NULL AND l.next_attempt_at <= %(now)s
    AND l.lane <> ALL(%(exclude)s::text[])
ORDER BY l.head_seq
LIMIT %(limit)s
"""
)

# The earliest due head this worker could send: of its own lanes or of lanes nobody holds.
NEXT_ATTEMPT_AT_FOR: Final = (
    """
SELECT min(l.next_attempt_at) FROM {schema}.lanes AS l
WHERE l.paused_at IS NULL AND l.head_seq IS NOT NULL AND l.lane <> ALL(%(exclude)s::text[])
    AND NOT EXISTS (
        SELECT 1 FROM {schema}.lane_leases AS o
        WHERE o.lane = l.lane AND o.owner <> %(owner)s AND o.expires_at >= """
    + SERVER_NOW
    + """
    )
"""
)

# The leases of a request's lanes, locked, so that no worker takes one while its outcome is
# recorded; ``expired`` says whether its holder let it lapse.
LOCK_LEASES_OF: Final = (
    """
SELECT m.seq, m.lane, k.owner, k.token, k.expires_at < """
    + SERVER_NOW
    + """ AS expired
FROM {schema}.messages AS m
LEFT JOIN LATERAL (
    SELECT * FROM {schema}.lane_leases AS o WHERE o.lane = m.lane FOR UPDATE
) AS k ON true
WHERE m.seq = ANY(%(seqs)s::bigint[])
ORDER BY m.lane
"""
)

RELEASE_LEASES: Final = """
DELETE FROM {schema}.lane_leases WHERE owner = %(owner)s AND lane = ANY(%(lanes)s::text[])
"""

RELEASE_ALL_LEASES: Final = "DELETE FROM {schema}.lane_leases WHERE owner = %(owner)s"

GONE_WORKER: Final = "DELETE FROM {schema}.workers WHERE owner = %(owner)s"

# Leases of workers that died, on lanes nobody took since: an hour past expiry, surely dead.
FORGET_DEAD_LEASES: Final = (
    "DELETE FROM {schema}.lane_leases WHERE expires_at < " + SERVER_NOW + " - 3600"
)

FORGET_DEAD_WORKERS: Final = (
    "DELETE FROM {schema}.workers WHERE seen_at < " + SERVER_NOW + " - 3600"
)

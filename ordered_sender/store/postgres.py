"""PostgresStore: the outbox in a PostgreSQL database, for producers and workers on many hosts.

The tables and every statement are in ``postgres_schema``, created in a schema of their own on
first use; ``postgres_errors`` turns every psycopg error into StoreError or NotAnOutbox, so no
psycopg exception leaves this module as itself. The store takes no decisions and holds no
threads; one lock serialises use of its connection, which is opened again after it was lost.
``add_in_transaction`` puts on a caller's own connection, inside the caller's transaction (the
transactional outbox). Producers' puts and other writers are noticed through LISTEN/NOTIFY.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Concatenate, LiteralString, ParamSpec, TypeVar

import psycopg
from psycopg import sql as psql

from ordered_sender.errors import (
    InvalidMessage,
    LanePaused,
    NotAnOutbox,
    NothingPending,
    StoreError,
)
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
from ordered_sender.store import postgres_schema as sql
from ordered_sender.store.open import DEFAULT_LEASE_SECONDS, DEFAULT_SCHEMA, redacted
from ordered_sender.store.postgres_errors import translated_errors
from ordered_sender.store.postgres_leases import Leases
from ordered_sender.store.rows import (
    check_room,
    lane_overview,
    message_status,
    new_message_row,
    stored_message,
)

Connection = psycopg.Connection[tuple[Any, ...]]


class Statements:
    """postgres_schema's statements with ``{schema}`` filled in, quoted, for one schema."""

    def __init__(self, schema: str) -> None:
        self.schema = schema
        self._identifier = psql.Identifier(schema)
        self._cache: dict[str, psql.Composed] = {}

    def __call__(self, template: LiteralString) -> psql.Composed:
        composed = self._cache.get(template)
        if composed is None:
            composed = psql.SQL(template).format(schema=self._identifier)
            self._cache[template] = composed
        return composed


T = TypeVar("T")
P = ParamSpec("P")


def _again_if_reconnected(
    method: Callable[Concatenate[PostgresStore, P], T],
) -> Callable[Concatenate[PostgresStore, P], T]:
    """Run a read (or a write that may run twice) once more when its connection was lost: the
    server restarted or cut it, and only the next call would reconnect. A put or an outcome is
    not run again: whether it committed is unknown, and its caller decides."""

    @functools.wraps(method)
    def run(store: PostgresStore, /, *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(store, *args, **kwargs)
        except StoreError:
            if not store.lost_connection():
                raise
        return method(store, *args, **kwargs)

    return run


class PostgresStore:
    """The Store protocol on one schema of a PostgreSQL database."""

    def __init__(
        self,
        url: str,
        *,
        schema: str = DEFAULT_SCHEMA,
        create: bool = True,
        read_only: bool = False,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
    ) -> None:
        """Open the outbox in ``schema`` of the database at ``url`` (a libpq URL or conninfo).
        ``create=False`` refuses (NotAnOutbox) to make one; ``read_only`` opens it for reading
        alone. A schema that exists but is not an outbox of this version is refused.
        ``lease_seconds``: how long a lane stays with a worker that stopped renewing its lease
        (postgres_leases)."""
        if read_only and create:
            raise ValueError("read_only=True cannot create an outbox; pass create=False")
        self.url = url
        self.location = redacted(url)
        self.statements = Statements(schema)
        self._read_only = read_only
        self._channel = f"ordered_sender:{schema}"
        self._lock = threading.RLock()
        self._closed = False
        self._listener: Connection | None = None
        self.leases = Leases(self.statements, lease_seconds)
        # How this store's connections show in pg_stat_activity: host, process, store.
        self._application_name = f"ordered-sender {self.leases.owner}"
        with translated_errors(self.location):
            self._connection = self._connect()
            try:
                prepare_schema(self._connection, self.statements, self.location, create=create)
            except BaseException:
                self._connection.close()
                raise

    def _connect(self) -> Connection:
        connection = psycopg.connect(
            self.url, autocommit=True, application_name=self._application_name
        )
        if self._read_only:
            connection.execute("SET default_transaction_read_only = on")
        return connection

    def lost_connection(self) -> bool:
        """Whether a connection of this open store was lost (it is opened again at next use)."""
        listener_lost = self._listener is not None and self._listener.closed
        return not self._closed and (self._connection.closed or listener_lost)

    @contextmanager
    def _using(self) -> Iterator[Connection]:
        """The connection, alone, with psycopg's errors translated; one that was lost (the
        server restarted, the network failed) is opened again first."""
        with self._lock, translated_errors(self.location):
            if self._closed:
                raise StoreError(
                    self.location,
                    "was closed by this process, so it can no longer be used; open the outbox "
                    "again (a new Outbox or OrderedSender) to go on",
                )
            if self._connection.closed:
                self._connection = self._connect()
            yield self._connection

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self._using() as connection, connection.transaction():
            yield connection

    def add(
        self, entries: Sequence[NewEntry], now: float, limits: PendingLimits | None = None
    ) -> list[StoredMessage]:
        with self._transaction() as connection:
            return add_entries(connection, self.statements, entries, now, limits, self._channel)

    def add_in_transaction(
        self,
        connection: Connection,
        entries: Sequence[NewEntry],
        now: float,
        limits: PendingLimits | None = None,
    ) -> list[StoredMessage]:
        """Put the entries through the caller's ``connection``, inside the transaction it has
        open: they commit, and become visible to workers, when the caller commits, and vanish
        if it rolls back. A savepoint makes them all or none within that transaction."""
        status = connection.info.transaction_status
        if status is _IDLE and connection.autocommit:
            raise ValueError(
                "connection= must be in a transaction (`with connection.transaction():`, or "
                "autocommit off); in autocommit with none open, the put would commit on its own"
            )
        if status is psycopg.pq.TransactionStatus.INERROR:
            raise ValueError("connection= is in a failed transaction; roll it back before putting")
        with translated_errors(self.location):
            if status is _IDLE:
                # Autocommit off: psycopg begins the caller's transaction at its first statement;
                # begin it now, or transaction() below would begin and commit one of its own.
                connection.execute("SELECT 1")
            with connection.transaction():
                return add_entries(connection, self.statements, entries, now, limits, self._channel)

    @_again_if_reconnected
    def changed_elsewhere(self) -> bool:
        """True when another connection put, resumed or redrove since the last call: a look at
        notifications already received, no round trip to the server."""
        with self._using() as connection:
            self.leases.renew_if_due(connection)
        with self._lock, translated_errors(self.location):
            if self._listener is None or self._listener.closed:
                self._listener = psycopg.connect(
                    self.url, autocommit=True, application_name=self._application_name
                )
                self._listener.execute(psql.SQL("LISTEN {}").format(psql.Identifier(self._channel)))
                return True
            return any(True for _ in self._listener.notifies(timeout=0))

    @_again_if_reconnected
    def pending_totals(self) -> tuple[int, int]:
        with self._using() as connection:
            pending, pending_bytes = _one(connection, self.statements(sql.PENDING_TOTALS))
        return int(pending), int(pending_bytes)

    @_again_if_reconnected
    def ready_heads(
        self, now: float, exclude_lanes: Collection[str], limit: int
    ) -> list[StoredMessage]:
        """Due heads of the lanes this worker holds the lease of, leasing free due lanes first
        (postgres_leases): another worker's lanes are never handed out here."""
        with self._using() as connection:
            return self.leases.take_heads(connection, now, exclude_lanes, limit)

    @_again_if_reconnected
    def pending_messages(self, seqs: Sequence[int]) -> list[StoredMessage]:
        with self._using() as connection:
            rows = connection.execute(
                self.statements(sql.PENDING_MESSAGES), {"seqs": list(seqs)}
            ).fetchall()
        return [stored_message(row) for row in rows]

    @_again_if_reconnected
    def next_attempt_at(self, exclude_lanes: Collection[str]) -> float | None:
        """Earliest due time of this worker's lanes and the lanes nobody holds."""
        with self._using() as connection:
            due = self.leases.next_attempt_at(connection, exclude_lanes)
        return None if due is None else float(due)

    def apply(self, decisions: Sequence[Decision], now: float) -> None:
        """Record the outcomes this worker's leases still cover, and give those leases back; an
        outcome of a lane another worker took over is refused (postgres_leases.fence)."""
        statements = self.statements
        # Pipelined: statements whose results nobody waits for go out together (one round trip
        # for the locks and the fence, one for the writes and the commit).
        with self._using() as connection, connection.pipeline(), connection.transaction():
            seqs = [decision.seq for decision in decisions]
            connection.execute(statements(sql.LOCK_LANES_OF), {"seqs": seqs})
            decisions = self.leases.fence(connection, decisions)
            delivered = [d for d in decisions if isinstance(d, Delivered)]
            if delivered:
                not_before = max(d.next_head_not_before for d in delivered)
                _deliver_all(connection, statements, [d.seq for d in delivered], now, not_before)
            for decision in decisions:
                if not isinstance(decision, Delivered):
                    _apply(connection, statements, decision, now)
        self.leases.recorded(decisions)

    @_again_if_reconnected
    def paused_lanes(self) -> list[PausedLane]:
        with self._using() as connection:
            rows = connection.execute(self.statements(sql.SELECT_PAUSED)).fetchall()
        return [PausedLane(*row) for row in rows]

    def pause(self, lane: str, now: float, reason: str | None = None) -> bool:
        statements = self.statements
        with self._transaction() as connection:
            row = connection.execute(statements(sql.LOCK_LANE_TO_PAUSE), {"lane": lane}).fetchone()
            if row is None or row[0] is None:
                raise NothingPending(lane)
            if row[1] is not None:
                return False
            connection.execute(
                statements(sql.PAUSE_LANE_BY_OPERATOR),
                {
                    "lane": lane,
                    "now": now,
                    "code": PAUSED_BY_OPERATOR,
                    "text": reason or NO_REASON_GIVEN,
                },
            )
            return True

    def resume(self, lane: str, now: float) -> bool:
        with self._transaction() as connection:
            row = connection.execute(
                self.statements(sql.RESUME_LANE), {"lane": lane, "now": now}
            ).fetchone()
            if row is None:
                return False
            connection.execute(self.statements(sql.RESET_ATTEMPTS), {"now": now, "seq": row[0]})
            connection.execute(sql.NOTIFY, {"channel": self._channel})
            return True

    @_again_if_reconnected
    def dead_letters(self, lane: str | None = None) -> list[DeadLetter]:
        with self._using() as connection:
            rows = connection.execute(
                self.statements(sql.SELECT_DEAD_LETTERS), {"lane": lane}
            ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def redrive(self, message_id: str, now: float) -> str | None:
        statements = self.statements
        with self._transaction() as connection:
            found = connection.execute(
                statements(sql.SELECT_DEAD_LETTER), {"message_id": message_id}
            ).fetchone()
            if found is None:
                return None
            seq, lane = found
            _, paused_at = _one(connection, statements(sql.LOCK_LANE), {"lane": lane})
            if paused_at is not None:
                raise LanePaused(
                    message_id,
                    lane,
                    "its lane is paused at another message; resume the lane before redriving",
                )
            connection.execute(statements(sql.REDRIVE_MESSAGE), {"seq": seq, "now": now})
            # Its seq is older than anything put into the lane after it, so it goes first.
            _advance_lane(connection, statements, lane)
            connection.execute(sql.NOTIFY, {"channel": self._channel})
            return str(lane)

    def drop(self, message_id: str, now: float) -> bool:
        with self._using() as connection:
            cursor = connection.execute(
                self.statements(sql.DROP_DEAD_LETTER), {"message_id": message_id, "now": now}
            )
        return cursor.rowcount > 0

    @_again_if_reconnected
    def clamp_retries(self, now: float) -> int:
        with self._using() as connection:
            cursor = connection.execute(self.statements(sql.CLAMP_RETRIES), {"now": now})
        return cursor.rowcount

    @_again_if_reconnected
    def status(self, message_id: str) -> MessageStatus | None:
        with self._using() as connection:
            row = connection.execute(
                self.statements(sql.SELECT_STATUS), {"message_id": message_id}
            ).fetchone()
        return None if row is None else message_status(row)

    @_again_if_reconnected
    def counts(self) -> OutboxCounts:
        statements = self.statements
        with self._transaction() as connection:
            # One snapshot for every count.
            connection.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            pending, pending_bytes = _one(connection, statements(sql.PENDING_TOTALS))
            lanes, paused = _one(connection, statements(sql.COUNT_LANES))
            (blocked,) = _one(connection, statements(sql.COUNT_BLOCKED))
            (dead,) = _one(connection, statements(sql.COUNT_DEAD_LETTERS))
        return OutboxCounts(
            pending=pending,
            blocked=blocked,
            paused_lanes=paused,
            lanes=lanes,
            dead_letters=dead,
            pending_bytes=int(pending_bytes),
        )

    @_again_if_reconnected
    def lanes_overview(self, limit: int) -> list[LaneOverview]:
        with self._using() as connection:
            rows = connection.execute(
                self.statements(sql.LANES_OVERVIEW), {"limit": limit}
            ).fetchall()
        return [lane_overview(row) for row in rows]

    @_again_if_reconnected
    def oldest_pending_enqueued_at(self) -> float | None:
        with self._using() as connection:
            (oldest,) = _one(connection, self.statements(sql.OLDEST_PENDING_ENQUEUED_AT))
        return None if oldest is None else float(oldest)

    @_again_if_reconnected
    def deliverable_lanes(self) -> int:
        with self._using() as connection:
            lanes, paused = _one(connection, self.statements(sql.COUNT_LANES))
        return int(lanes - paused)

    @_again_if_reconnected
    def forget_delivered(self, before: float) -> int:
        """Also forgets the leases and rows of workers that died long ago (the upkeep's minute
        chore)."""
        with self._using() as connection:
            connection.execute(self.statements(sql.FORGET_DEAD_LEASES))
            connection.execute(self.statements(sql.FORGET_DEAD_WORKERS))
            cursor = connection.execute(self.statements(sql.FORGET_DELIVERED), {"before": before})
        return cursor.rowcount

    def close(self) -> None:
        with self._lock:
            if not self._closed and not self._read_only and not self._connection.closed:
                # Failing that, they lapse by themselves after lease_seconds.
                with contextlib.suppress(psycopg.Error):
                    self.leases.release_all(self._connection)
            self._closed = True
            self._connection.close()
            if self._listener is not None:
                self._listener.close()


_IDLE = psycopg.pq.TransactionStatus.IDLE


def prepare_schema(
    connection: Connection, statements: Statements, location: str, *, create: bool
) -> None:
    """Create the outbox's schema on first use, or check that the one there is an outbox of
    this version; NotAnOutbox otherwise, leaving it as it was. Creators wait for each other."""
    name = statements.schema
    where = f"outbox {location} (schema {name})"
    with connection.transaction():
        if not _read_only(connection):
            connection.execute(sql.LOCK_FOR_CREATION, {"name": name})
        if connection.execute(sql.SCHEMA_EXISTS, {"name": name}).fetchone() is None:
            if not create:
                raise NotAnOutbox(
                    f"{where} does not exist; `ordered-sender send` or Outbox.put creates it; "
                    "check the URL"
                )
            for statement in sql.CREATE_SCHEMA:
                connection.execute(statements(statement))
            connection.execute(statements(sql.INSERT_VERSION), {"version": sql.SCHEMA_VERSION})
            return
        table = psql.Identifier(name, "outbox_version").as_string(connection)
        (has_version,) = _one(connection, sql.VERSION_TABLE, {"table": table})
        if not has_version:
            raise NotAnOutbox(
                f"{where}: the schema exists but is not an ordered-sender outbox (it has no "
                "outbox_version table); give the outbox a schema of its own. It was not changed."
            )
        versions = connection.execute(statements(sql.SELECT_VERSION)).fetchall()
        if versions != [(sql.SCHEMA_VERSION,)]:
            found = ", ".join(str(v) for (v,) in versions) or "none"
            raise NotAnOutbox(
                f"{where} has schema version {found} and this ordered-sender knows "
                f"{sql.SCHEMA_VERSION}; use the ordered-sender release that wrote it (a newer "
                "one: upgrade). It was not changed."
            )


def _read_only(connection: Connection) -> bool:
    (setting,) = _one(connection, "SHOW transaction_read_only")
    return bool(setting == "on")


def add_entries(
    connection: Connection,
    statements: Statements,
    entries: Sequence[NewEntry],
    now: float,
    limits: PendingLimits | None,
    channel: str,
) -> list[StoredMessage]:
    """Store the entries, in order (the caller holds the transaction). Each lane's row is locked
    first, lanes sorted, so each lane's seqs follow its commit order and puts never deadlock."""
    new_lanes = set()
    for lane in sorted({entry.lane for entry in entries}):
        head_seq, _ = _one(connection, statements(sql.LOCK_LANE), {"lane": lane})
        if head_seq is None:
            new_lanes.add(lane)
    if limits is not None:
        pending, pending_bytes = _one(connection, statements(sql.PENDING_TOTALS))
        check_room(pending, pending_bytes, entries, limits)
    stored: list[StoredMessage] = []
    for entry in entries:
        message = entry.message
        inserted = connection.execute(
            statements(sql.INSERT_MESSAGE), new_message_row(entry, now)
        ).fetchone()
        if inserted is None:  # the caller's transaction (or savepoint) undoes the whole add
            raise InvalidMessage(
                "message_id",
                message.message_id,
                "is already used by a message in this outbox; message ids must be unique "
                "(IoT Events would drop a reused id as a duplicate)",
            )
        (seq,) = inserted
        if entry.lane in new_lanes:
            connection.execute(statements(sql.SET_NEW_HEAD), {"lane": entry.lane, "seq": seq})
            new_lanes.discard(entry.lane)
        stored.append(StoredMessage(seq, message, entry.lane, enqueued_at=now))
    connection.execute(sql.NOTIFY, {"channel": channel})
    return stored


def _deliver_all(
    connection: Connection, statements: Statements, seqs: list[int], now: float, not_before: float
) -> None:
    """Mark the delivered heads of one request (distinct lanes, locked) and advance their lanes
    in three statements, none waiting for another's result; the next heads are not due before
    ``not_before``."""
    connection.execute(statements(sql.MARK_ALL_DELIVERED), {"seqs": seqs, "now": now})
    connection.execute(statements(sql.ADVANCE_LANES), {"seqs": seqs, "not_before": not_before})
    connection.execute(statements(sql.DROP_EMPTY_LANES), {"seqs": seqs})


def _apply(
    connection: Connection,
    statements: Statements,
    decision: Retry | Pause | MoveToDeadLetters,
    now: float,
) -> None:
    """Record one failure's decision; the caller holds the transaction and the lane's lock."""
    if isinstance(decision, MoveToDeadLetters):
        row = connection.execute(
            statements(sql.MARK_DEAD_LETTER),
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
            _advance_lane(connection, statements, row[0])
        return
    retry = decision if isinstance(decision, Retry) else None
    due = now if retry is None else retry.next_attempt_at
    retry_wait = 0.0 if retry is None else retry.retry_wait
    connection.execute(
        statements(sql.RECORD_ATTEMPT),
        {
            "seq": decision.seq,
            "attempts": decision.attempts,
            "first_attempt_at": decision.first_attempt_at,
            "next_attempt_at": due,
            "error_code": decision.error_code,
            "error_text": decision.error_text,
            "solo": retry is not None and retry.solo,
            "retry_wait": retry_wait,
            "retry_age": decision.retry_age,
            "now": now,
        },
    )
    connection.execute(
        statements(sql.RESCHEDULE_LANE),
        {"seq": decision.seq, "next_attempt_at": due, "retry_wait": retry_wait},
    )
    if isinstance(decision, Pause):
        connection.execute(
            statements(sql.PAUSE_LANE),
            {
                "seq": decision.seq,
                "lane": decision.lane,
                "error_code": decision.error_code,
                "error_text": decision.error_text,
                "now": now,
            },
        )


def _advance_lane(connection: Connection, statements: Statements, lane: str) -> None:
    """The lane's head left it (its row is locked): the next pending message is the head, or
    the lane is gone."""
    head = connection.execute(statements(sql.NEXT_HEAD), {"lane": lane}).fetchone()
    if head is None:
        connection.execute(statements(sql.DELETE_LANE), {"lane": lane})
    else:
        connection.execute(
            statements(sql.MOVE_HEAD),
            {"lane": lane, "seq": head[0], "due": head[1], "retry_wait": head[2]},
        )


def _one(
    connection: Connection,
    query: psql.Composed | LiteralString,
    params: dict[str, Any] | None = None,
) -> tuple[Any, ...]:
    row = connection.execute(query, params).fetchone()
    assert row is not None, "a statement that always returns a row returned none"
    return row

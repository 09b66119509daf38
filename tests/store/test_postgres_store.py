"""PostgresStore beyond the contract: its schema and version, its errors provoked for real, and
lanes written by several transactions at once."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest
from structlog.testing import capture_logs

from ordered_sender import InvalidMessage, NotAnOutbox, Outbox, StoreError
from ordered_sender.message import Message
from ordered_sender.store import Delivered, NewEntry, Retry
from ordered_sender.store.open import DatabaseUrl, outbox_target
from ordered_sender.testing import ManualClock

psycopg = pytest.importorskip("psycopg", reason="pip install 'ordered-sender[postgres]'")

from ordered_sender.store.postgres import PostgresStore  # noqa: E402
from ordered_sender.store.postgres_errors import POSTGRES_ERRORS, translate  # noqa: E402
from ordered_sender.store.postgres_leases import Leases  # noqa: E402

WAIT_SECONDS = 10.0


def entry(lane: str, message_id: str) -> NewEntry:
    return NewEntry(Message(lane, b"{}", message_id, 1), lane)


@pytest.fixture
def store(postgres_url: str) -> Iterator[PostgresStore]:
    opened = PostgresStore(postgres_url)
    yield opened
    opened.close()


def admin(url: str) -> Any:
    return psycopg.connect(url, autocommit=True)


def wait_for_lock_waiters(url: str, count: int) -> None:
    """Until ``count`` sessions of the database wait for a lock (a condition, looked at until a
    deadline; the sessions are in other threads)."""
    deadline = time.monotonic() + WAIT_SECONDS
    with admin(url) as connection:
        while time.monotonic() < deadline:
            (waiting,) = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            ).fetchone()
            if waiting >= count:
                return
            time.sleep(0.01)
    raise AssertionError(f"no {count} session(s) waited for a lock within {WAIT_SECONDS} s")


# -- schema and version -----------------------------------------------------------------------


def test_the_outbox_lives_in_a_schema_of_its_own_created_on_first_use(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with admin(postgres_url) as connection:
        tables = connection.execute(
            "SELECT schemaname, tablename FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 2"
        ).fetchall()
        version = connection.execute("SELECT version FROM ordered_sender.outbox_version").fetchall()
    assert tables == [
        ("ordered_sender", "lane_leases"),
        ("ordered_sender", "lanes"),
        ("ordered_sender", "messages"),
        ("ordered_sender", "outbox_version"),
        ("ordered_sender", "workers"),
    ]
    assert version == [(2,)]


def test_create_false_refuses_a_database_without_an_outbox_and_creates_nothing(
    postgres_url: str,
) -> None:
    with pytest.raises(NotAnOutbox, match=r"schema ordered_sender\) does not exist"):
        PostgresStore(postgres_url, create=False)
    with admin(postgres_url) as connection:
        assert (
            connection.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = 'ordered_sender'"
            ).fetchone()
            is None
        )


def test_a_schema_of_another_version_is_refused_and_left_as_it_was(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    with admin(postgres_url) as connection:
        connection.execute("UPDATE ordered_sender.outbox_version SET version = 3")
    with pytest.raises(NotAnOutbox, match="schema version 3 and this ordered-sender knows 2"):
        PostgresStore(postgres_url)
    with admin(postgres_url) as connection:
        assert connection.execute(
            "SELECT version FROM ordered_sender.outbox_version"
        ).fetchall() == [(3,)]


def test_a_schema_of_that_name_that_is_no_outbox_is_refused(postgres_url: str) -> None:
    with admin(postgres_url) as connection:
        connection.execute("CREATE SCHEMA ordered_sender")
        connection.execute("CREATE TABLE ordered_sender.orders (id int)")
    with pytest.raises(NotAnOutbox, match="exists but is not an ordered-sender outbox"):
        PostgresStore(postgres_url)


def test_openers_racing_on_a_new_database_create_the_schema_once(postgres_url: str) -> None:
    with ThreadPoolExecutor(4) as pool:
        stores = list(pool.map(lambda _: PostgresStore(postgres_url), range(4)))
    for opened in stores:
        opened.close()
    with admin(postgres_url) as connection:
        assert connection.execute(
            "SELECT count(*) FROM ordered_sender.outbox_version"
        ).fetchone() == (1,)


# -- errors, provoked for real ------------------------------------------------------------------


def test_an_unreachable_server_is_a_store_error_that_never_shows_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError, match="cannot connect to PostgreSQL") as raised:
        PostgresStore(f"postgresql://someone:s3cret@127.0.0.1:{port}/db")
    assert "s3cret" not in str(raised.value)
    assert f"postgresql://someone@127.0.0.1:{port}/db" in str(raised.value)


def test_a_missing_database_is_named_in_the_error(postgres_url: str) -> None:
    missing = postgres_url.rsplit("/", 1)[0] + "/no_such_database"
    with pytest.raises(StoreError, match='database "no_such_database" does not exist'):
        PostgresStore(missing)


def terminate_other_sessions(url: str) -> None:
    with admin(url) as connection:
        connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


def test_a_read_after_a_lost_connection_reconnects_and_a_put_says_it_failed(
    store: PostgresStore, postgres_url: str
) -> None:
    store.add([entry("a", "a1")], now=1.0)
    terminate_other_sessions(postgres_url)
    assert store.counts().pending == 1  # read again on a new connection
    terminate_other_sessions(postgres_url)
    # Whether a put committed before its connection died is not known: it is not run twice.
    with pytest.raises(StoreError, match="opened again"):
        store.add([entry("a", "a2")], now=2.0)
    store.add([entry("a", "a2")], now=2.0)
    assert store.counts().pending == 2


def test_a_user_without_rights_is_told_what_to_grant(postgres_url: str) -> None:
    with admin(postgres_url) as connection:
        connection.execute("CREATE ROLE clerk LOGIN")
    clerk = postgres_url.replace("postgres@", "clerk@")
    with pytest.raises(StoreError, match="grant the user CREATE on the database"):
        PostgresStore(clerk)


def test_a_database_that_takes_no_writes_is_named_so(postgres_url: str) -> None:
    PostgresStore(postgres_url).close()
    database = postgres_url.rsplit("/", 1)[1]
    with admin(postgres_url) as connection:
        connection.execute(f'ALTER DATABASE "{database}" SET default_transaction_read_only = on')
    with PostgresStoreClosing(postgres_url) as opened:
        assert opened.counts().pending == 0  # reading still works
        with pytest.raises(StoreError, match="accepts no writes"):
            opened.add([entry("a", "a1")], now=1.0)


def test_a_store_closed_here_says_so(store: PostgresStore) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed by this process"):
        store.counts()


def test_a_reused_id_is_refused_as_the_message_id(store: PostgresStore) -> None:
    store.add([entry("a", "a1")], now=1.0)
    with pytest.raises(InvalidMessage) as raised:
        store.add([entry("b", "a1")], now=2.0)
    assert raised.value.field == "message_id"


def test_every_entry_of_the_table_names_a_real_sqlstate_or_class() -> None:
    for code, (error_class, problem) in POSTGRES_ERRORS.items():
        sample = code if len(code) == 5 else code + "000"
        translated = translate(psycopg.errors.lookup(sample)("detail"), "postgresql://h/db")
        assert isinstance(translated, error_class), code
        assert problem.split("(")[0] in str(translated)
    unknown = translate(psycopg.errors.lookup("P0001")("raised"), "postgresql://h/db")
    assert "please report it" in str(unknown)


class PostgresStoreClosing(PostgresStore):
    def __enter__(self) -> PostgresStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- lanes written by several transactions at once ---------------------------------------------


def test_a_put_waits_for_an_open_put_into_its_lane_so_the_lane_follows_commit_order(
    store: PostgresStore, postgres_url: str
) -> None:
    store.add([entry("a", "a0")], now=1.0)
    with ThreadPoolExecutor(1) as pool, admin(postgres_url) as business:
        business.autocommit = False
        store.add_in_transaction(business, [entry("a", "first")], now=2.0)
        second: Future[Any] = pool.submit(store.add, [entry("a", "second")], 3.0)
        wait_for_lock_waiters(postgres_url, 1)
        assert not second.done()
        business.commit()
        second.result(timeout=WAIT_SECONDS)
    delivered = []
    while heads := store.ready_heads(100.0, frozenset(), 10):
        delivered.append(heads[0].message.message_id)
        store.apply([Delivered(heads[0].seq)], now=100.0)
    assert delivered == ["a0", "first", "second"]


def test_a_message_put_while_its_lane_empties_is_not_stranded(
    store: PostgresStore, postgres_url: str
) -> None:
    (head,) = store.add([entry("a", "a0")], now=1.0)
    with ThreadPoolExecutor(1) as pool, admin(postgres_url) as business:
        business.autocommit = False
        store.add_in_transaction(business, [entry("a", "a1")], now=2.0)
        # The worker records a0 delivered while a1 is put but not committed: it must wait, or it
        # would see the lane empty and drop it, leaving a1 with no head to be found by.
        recorded = pool.submit(store.apply, [Delivered(head.seq)], 3.0)
        wait_for_lock_waiters(postgres_url, 1)
        business.commit()
        recorded.result(timeout=WAIT_SECONDS)
    assert [h.message.message_id for h in store.ready_heads(100.0, frozenset(), 10)] == ["a1"]


def test_producers_on_many_threads_lose_nothing_and_keep_each_producers_order(
    store: PostgresStore, postgres_url: str
) -> None:
    lanes = ["a", "b", "c"]

    def produce(producer: int) -> None:
        with PostgresStoreClosing(postgres_url) as own:
            for n in range(30):
                lane = lanes[(producer + n) % 3]
                own.add([entry(lane, f"p{producer}-{n:02d}")], now=float(n))

    stop = threading.Event()
    delivered: list[tuple[str, str]] = []

    def deliver() -> None:
        while not stop.is_set() or store.deliverable_lanes():
            for head in store.ready_heads(1e9, frozenset(), 10):
                store.apply([Delivered(head.seq)], now=1.0)
                delivered.append((head.lane, head.message.message_id))

    with ThreadPoolExecutor(5) as pool:
        worker = pool.submit(deliver)
        for producing in [pool.submit(produce, p) for p in range(4)]:
            producing.result()
        stop.set()
        worker.result(timeout=60)
    assert sorted(m for _, m in delivered) == sorted(
        f"p{p}-{n:02d}" for p in range(4) for n in range(30)
    )
    for producer in range(4):
        for lane in lanes:
            mine = [m for on, m in delivered if on == lane and m.startswith(f"p{producer}-")]
            assert mine == sorted(mine)


# -- leases: one worker per lane at a time -------------------------------------------------------


def expire_leases(url: str) -> None:
    """What the passing of lease_seconds does to leases nobody renews (the server's clock
    cannot be moved, so their expiry is)."""
    with admin(url) as connection:
        connection.execute("UPDATE ordered_sender.lane_leases SET expires_at = 0")


def test_a_lane_leased_by_one_worker_is_not_handed_to_another(postgres_url: str) -> None:
    with PostgresStoreClosing(postgres_url) as first, PostgresStoreClosing(postgres_url) as second:
        first.add([entry("a", "a1"), entry("a", "a2"), entry("b", "b1")], now=1.0)
        (head_a,) = first.ready_heads(10.0, frozenset({"b"}), 10)
        assert [h.message.message_id for h in second.ready_heads(10.0, frozenset(), 10)] == ["b1"]
        assert first.ready_heads(10.0, frozenset(), 10) == [head_a]  # b is the second's now
        assert second.next_attempt_at(frozenset({"b"})) is None  # nothing it could send
        first.apply([Delivered(head_a.seq)], now=11.0)
        # Recording gave the lease back: a's next head may go to anyone (2 due lanes are far
        # within a worker's share, a whole request).
        assert [h.message.message_id for h in second.ready_heads(12.0, frozenset(), 10)] == [
            "a2",
            "b1",
        ]


def test_a_worker_takes_at_most_its_fair_share_of_the_due_lanes_among_the_live_workers(
    postgres_url: str,
) -> None:
    with (
        PostgresStoreClosing(postgres_url) as first,
        PostgresStoreClosing(postgres_url) as second,
        PostgresStoreClosing(postgres_url) as third,
    ):
        first.add([entry(f"lane{n:02}", f"m{n:02}") for n in range(30)], now=1.0)
        for store in (first, second, third):
            store.next_attempt_at(frozenset())  # each says it is live
        taken = [len(store.ready_heads(10.0, frozenset(), 100)) for store in (first, second, third)]
        assert taken == [10, 10, 10]  # ceil(30 due lanes / 3 live workers), a whole request
        # The third dies: seen no more for lease_seconds, its leases lapsed. Two live workers
        # now share the 30 lanes: ceil(30 / 2) = 15, rounded up to whole requests, 20; the
        # first takes the 10 lanes of the dead one, the second finds none left.
        with admin(postgres_url) as connection:
            connection.execute(
                "UPDATE ordered_sender.workers SET seen_at = 0 WHERE owner = %s",
                [third.leases.owner],
            )
            connection.execute(
                "UPDATE ordered_sender.lane_leases SET expires_at = 0 WHERE owner = %s",
                [third.leases.owner],
            )
        assert len(first.ready_heads(10.0, frozenset(), 100)) == 20
        assert len(second.ready_heads(10.0, frozenset(), 100)) == 10
        # 12 due lanes, 2 workers: a share of 6 would make requests of 6; a whole request is 10.
        with admin(postgres_url) as connection:
            connection.execute("DELETE FROM ordered_sender.lane_leases")  # all given back
            connection.execute(
                "UPDATE ordered_sender.lanes SET next_attempt_at = 99 WHERE lane > 'lane11'"
            )
        assert len(second.ready_heads(10.0, frozenset(), 100)) == 10
        assert len(first.ready_heads(10.0, frozenset(), 100)) == 2


def test_a_dead_worker_s_lane_goes_to_another_and_its_late_outcome_is_refused(
    postgres_url: str,
) -> None:
    with PostgresStoreClosing(postgres_url) as dead, PostgresStoreClosing(postgres_url) as heir:
        dead.add([entry("a", "a1"), entry("a", "a2")], now=1.0)
        (sent,) = dead.ready_heads(10.0, frozenset(), 10)
        assert heir.ready_heads(10.0, frozenset(), 10) == []
        expire_leases(postgres_url)
        (again,) = heir.ready_heads(10.0, frozenset(), 10)
        assert again.message.message_id == sent.message.message_id == "a1"  # the same id
        with capture_logs() as logs:
            dead.apply([Retry(sent.seq, 1, 10.0, 99.0, "ThrottlingException", "late")], 11.0)
        assert [e["event"] for e in logs] == ["lease.outcome_refused"]
        (head,) = heir.ready_heads(10.0, frozenset(), 10)
        assert (head.message.message_id, head.attempts, head.last_error_code) == ("a1", 0, None)
        heir.apply([Delivered(again.seq)], now=12.0)
        dead.apply([Delivered(sent.seq)], now=13.0)  # refused too: a2 must not be skipped
        assert [h.message.message_id for h in heir.ready_heads(14.0, frozenset(), 10)] == ["a2"]


def test_a_worker_that_renews_keeps_its_lanes_and_one_that_does_not_loses_them(
    postgres_url: str,
) -> None:
    clock = ManualClock(start=0.0)
    with PostgresStoreClosing(postgres_url) as store, admin(postgres_url) as connection:
        store.add([entry("a", "a1")], now=1.0)
        leases = Leases(store.statements, seconds=30.0, clock=clock)
        (head,) = leases.take_heads(connection, 10.0, frozenset(), 10)

        def expires_at() -> float:
            (at,) = connection.execute(
                "SELECT expires_at - extract(epoch FROM clock_timestamp()) "
                "FROM ordered_sender.lane_leases"
            ).fetchone()
            return float(at)

        assert 25.0 < expires_at() <= 30.0
        connection.execute("UPDATE ordered_sender.lane_leases SET expires_at = expires_at - 15")
        clock.advance(9.0)
        leases.renew_if_due(connection)  # not a third of 30 s yet: nothing renewed
        assert expires_at() <= 15.0
        clock.advance(1.5)
        leases.renew_if_due(connection)
        assert expires_at() > 25.0
        # The lease taken over meanwhile: renewing finds it gone and says so.
        connection.execute("UPDATE ordered_sender.lane_leases SET owner = 'another', token = 0")
        clock.advance(10.5)
        with capture_logs() as logs:
            leases.renew_if_due(connection)
        assert [(e["event"], e["lane"], e["seq"]) for e in logs] == [("lease.lost", "a", head.seq)]


def test_lease_seconds_and_schema_come_from_the_url_and_bad_ones_are_refused(
    postgres_url: str,
) -> None:
    target = outbox_target(postgres_url + "?lease_seconds=5&schema=orders_outbox")
    assert isinstance(target, DatabaseUrl)
    assert (target.url, target.schema, target.lease_seconds) == (postgres_url, "orders_outbox", 5.0)
    with Outbox(target) as outbox:
        outbox.put("A", {"n": 1})
    with admin(postgres_url) as connection:
        assert connection.execute("SELECT count(*) FROM orders_outbox.messages").fetchone() == (1,)
    with pytest.raises(ValueError, match=r"lease_seconds=600\.0: must be from 1 to 240 seconds"):
        outbox_target(postgres_url + "?lease_seconds=600")
    with pytest.raises(ValueError, match="lease_seconds='soon': not a number"):
        outbox_target(postgres_url + "?lease_seconds=soon")
    with pytest.raises(ValueError, match="schema='Orders; DROP'"):
        outbox_target(postgres_url + "?schema=Orders;%20DROP")


def test_forgetting_drops_the_leases_of_workers_dead_an_hour_and_keeps_the_rest(
    postgres_url: str,
) -> None:
    with PostgresStoreClosing(postgres_url) as dead, PostgresStoreClosing(postgres_url) as live:
        dead.add([entry("a", "a1"), entry("b", "b1")], now=1.0)
        dead.ready_heads(10.0, frozenset({"b"}), 10)
        live.ready_heads(10.0, frozenset(), 10)
        with admin(postgres_url) as connection:
            connection.execute(
                "UPDATE ordered_sender.lane_leases SET expires_at = expires_at - 3700 "
                "WHERE lane = 'a'"
            )
            live.forget_delivered(before=0.0)
            left = connection.execute("SELECT lane FROM ordered_sender.lane_leases").fetchall()
    assert left == [("b",)]

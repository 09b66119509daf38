"""Group commit: writes waiting together share one transaction, each keeps its own fate."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ordered_sender import Outbox, SenderConfig
from ordered_sender.errors import InvalidMessage, StoreError
from ordered_sender.message import Message
from ordered_sender.store import NewEntry
from ordered_sender.store.group_commit import GroupCommit
from ordered_sender.store.sqlite import SqliteStore


class Transactions:
    """The connection, counting how many transactions are begun on it."""

    def __init__(self, path: Path) -> None:
        self.connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.connection.execute("CREATE TABLE rows (name TEXT PRIMARY KEY)")
        self.begun = 0
        self._lock = threading.RLock()

    @contextmanager
    def using(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.begun += 1
            yield self.connection

    def names(self) -> list[str]:
        return [name for (name,) in self.connection.execute("SELECT name FROM rows ORDER BY 1")]


def insert(name: str) -> Callable[[sqlite3.Connection], str]:
    def work(connection: sqlite3.Connection) -> str:
        connection.execute("INSERT INTO rows VALUES (?)", (name,))
        return name

    return work


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.001)


def group_behind_a_slow_write(
    writes: GroupCommit,
    followers: list[tuple[str, Callable[[], object]]],
    first: Callable[[sqlite3.Connection], object] | None = None,
) -> dict[str, object]:
    """Run ``followers`` (name, call) as one group queued behind ``first``, which waits until
    they are queued, in order; each one's result or error."""
    inside, release = threading.Event(), threading.Event()
    results: dict[str, object] = {}

    def slow_first(connection: sqlite3.Connection) -> object:
        inside.set()
        assert release.wait(timeout=10)
        return (first or insert("first"))(connection)

    def run(name: str, call: Callable[[], object]) -> None:
        try:
            results[name] = call()
        except BaseException as error:  # recorded for the test to look at
            results[name] = error

    leader = threading.Thread(target=run, args=("first", lambda: writes.run(slow_first)))
    leader.start()
    assert inside.wait(timeout=10)
    threads = [threading.Thread(target=run, args=follower) for follower in followers]
    for queued, thread in enumerate(threads, start=1):
        thread.start()
        wait_until(lambda queued=queued: writes.waiting == queued)  # type: ignore[misc]
    release.set()
    for thread in (leader, *threads):
        thread.join(timeout=10)
    return results


def test_writes_that_wait_together_share_one_commit_and_each_keeps_its_fate(
    tmp_path: Path,
) -> None:
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")

    def duplicate(connection: sqlite3.Connection) -> str:
        insert("d")(connection)
        return insert("a")(connection)  # refused: "a" exists; "d" must go with it

    results = group_behind_a_slow_write(
        writes,
        [
            (name, lambda work=work: writes.run(work))  # type: ignore[misc]
            for name, work in (("b", insert("b")), ("dup", duplicate), ("c", insert("c")))
        ],
        first=insert("a"),
    )

    assert transactions.begun == 2  # "a" alone, then b, dup and c in one transaction
    assert transactions.names() == ["a", "b", "c"]
    assert (results["first"], results["b"], results["c"]) == ("a", "b", "c")
    assert isinstance(results["dup"], StoreError)  # its UNIQUE failure, translated
    assert writes.waiting == 0


def test_puts_from_eight_threads_at_once_are_all_stored_each_lane_in_order(
    tmp_path: Path,
) -> None:
    per_thread = 150
    path = tmp_path / "outbox.db"
    errors: list[BaseException] = []
    with Outbox(path, SenderConfig(send_timestamp=False)) as outbox:

        def producer(lane: str) -> None:
            try:
                for n in range(per_thread):
                    outbox.put(lane, {"n": n}, message_id=f"{lane}-{n}")
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [threading.Thread(target=producer, args=(f"L{t}",)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert outbox.counts().pending == 8 * per_thread
    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT lane, message_id FROM messages ORDER BY seq").fetchall()
    for t in range(8):
        lane = f"L{t}"
        expected = [f"{lane}-{n}" for n in range(per_thread)]
        assert [message_id for (name, message_id) in rows if name == lane] == expected


def test_a_commit_that_fails_fails_every_write_of_it(tmp_path: Path) -> None:
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")

    def leaves_a_constraint_for_commit(connection: sqlite3.Connection) -> str:
        connection.execute("PRAGMA defer_foreign_keys = ON")
        connection.execute(
            "CREATE TABLE IF NOT EXISTS child (parent TEXT REFERENCES rows(name) "
            "DEFERRABLE INITIALLY DEFERRED)"
        )
        connection.execute("INSERT INTO child VALUES ('nobody')")
        return "child"

    transactions.connection.execute("PRAGMA foreign_keys = ON")
    with pytest.raises(StoreError):
        writes.run(leaves_a_constraint_for_commit)
    assert transactions.connection.in_transaction is False
    assert writes.run(insert("after")) == "after"
    assert transactions.names() == ["after"]


class SteppedClock:
    """A monotonic clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_new_leader_gathers_as_many_writes_as_the_last_group_held(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writers of a group wake after its commit; the next leader waits for them (at most
    the last commit's duration) instead of committing alone while they queue behind it."""
    monkeypatch.setattr("ordered_sender.store.group_commit.MOST_GATHER_SECONDS", 60.0)
    clock = SteppedClock()
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(
        transactions.connection, transactions.using, tmp_path / "rows.db", clock=clock
    )
    inside, release = threading.Event(), threading.Event()

    def slow_first(connection: sqlite3.Connection) -> str:
        inside.set()
        assert release.wait(timeout=10)
        return insert("a")(connection)

    def takes_five_seconds(name: str) -> Callable[[sqlite3.Connection], str]:
        def work(connection: sqlite3.Connection) -> str:
            clock.now += 5.0  # this group's commit "takes" 5 s of the stepped clock
            return insert(name)(connection)

        return work

    # A group of three forms behind a slow write: [a], then [b, c, d].
    first = threading.Thread(target=writes.run, args=(slow_first,))
    first.start()
    assert inside.wait(timeout=10)
    queued = [threading.Thread(target=writes.run, args=(insert(n),)) for n in ("b", "c")]
    queued.append(threading.Thread(target=writes.run, args=(takes_five_seconds("d"),)))
    for count, thread in enumerate(queued, start=1):
        thread.start()
        wait_until(lambda count=count: writes.waiting == count)  # type: ignore[misc]
    release.set()
    for thread in (first, *queued):
        thread.join(timeout=10)
    assert transactions.begun == 2

    # A lone write now waits (up to 5 s of real time) for two more before it commits.
    alone = threading.Thread(target=writes.run, args=(insert("e"),))
    alone.start()
    wait_until(lambda: writes.waiting == 1)
    later = [threading.Thread(target=writes.run, args=(insert(n),)) for n in ("f", "g")]
    for thread in later:
        thread.start()
    for thread in (alone, *later):
        thread.join(timeout=10)
    assert transactions.begun == 3  # e, f and g in one transaction
    assert transactions.names() == ["a", "b", "c", "d", "e", "f", "g"]


def test_one_writer_alone_never_waits_to_gather(tmp_path: Path) -> None:
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")

    def never(timeout: float | None = None) -> bool:
        raise AssertionError(f"a lone writer waited {timeout} s to gather")

    writes._arrived.wait = never  # type: ignore[method-assign]
    for name in "abcde":
        assert writes.run(insert(name)) == name
    assert transactions.begun == 5
    assert transactions.names() == list("abcde")


def test_after_a_group_of_two_a_leader_does_not_wait_to_gather(tmp_path: Path) -> None:
    """A producer and a delivery worker taking turns: neither waits for the other."""
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")
    inside, release = threading.Event(), threading.Event()

    def slow_first(connection: sqlite3.Connection) -> str:
        inside.set()
        assert release.wait(timeout=10)
        return insert("a")(connection)

    first = threading.Thread(target=writes.run, args=(slow_first,))
    first.start()
    assert inside.wait(timeout=10)
    pair = [threading.Thread(target=writes.run, args=(insert(n),)) for n in ("b", "c")]
    for count, thread in enumerate(pair, start=1):
        thread.start()
        wait_until(lambda count=count: writes.waiting == count)  # type: ignore[misc]
    release.set()
    for thread in (first, *pair):
        thread.join(timeout=10)
    assert transactions.begun == 2  # [a], then [b, c]

    def never(timeout: float | None = None) -> bool:
        raise AssertionError(f"a leader waited {timeout} s to gather after a group of two")

    writes._arrived.wait = never  # type: ignore[method-assign]
    assert writes.run(insert("d")) == "d"
    assert transactions.begun == 3


def test_writes_that_declare_their_refusals_share_a_group_without_savepoints(
    tmp_path: Path,
) -> None:
    """One-message puts: a refusal raised before any change needs nothing undone, so the group
    runs them bare; the refused one fails alone and the others are committed."""
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")
    statements: list[str] = []
    transactions.connection.set_trace_callback(statements.append)

    def refused(connection: sqlite3.Connection) -> str:
        raise ValueError("refused before any change")

    results = group_behind_a_slow_write(
        writes,
        [
            (name, lambda work=work: writes.run(work, refusals=(ValueError,)))  # type: ignore[misc]
            for name, work in (("b", insert("b")), ("refused", refused), ("c", insert("c")))
        ],
    )

    assert transactions.begun == 2
    assert (results["b"], results["c"]) == ("b", "c")
    assert isinstance(results["refused"], ValueError)
    assert transactions.names() == ["b", "c", "first"]
    assert [s for s in statements if s.startswith(("SAVEPOINT", "ROLLBACK TO"))] == []


def test_a_write_without_savepoint_that_raises_what_it_did_not_declare_is_undone_alone(
    tmp_path: Path,
) -> None:
    """It may have changed something before it raised: the group is rolled back and run again,
    each write in its savepoint, so its changes go and everyone else's stay."""
    transactions = Transactions(tmp_path / "rows.db")
    writes = GroupCommit(transactions.connection, transactions.using, tmp_path / "rows.db")

    def half_done(connection: sqlite3.Connection) -> str:
        insert("half")(connection)
        raise RuntimeError("broke after its first statement")

    results = group_behind_a_slow_write(
        writes,
        [
            ("b", lambda: writes.run(insert("b"), refusals=(ValueError,))),
            ("half", lambda: writes.run(half_done, refusals=(ValueError,))),
            ("c", lambda: writes.run(insert("c"))),
        ],
    )

    assert (results["b"], results["c"]) == ("b", "c")
    assert isinstance(results["half"], RuntimeError)
    assert transactions.names() == ["b", "c", "first"]
    assert writes.waiting == 0


def test_grouped_puts_a_reused_id_fails_its_own_put_alone(tmp_path: Path) -> None:
    """One-message puts run without savepoints, a put of several with one: either way the put
    that reuses an id stores nothing and every other put of the group is stored."""
    store = SqliteStore(tmp_path / "outbox.db")

    def entry(message_id: str, lane: str) -> NewEntry:
        return NewEntry(Message(lane, b"{}", message_id), lane)

    store.add([entry("taken", "L0")], 1.0)
    try:
        results = group_behind_a_slow_write(
            store._writes,
            [
                ("one", lambda: store.add([entry("one", "L1")], 2.0)),
                ("reused", lambda: store.add([entry("taken", "L2")], 2.0)),
                ("two", lambda: store.add([entry("two-a", "L3"), entry("taken", "L3")], 2.0)),
                ("three", lambda: store.add([entry("three", "L1")], 2.0)),
            ],
            first=lambda connection: None,
        )
        for refused in ("reused", "two"):
            error = results[refused]
            assert isinstance(error, InvalidMessage)
            assert (error.field, error.value) == ("message_id", "taken")
        assert [r.message.message_id for r in results["one"]] == ["one"]  # type: ignore[attr-defined]
        assert [r.message.message_id for r in results["three"]] == ["three"]  # type: ignore[attr-defined]
        for message_id in ("two-a",):
            assert store.status(message_id) is None
        counts = store.counts()
        assert (counts.pending, counts.lanes) == (3, 2)  # taken in L0; one, three in L1
        heads = store.ready_heads(3.0, (), 10)
        assert [(h.lane, h.message.message_id) for h in heads] == [("L0", "taken"), ("L1", "one")]
    finally:
        store.close()


def test_a_one_message_put_alone_is_one_statement_that_sqlite_commits_by_itself(
    tmp_path: Path,
) -> None:
    """No BEGIN or COMMIT around it: its lane is opened by a trigger inside the INSERT, which
    SQLite commits on its own. A refused one (a reused id) stores nothing."""
    store = SqliteStore(tmp_path / "outbox.db")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    try:
        store.add([NewEntry(Message("A", b"{}", "a1"), "A")], 1.0)
        with pytest.raises(InvalidMessage):
            store.add([NewEntry(Message("B", b"{}", "a1"), "B")], 1.0)
        assert {s.split()[0] for s in statements} == {"INSERT"}
        with sqlite3.connect(tmp_path / "outbox.db") as other:  # committed: seen from outside
            rows = other.execute("SELECT lane, head_seq FROM lanes").fetchall()
        assert rows == [("A", 1)]
        assert store.counts().pending == 1
    finally:
        store.close()


def test_a_put_with_pending_limits_checks_the_room_and_inserts_in_one_transaction(
    tmp_path: Path,
) -> None:
    """The look at the totals and the INSERT must see one state of the file: a put of another
    process between them could overfill the outbox."""
    store = SqliteStore(tmp_path / "outbox.db")
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)
    try:
        limits = SenderConfig(max_pending_messages=5).pending_limits
        store.add([NewEntry(Message("A", b"{}", "a1"), "A")], 1.0, limits)
        kinds = [s.split()[0] for s in statements]
        assert kinds[0] == "BEGIN" and kinds[-1] == "COMMIT"
        assert "SELECT" in kinds and "INSERT" in kinds
    finally:
        store.close()

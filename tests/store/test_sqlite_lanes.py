"""How the SQLite outbox finds a lane's pending messages: through the index of every message of
the lane, from its head on, so the delivered messages kept for the retention before the head are
never read, and a delivery changes no entry of that index."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from ordered_sender.message import Message
from ordered_sender.store import Delivered, MoveToDeadLetters, NewEntry, Pause, Retry
from ordered_sender.store import sqlite_schema as sql
from ordered_sender.store.sqlite import SqliteStore

KEPT = 2_000
"""Delivered messages kept in the busy lane, far more than a search may read."""


def entry(lane: str, message_id: str) -> NewEntry:
    return NewEntry(Message(lane, b"{}", message_id, 1), lane)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    opened = SqliteStore(tmp_path / "outbox.db", synchronous="OFF")
    yield opened
    opened.close()


def steps(
    path: Path,
    statement: str,
    parameters: Mapping[str, object],
    after: tuple[str, Mapping[str, object]] | None = None,
) -> int:
    """Virtual machine steps SQLite takes for ``statement`` (run ``after`` another, uncounted),
    rolled back: what it reads, counted the same way on every machine."""
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        taken = 0

        def count() -> int:
            nonlocal taken
            taken += 1
            return 0

        connection.execute("BEGIN IMMEDIATE")
        if after is not None:
            connection.execute(*after).fetchall()
        connection.set_progress_handler(count, 1)
        connection.execute(statement, parameters).fetchall()
        connection.set_progress_handler(None, 1)
        connection.execute("ROLLBACK")
    return taken


def busy_and_fresh_lanes(store: SqliteStore) -> dict[str, int]:
    """Lane ``busy`` with KEPT delivered messages before its head, lane ``fresh`` with none;
    each has two pending messages. Returns the seqs of the heads."""
    kept = store.add([entry("busy", f"old{n}") for n in range(KEPT)], now=1.0)
    for start in range(0, KEPT, 10):  # one lane, one head at a time, as a sender delivers
        for message in kept[start : start + 10]:
            store.apply([Delivered(message.seq)], now=2.0)
    stored = store.add(
        [entry("busy", "b1"), entry("busy", "b2"), entry("fresh", "f1"), entry("fresh", "f2")],
        now=3.0,
    )
    return {s.message.message_id: s.seq for s in stored}


@pytest.mark.parametrize("name", ["NEXT_HEAD", "COUNT_BLOCKED", "LANES_OVERVIEW"])
def test_every_search_of_a_lane_starts_at_its_head_in_the_index_of_its_messages(
    store: SqliteStore, name: str
) -> None:
    parameters = {"lanes": "[]", "not_before": 0, "lane": "a", "seq": 1, "limit": 10}
    with closing(sqlite3.connect(store.path)) as connection:
        plan = connection.execute(f"EXPLAIN QUERY PLAN {getattr(sql, name)}", parameters)
        details = [row[3] for row in plan]
    assert any("messages_by_lane (lane=? AND seq>?)" in detail for detail in details), details


def test_advancing_a_lane_reads_none_of_its_delivered_messages_kept_before_the_head(
    store: SqliteStore,
) -> None:
    """The trigger lane_after_delivery searches from the head, as every search of a lane."""
    seqs = busy_and_fresh_lanes(store)
    counted = {}
    for lane, head in (("busy", "b1"), ("fresh", "f1")):
        delivered = {"seqs": f"[{seqs[head]}]", "now": 4.0, "not_before": 0.0}
        counted[lane] = steps(store.path, sql.MARK_ALL_DELIVERED, delivered)
    # Reading the kept ones would take several steps each, thousands in all.
    assert counted["busy"] < counted["fresh"] + 50, counted


def test_counting_a_paused_lane_reads_none_of_its_delivered_messages_kept_before_the_head(
    store: SqliteStore,
) -> None:
    seqs = busy_and_fresh_lanes(store)
    store.apply([Pause(seqs["b1"], "busy", 1, 4.0, "InvalidRequestException", "bad")], now=4.0)
    paused_busy = steps(store.path, sql.COUNT_BLOCKED, {})
    assert store.resume("busy", now=5.0)
    store.apply([Pause(seqs["f1"], "fresh", 1, 5.0, "InvalidRequestException", "bad")], now=5.0)
    paused_fresh = steps(store.path, sql.COUNT_BLOCKED, {})
    assert paused_busy < paused_fresh + 50, (paused_busy, paused_fresh)
    assert store.counts().blocked == 2
    assert store.lanes_overview(10)[0].pending == 2


def test_a_dead_letter_moves_the_head_past_the_kept_delivered_messages(
    store: SqliteStore,
) -> None:
    seqs = busy_and_fresh_lanes(store)
    store.apply([MoveToDeadLetters(seqs["b1"], "busy", 1, 4.0, "InvalidRequestException", "")], 4.0)
    assert [h.message.message_id for h in store.ready_heads(10.0, (), 10)] == ["b2", "f1"]


def redrive_a1_while_a2_is_in_flight(store: SqliteStore) -> int:
    """Lane a of a1, a2, a3: a1 dead-lettered, then redriven while a2 is in flight; a2's seq."""
    stored = store.add([entry("a", "a1"), entry("a", "a2"), entry("a", "a3")], now=1.0)
    store.apply([MoveToDeadLetters(stored[0].seq, "a", 1, 2.0, "InvalidRequestException", "")], 2.0)
    assert store.redrive("a1", now=3.0) == "a"
    return stored[1].seq


def test_a_lane_paused_after_a_redrive_slipped_in_delivers_every_message_once_resumed(
    store: SqliteStore,
) -> None:
    a2 = redrive_a1_while_a2_is_in_flight(store)
    store.apply([Pause(a2, "a", 1, 4.0, "InvalidRequestException", "bad")], now=4.0)
    (paused,) = store.paused_lanes()
    assert (paused.seq, paused.message_id) == (a2, "a2")
    assert store.counts().blocked == 3
    assert store.resume("a", now=5.0)
    delivered = []
    while heads := store.ready_heads(100.0, (), 10):
        (head,) = heads
        delivered.append(head.message.message_id)
        store.apply([Delivered(head.seq)], now=6.0)
    # The redriven a1 is the oldest: it goes first, and none is left behind.
    assert delivered == ["a1", "a2", "a3"]
    assert store.counts().pending == 0
    assert store.counts().lanes == 0


def test_a_head_delivered_after_a_redrive_slipped_in_leaves_the_redriven_message_first(
    store: SqliteStore,
) -> None:
    store.apply([Delivered(redrive_a1_while_a2_is_in_flight(store))], now=4.0)
    assert [h.message.message_id for h in store.ready_heads(100.0, (), 10)] == ["a1"]


def test_a_lane_moving_to_its_next_head_keeps_its_place_among_the_due_times(
    store: SqliteStore,
) -> None:
    # The due-time index holds the time alone: a head moving on, due at once as before, leaves
    # its entry where it was (an entry holding the head's seq moved with every delivery).
    with closing(sqlite3.connect(store.path)) as connection:
        columns = [row[2] for row in connection.execute("PRAGMA index_info(lanes_ready)")]
        plan = connection.execute(f"EXPLAIN QUERY PLAN {sql.UPCOMING_HEADS}", {"limit": 1})
        details = [row[3] for row in plan]
    assert columns == ["next_attempt_at"]
    assert details == ["SCAN lanes USING INDEX lanes_ready"]
    seqs = {s.message.message_id: s.seq for s in store.add([entry("a", "a1")], now=1.0)}
    store.add([entry("a", "a2"), entry("b", "b1")], now=1.0)
    store.apply([Retry(seqs["a1"], 1, 2.0, 9.0, "ThrottlingException", "")], now=2.0)
    assert store.next_attempt_at(frozenset({"b"})) == 9.0
    store.apply([Delivered(seqs["a1"])], now=3.0)
    assert store.next_attempt_at(frozenset({"b"})) == 0.0


def test_delivered_ids_are_forgotten_in_transactions_of_at_most_a_chunk(
    store: SqliteStore,
) -> None:
    """A daemon delivering thousands of messages a second forgets hundreds of thousands once a
    minute: one long delete would hold every put and outcome behind it for seconds."""
    old = [entry(f"L{n}", f"old{n}") for n in range(2_300)]
    added = store.add(old, now=1.0)
    store.apply([Delivered(stored.seq) for stored in added], now=10.0)
    recent = store.add([entry("R", "recent")], now=11.0)
    store.apply([Delivered(recent[0].seq)], now=20.0)
    pending = store.add([entry("P", "pending")], now=21.0)
    transactions: list[int] = []
    run = store._writes.run

    def counted(work: Callable[[Any], Any]) -> Any:
        result = run(work)
        transactions.append(result)
        return result

    store._writes.run = counted  # type: ignore[method-assign,assignment]
    assert store.forget_delivered(before=15.0, chunk=500) == 2_300
    assert transactions == [500, 500, 500, 500, 300]
    assert store.status("old0") is None and store.status("old2299") is None
    assert store.status("recent") is not None
    assert [h.seq for h in store.ready_heads(30.0, (), 10)] == [pending[0].seq]
    assert store.forget_delivered(before=15.0, chunk=500) == 0


def test_a_request_s_deliveries_are_recorded_in_one_statement_that_moves_the_lanes_on(
    store: SqliteStore,
) -> None:
    """Mark them delivered: the trigger moves each lane to its next head, or drops it when
    nothing is left; SQLite commits the one statement by itself."""
    stored = store.add([entry(lane, f"{lane}{n}") for n in (1, 2) for lane in "ab"], now=1.0)
    seqs = {s.message.message_id: s.seq for s in stored}
    statements: list[str] = []
    store._connection.set_trace_callback(statements.append)

    store.apply([Delivered(seqs["a1"]), Delivered(seqs["b1"])], now=2.0)
    assert {s.split()[0] for s in statements} == {"UPDATE"}
    assert [h.message.message_id for h in store.ready_heads(3.0, (), 10)] == ["a2", "b2"]

    store.apply([Delivered(seqs["a2"])], now=3.0)
    assert {s.split()[0] for s in statements} == {"UPDATE"}
    assert [h.message.message_id for h in store.ready_heads(4.0, (), 10)] == ["b2"]
    assert store.counts().lanes == 1

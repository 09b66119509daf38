"""The Store contract: every backend must pass this suite unchanged."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ordered_sender import InvalidMessage, OutboxFull
from ordered_sender.message import Message
from ordered_sender.store import (
    Delivered,
    MessageState,
    MoveToDeadLetters,
    NewEntry,
    Pause,
    PendingLimits,
    Retry,
    Store,
)
from ordered_sender.store.open import open_store as open_store_of
from ordered_sender.store.open import outbox_target

StoreFactory = Callable[[], Store]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens (and reopens) one store; reopening must see everything committed before."""
    opened: list[Store] = []
    target = (
        outbox_target(request.getfixturevalue("postgres_url"))
        if request.param == "postgres"
        else tmp_path / "contract.db"
    )

    def factory() -> Store:
        store = open_store_of(target)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


def entry(lane: str, message_id: str, payload: bytes = b"{}") -> NewEntry:
    return NewEntry(Message(lane, payload, message_id, 1), lane)


def fill(store: Store, *specs: tuple[str, str]) -> dict[str, int]:
    stored = store.add([entry(lane, mid) for lane, mid in specs], now=10.0)
    return {s.message.message_id: s.seq for s in stored}


def heads(
    store: Store, now: float = 100.0, exclude: frozenset[str] = frozenset(), limit: int = 100
) -> list[str]:
    return [h.message.message_id for h in store.ready_heads(now, exclude, limit)]


def test_seq_follows_commit_order_and_messages_round_trip(open_store: StoreFactory) -> None:
    store = open_store()
    stored = store.add([entry("a", "m1", b"\x00payload"), entry("b", "m2")], now=5.0)
    assert stored[0].seq < stored[1].seq
    (head,) = store.ready_heads(100.0, frozenset({"b"}), 10)
    assert head.message == Message("a", b"\x00payload", "m1", 1)
    assert (head.lane, head.enqueued_at, head.attempts, head.solo) == ("a", 5.0, 0, False)


def test_a_used_message_id_refuses_the_whole_add(open_store: StoreFactory) -> None:
    store = open_store()
    fill(store, ("a", "m1"))
    with pytest.raises(InvalidMessage, match="m1"):
        store.add([entry("b", "m2"), entry("b", "m1")], now=1.0)
    assert store.counts().pending == 1
    assert store.status("m2") is None


def test_heads_are_one_per_lane_earliest_due_then_oldest(open_store: StoreFactory) -> None:
    store = open_store()
    fill(store, ("a", "a1"), ("b", "b1"), ("a", "a2"), ("c", "c1"), ("b", "b2"))
    assert heads(store) == ["a1", "b1", "c1"]
    assert heads(store, exclude=frozenset({"b"})) == ["a1", "c1"]
    assert heads(store, limit=2) == ["a1", "b1"]
    assert heads(store, exclude=frozenset({"a"}), limit=1) == ["b1"]


def test_delivering_a_head_exposes_the_next_message_of_its_lane(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"))
    store.apply([Delivered(seqs["a1"])], now=20.0)
    assert heads(store) == ["a2"]
    assert store.deliverable_lanes() == 1
    store.apply([Delivered(seqs["a2"])], now=21.0)
    assert heads(store) == []
    assert store.deliverable_lanes() == 0
    assert store.next_attempt_at(frozenset()) is None
    fill(store, ("a", "a3"))
    assert heads(store) == ["a3"]
    status = store.status("a1")
    assert status is not None and status.state is MessageState.DELIVERED
    assert store.counts().pending == 1


def test_a_retry_keeps_its_place_and_is_not_ready_before_its_time(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"), ("b", "b1"))
    store.apply([Retry(seqs["a1"], 1, 20.0, 80.0, "ThrottlingException", "slow", solo=True)], 20.0)
    assert heads(store, now=79.0) == ["b1"]
    assert store.next_attempt_at(frozenset({"b"})) == 80.0
    # Due again, a1 goes before b1, which was put after it: retried heads do not starve.
    (head, _) = store.ready_heads(80.0, frozenset(), 10)
    assert (head.message.message_id, head.attempts, head.first_attempt_at) == ("a1", 1, 20.0)
    assert (head.solo, head.last_error_code, head.last_error_text) == (
        True,
        "ThrottlingException",
        "slow",
    )


def test_pause_stops_the_lane_and_resume_makes_its_head_due(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"), ("b", "b1"))
    store.apply([Pause(seqs["a1"], "a", 1, 20.0, "InvalidRequestException", "bad")], now=20.0)
    assert heads(store) == ["b1"]
    (paused,) = store.paused_lanes()
    assert (
        paused.lane,
        paused.message_id,
        paused.error_code,
        paused.error_text,
        paused.paused_at,
    ) == ("a", "a1", "InvalidRequestException", "bad", 20.0)
    status = store.status("a2")
    assert status is not None and status.lane_paused
    counts = store.counts()
    assert (counts.pending, counts.blocked, counts.paused_lanes, counts.lanes) == (3, 2, 1, 2)
    assert store.deliverable_lanes() == 1

    assert store.resume("a", now=30.0)
    assert not store.resume("a", now=30.0)
    assert heads(store, now=30.0) == ["a1", "b1"]  # oldest put first
    (resumed, _) = store.ready_heads(30.0, frozenset(), 10)
    # Resuming gives the head a whole new retry policy: no attempts, no age.
    assert (resumed.attempts, resumed.first_attempt_at, resumed.retry_age) == (0, None, 0.0)
    assert store.paused_lanes() == []


def test_everything_survives_reopening(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("b", "b1"), ("c", "c1"))
    store.apply(
        [
            Retry(seqs["a1"], 2, 15.0, 99.0, "InternalFailureException", ""),
            Pause(seqs["b1"], "b", 1, 15.0, "ResourceNotFoundException", "no input"),
            Delivered(seqs["c1"]),
        ],
        now=15.0,
    )
    store.close()
    again = open_store()
    assert heads(again, now=98.0) == []
    assert heads(again, now=99.0) == ["a1"]
    assert [p.lane for p in again.paused_lanes()] == ["b"]
    with pytest.raises(InvalidMessage):
        again.add([entry("c", "c1")], now=16.0)


def test_forgetting_delivered_ids_only_after_retention(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"))
    store.apply([Delivered(seqs["a1"])], now=100.0)
    assert store.forget_delivered(before=100.0) == 0
    assert store.forget_delivered(before=100.5) == 1
    assert store.status("a1") is None
    assert store.counts().pending == 1
    fill(store, ("a", "a1"))  # the id may be used again once forgotten


def test_a_pause_names_the_message_that_failed_even_after_a_redrive_slipped_in(
    open_store: StoreFactory,
) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"))
    store.apply([MoveToDeadLetters(seqs["a1"], "a", 1, 20.0, "InvalidRequestException", "")], 20.0)
    # a2 is in flight when an operator redrives a1 (under the dead-letter policy of another run).
    assert store.redrive("a1", now=21.0) == "a"
    store.apply([Pause(seqs["a2"], "a", 1, 20.0, "InvalidRequestException", "bad")], now=22.0)
    (paused,) = store.paused_lanes()
    assert (paused.message_id, paused.error_text) == ("a2", "bad")


def test_an_add_past_the_pending_limits_stores_nothing(open_store: StoreFactory) -> None:
    store = open_store()
    fill(store, ("a", "a1"), ("b", "b1"))
    with pytest.raises(OutboxFull, match="2 pending messages; 1 more would pass"):
        store.add([entry("c", "c1")], now=1.0, limits=PendingLimits(messages=2))
    with pytest.raises(OutboxFull, match="4 bytes of pending payload; 3 more"):
        store.add([entry("c", "c1", b"{ }")], now=1.0, limits=PendingLimits(payload_bytes=6))
    assert store.status("c1") is None
    assert store.pending_totals() == (2, 4)
    store.add([entry("c", "c1", b"{}")], now=1.0, limits=PendingLimits(messages=3, payload_bytes=6))
    assert store.pending_totals() == (3, 6)


def test_the_oldest_pending_message_is_a_head_of_a_moving_or_a_paused_lane(
    open_store: StoreFactory,
) -> None:
    store = open_store()
    assert store.oldest_pending_enqueued_at() is None
    (a1,) = store.add([entry("a", "a1")], now=10.0)
    (b1,) = store.add([entry("b", "b1")], now=11.0)
    store.add([entry("a", "a2"), entry("a", "a3")], now=12.0)
    assert store.oldest_pending_enqueued_at() == 10.0
    store.apply([Delivered(a1.seq)], now=20.0)
    assert store.oldest_pending_enqueued_at() == 11.0
    # Paused, b1 still waits: older than every head of the lanes that move.
    store.apply([Pause(b1.seq, "b", 1, 20.0, "InvalidRequestException", "bad")], now=20.0)
    assert store.oldest_pending_enqueued_at() == 11.0
    assert store.resume("b", now=30.0)
    store.apply([MoveToDeadLetters(b1.seq, "b", 1, 30.0, "InvalidRequestException", "")], 30.0)
    assert store.oldest_pending_enqueued_at() == 12.0
    assert store.redrive("b1", now=31.0) == "b"
    assert store.oldest_pending_enqueued_at() == 11.0
    store.close()
    assert open_store().oldest_pending_enqueued_at() == 11.0


def test_nothing_pending_has_no_oldest_message(open_store: StoreFactory) -> None:
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("b", "b1"))
    store.apply([Delivered(seqs["a1"]), Delivered(seqs["b1"])], now=20.0)
    assert store.oldest_pending_enqueued_at() is None


def test_a_lane_paused_after_a_redrive_slipped_in_names_the_failed_message_and_resumes_in_put_order(
    open_store: StoreFactory,
) -> None:
    """a1 dead-lettered, redriven while a2 is in flight; a2 then fails under the pause policy."""
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("a", "a2"), ("a", "a3"))
    store.apply([MoveToDeadLetters(seqs["a1"], "a", 1, 20.0, "InvalidRequestException", "")], 20.0)
    assert store.redrive("a1", now=30.0) == "a"
    store.apply([Pause(seqs["a2"], "a", 2, 20.0, "InvalidRequestException", "bad")], now=40.0)
    (paused,) = store.paused_lanes()
    assert (paused.lane, paused.message_id) == ("a", "a2")
    assert heads(store) == []
    assert store.resume("a", now=50.0)
    delivered = []
    while due := store.ready_heads(100.0, frozenset(), 10):
        (head,) = due
        delivered.append((head.message.message_id, head.attempts))
        store.apply([Delivered(head.seq)], now=60.0)
    # The redriven a1 is put first; a2 comes back with fresh attempts.
    assert delivered == [("a1", 0), ("a2", 0), ("a3", 0)]
    assert store.counts().pending == 0


def test_pending_messages_are_the_given_ones_still_pending_as_stored_now(
    open_store: StoreFactory,
) -> None:
    """A resume while a head was in flight reset its attempts: read again, it says so."""
    store = open_store()
    seqs = fill(store, ("a", "a1"), ("b", "b1"), ("b", "b2"))
    store.apply([Pause(seqs["a1"], "a", 2, 20.0, "InvalidRequestException", "bad")], now=20.0)
    store.apply([Delivered(seqs["b1"])], now=20.0)
    assert [m.attempts for m in store.pending_messages([seqs["a1"]])] == [2]

    assert store.resume("a", now=30.0)
    now_stored = store.pending_messages([seqs["b2"], seqs["b1"], seqs["a1"]])

    assert [(m.message.message_id, m.lane, m.attempts) for m in now_stored] == [
        ("a1", "a", 0),
        ("b2", "b", 0),
    ]
    assert store.pending_messages([]) == []

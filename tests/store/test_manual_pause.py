"""An operator's pause (``Store.pause``) on every store: the lane stops at its head, keeps its
messages, is listed with its reason, and goes on in put order after ``resume``; a head in flight
when the pause lands still has its outcome recorded, and the lane stays paused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ordered_sender import NothingPending
from ordered_sender.message import Message
from ordered_sender.store import (
    NO_REASON_GIVEN,
    PAUSED_BY_OPERATOR,
    Decision,
    Delivered,
    MoveToDeadLetters,
    NewEntry,
    Pause,
    PausedLane,
    Retry,
    Store,
)
from ordered_sender.store.open import open_store, outbox_target


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> object:
    if request.param == "postgres":
        return outbox_target(request.getfixturevalue("postgres_url"))
    return tmp_path / "paused.db"


@pytest.fixture
def store(target: Path) -> Iterator[Store]:
    opened = open_store(target)
    yield opened
    opened.close()


def put(store: Store, *specs: tuple[str, str]) -> dict[str, int]:
    entries = [NewEntry(Message(lane, b"{}", mid, 1), lane) for lane, mid in specs]
    return {s.message.message_id: s.seq for s in store.add(entries, now=10.0)}


def heads(store: Store, now: float = 100.0) -> list[str]:
    return [h.message.message_id for h in store.ready_heads(now, frozenset(), 100)]


def deliver_everything(store: Store, now: float = 100.0) -> list[str]:
    """Deliver due heads one request at a time; the message ids in delivery order."""
    delivered = []
    while due := store.ready_heads(now, frozenset(), 100):
        delivered += [head.message.message_id for head in due]
        store.apply([Delivered(head.seq) for head in due], now=now)
    return delivered


def test_an_operator_pause_stops_the_lane_at_its_head_until_resume(
    store: Store, target: Path
) -> None:
    seqs = put(store, ("a", "a1"), ("a", "a2"), ("b", "b1"), ("a", "a3"))
    assert store.pause("a", now=20.0, reason="detector model being replaced")

    assert store.paused_lanes() == [
        PausedLane("a", seqs["a1"], "a1", PAUSED_BY_OPERATOR, "detector model being replaced", 20.0)
    ]
    assert heads(store) == ["b1"]
    assert store.next_attempt_at(frozenset({"b"})) is None
    counts = store.counts()
    assert (counts.pending, counts.blocked, counts.paused_lanes, counts.lanes) == (4, 3, 1, 2)
    assert store.deliverable_lanes() == 1
    status = store.status("a3")
    assert status is not None and status.lane_paused
    overview = {lane.lane: lane for lane in store.lanes_overview(10)}
    assert overview["a"].paused and not overview["b"].paused

    # A second pause changes nothing, not even the reason.
    assert not store.pause("a", now=25.0, reason="another reason")
    assert [(p.error_text, p.paused_at) for p in store.paused_lanes()] == [
        ("detector model being replaced", 20.0)
    ]
    assert deliver_everything(store) == ["b1"]

    # The pause is in the outbox, not in this store object.
    reopened = open_store(target)
    try:
        assert [p.lane for p in reopened.paused_lanes()] == ["a"]
        assert reopened.resume("a", now=30.0)
        assert not reopened.resume("a", now=30.0)
        assert reopened.paused_lanes() == []
        assert reopened.counts().paused_lanes == 0
        assert deliver_everything(reopened) == ["a1", "a2", "a3"]
    finally:
        reopened.close()


def test_a_pause_without_a_reason_says_that_none_was_given(store: Store) -> None:
    put(store, ("a", "a1"))
    assert store.pause("a", now=20.0)
    ((code, text),) = [(p.error_code, p.error_text) for p in store.paused_lanes()]
    assert (code, text) == (PAUSED_BY_OPERATOR, NO_REASON_GIVEN)


def test_a_lane_with_nothing_pending_cannot_be_paused(store: Store) -> None:
    put(store, ("a", "a1"), ("b", "b1"))
    with pytest.raises(NothingPending, match=r"'never-used'.*no pending messages") as raised:
        store.pause("never-used", now=20.0)
    assert raised.value.lane == "never-used"
    assert deliver_everything(store) == ["a1", "b1"]
    with pytest.raises(NothingPending, match="'a'"):
        store.pause("a", now=20.0)
    counts = store.counts()
    assert (counts.lanes, counts.paused_lanes) == (0, 0)
    assert store.paused_lanes() == []


def test_a_head_delivered_while_paused_moves_the_pause_to_the_next_message(
    store: Store,
) -> None:
    seqs = put(store, ("a", "a1"), ("a", "a2"), ("a", "a3"))
    (in_flight,) = store.ready_heads(100.0, frozenset(), 10)
    assert store.pause("a", now=20.0, reason="hold")
    store.apply([Delivered(in_flight.seq)], now=30.0)

    assert store.paused_lanes() == [
        PausedLane("a", seqs["a2"], "a2", PAUSED_BY_OPERATOR, "hold", 20.0)
    ]
    assert heads(store) == []
    assert store.next_attempt_at(frozenset()) is None
    counts = store.counts()
    assert (counts.pending, counts.blocked, counts.paused_lanes, counts.lanes) == (2, 2, 1, 1)
    assert store.resume("a", now=40.0)
    assert deliver_everything(store) == ["a2", "a3"]


def test_the_last_message_delivered_while_paused_takes_the_lane_and_its_pause_away(
    store: Store,
) -> None:
    put(store, ("a", "a1"))
    (in_flight,) = store.ready_heads(100.0, frozenset(), 10)
    assert store.pause("a", now=20.0)
    store.apply([Delivered(in_flight.seq)], now=30.0)

    assert store.paused_lanes() == []
    counts = store.counts()
    assert (counts.pending, counts.paused_lanes, counts.lanes) == (0, 0, 0)
    assert not store.resume("a", now=40.0)
    # A new put starts a new lane, not paused.
    put(store, ("a", "a2"))
    assert heads(store) == ["a2"]


def failure(outcome: str, seq: int) -> Decision:
    if outcome == "retry":
        return Retry(seq, 1, 25.0, 90.0, "ThrottlingException", "slow down", retry_wait=60.0)
    if outcome == "pause":
        return Pause(seq, "a", 1, 25.0, "InvalidRequestException", "bad")
    return MoveToDeadLetters(seq, "a", 1, 25.0, "InvalidRequestException", "bad")


@pytest.mark.parametrize(
    ("outcome", "paused_at_message", "code"),
    [
        # A transient failure is recorded; the operator's pause stays as it was.
        ("retry", "a1", PAUSED_BY_OPERATOR),
        # The pause policy pauses the lane again, at the failed message, naming the failure.
        ("pause", "a1", "InvalidRequestException"),
        # The dead-letter policy takes the head out; the pause goes on at the next message.
        ("dead_letter", "a2", PAUSED_BY_OPERATOR),
    ],
)
def test_a_head_that_fails_while_paused_gets_its_failure_recorded_and_the_lane_stays_paused(
    store: Store, outcome: str, paused_at_message: str, code: str
) -> None:
    seqs = put(store, ("a", "a1"), ("a", "a2"))
    (in_flight,) = store.ready_heads(100.0, frozenset(), 10)
    assert store.pause("a", now=20.0, reason="hold")
    store.apply([failure(outcome, in_flight.seq)], now=30.0)

    ((lane, seq, message_id, error_code),) = [
        (p.lane, p.seq, p.message_id, p.error_code) for p in store.paused_lanes()
    ]
    assert (lane, seq, message_id, error_code) == (
        "a",
        seqs[paused_at_message],
        paused_at_message,
        code,
    )
    assert heads(store, now=1000.0) == []
    counts = store.counts()
    assert (counts.paused_lanes, counts.dead_letters) == (1, int(outcome == "dead_letter"))
    (overview,) = store.lanes_overview(10)
    if outcome == "retry":
        assert (overview.attempts, overview.last_error_code) == (1, "ThrottlingException")
    assert store.resume("a", now=40.0)
    expected = ["a2"] if outcome == "dead_letter" else ["a1", "a2"]
    assert deliver_everything(store, now=40.0) == expected


def test_the_pause_command_pauses_a_lane_of_a_postgresql_outbox(
    postgres_url: str, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    store = open_store(outbox_target(postgres_url))
    try:
        put(store, ("a", "a1"), ("a", "a2"))
    finally:
        store.close()

    paused = cli("pause", "a", "--outbox", postgres_url, "--reason", "hold", "--output", "json")
    again = cli("pause", "a", "--outbox", postgres_url)
    empty = cli("pause", "b", "--outbox", postgres_url)
    status = cli("status", "--outbox", postgres_url, "--output", "json")

    assert paused.returncode == 0, paused.stderr
    shown = json.loads(paused.stdout)
    assert (shown["already_paused"], shown["pause"]["error_code"]) == (False, PAUSED_BY_OPERATOR)
    assert (again.returncode, again.stdout) == (0, "lane a was already paused\n")
    assert empty.returncode == 1
    (line,) = empty.stderr.splitlines()
    assert line.startswith("Error: lane 'b' has no pending messages")
    ((lane, text, message_id),) = [
        (p["lane"], p["error_text"], p["message_id"])
        for p in json.loads(status.stdout)["paused_lanes"]
    ]
    assert (lane, text, message_id) == ("a", "hold", "a1")

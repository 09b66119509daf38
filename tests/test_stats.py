"""sender.stats(): counters of what this sender did, gauges of its outbox, request latency
percentiles over a bounded window; end to end through boto3 and the emulator over HTTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
import tenacity

from ordered_sender import OrderedSender, Outbox, SenderConfig, SenderStats
from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.stats import LATENCY_WINDOW, StatsRecorder
from ordered_sender.store import Delivered, MoveToDeadLetters, Pause, Retry
from ordered_sender.store.sqlite import SqliteStore
from ordered_sender.testing import ManualClock

START = 1_700_000_000.0
NO_WAIT = tenacity.wait_fixed(0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=START)


def open_sender(
    outbox: Path, emulator: Emulator, clock: ManualClock, **config: object
) -> OrderedSender:
    """A sender on ``outbox`` that sends only when told (deliver_due), retrying at once."""
    return OrderedSender(
        outbox,
        client=emulator.client("iotevents-data"),
        config=SenderConfig(**{"retry_wait": NO_WAIT, **config}),  # type: ignore[arg-type]
        clock=clock,
        autostart=False,
    )


def test_counters_count_puts_deliveries_and_retries_by_error_code(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    emulator.set_faults(
        Faults(
            targeted=(
                TargetedFault("ThrottlingException", message_id="a-0", count=2),
                TargetedFault("ServiceUnavailableException", message_id="b-0", count=1),
            )
        )
    )
    with open_sender(outbox, emulator, clock) as sender:
        sender.put_many([("A", {"n": n}, f"a-{n}") for n in range(3)])
        sender.put("B", {"n": 0}, message_id="b-0")
        assert sender.stats().enqueued == 4

        sender.deliver_due()

        stats = sender.stats()
        assert stats.delivered == 4
        assert dict(stats.retried) == {"ThrottlingException": 2, "ServiceUnavailableException": 1}
        assert (stats.dead_lettered, stats.lanes_paused) == (0, 0)
        assert stats.requests == len(emulator.requests())
        assert (stats.pending, stats.lanes, stats.oldest_pending_age) == (0, 0, None)


def test_a_whole_request_refused_counts_a_retry_for_each_of_its_messages(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.create_input("B")
    with open_sender(outbox, emulator, clock) as sender:
        sender.put("A", {"n": 0})
        sender.put("B", {"n": 0})
        emulator.set_faults(Faults(request_error_rate=1.0, request_error_codes=(503,)))
        sender.deliver_due()  # the endpoint's hold stops it after the first refusal

        stats = sender.stats()
        assert stats.requests == 1
        assert dict(stats.retried) == {"ServiceUnavailableException": 2}
        assert stats.delivered == 0


def test_permanent_failures_count_dead_letters_and_pauses_with_their_gauges(
    tmp_path: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    refused = Faults(targeted=(TargetedFault("InvalidRequestException", input_name="A", count=1),))
    emulator.set_faults(refused)
    with open_sender(
        tmp_path / "dead.db", emulator, clock, on_permanent_failure="dead_letter"
    ) as sender:
        sender.put("A", {"n": 0})
        sender.put("A", {"n": 1})
        sender.deliver_due()
        stats = sender.stats()
        assert (stats.dead_lettered, stats.dead_letters, stats.delivered) == (1, 1, 1)
        assert (stats.lanes_paused, stats.paused_lanes) == (0, 0)

    emulator.set_faults(refused)
    with open_sender(tmp_path / "paused.db", emulator, clock) as sender:
        sender.put_many([("A", {"n": n}) for n in range(3)])
        sender.deliver_due()
        stats = sender.stats()
        assert (stats.lanes_paused, stats.paused_lanes, stats.blocked) == (1, 1, 3)
        assert (stats.pending, stats.dead_letters, stats.delivered) == (3, 0, 0)


def test_gauges_read_the_outbox_with_the_age_of_its_oldest_pending_message(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    with open_sender(outbox, emulator, clock) as sender:
        sender.put("A", {"n": 0})
        clock.advance(30)
        sender.put_many([("B", {"n": 1}), ("C", {"n": 2})])
        clock.advance(12.5)

        stats = sender.stats()

        assert (stats.pending, stats.lanes, stats.paused_lanes) == (3, 3, 0)
        assert stats.pending_bytes == len(b'{"n":0}') * 3
        assert stats.oldest_pending_age == 42.5


@pytest.mark.parametrize("paused_first", [True, False], ids=["paused-oldest", "moving-oldest"])
def test_the_oldest_pending_message_is_found_in_paused_and_moving_lanes_alike(
    outbox: Path, emulator: Emulator, clock: ManualClock, paused_first: bool
) -> None:
    emulator.create_input("Paused")
    emulator.create_input("Moving")
    emulator.set_faults(
        Faults(
            targeted=(
                TargetedFault("InvalidRequestException", input_name="Paused", count=None),
                TargetedFault("ThrottlingException", input_name="Moving", count=None),
            )
        )
    )
    slow_retries = tenacity.wait_fixed(1000)
    with open_sender(outbox, emulator, clock, retry_wait=slow_retries) as sender:
        for input_name in ["Paused", "Moving"] if paused_first else ["Moving", "Paused"]:
            sender.put(input_name, {"n": 0})
            clock.advance(10)
        sender.put("Newest", {"n": 0})
        sender.deliver_due()  # Paused pauses; Moving waits 1000 s to retry; Newest is refused
        clock.advance(40)

        stats = sender.stats()

    assert (stats.paused_lanes, stats.lanes, stats.pending) == (2, 3, 3)
    assert stats.oldest_pending_age == 60.0


def test_a_closed_sender_reports_its_counters_with_the_gauges_read_when_it_closed(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    sender = open_sender(outbox, emulator, clock)
    sender.put_many([("A", {"n": n}) for n in range(3)])
    sender.deliver_due()
    clock.advance(5)
    sender.put_many([("A", {"n": n}) for n in range(3, 5)])
    clock.advance(20)
    sender.close()
    closed_at = clock()
    clock.advance(100)

    stats = sender.stats()

    assert (stats.enqueued, stats.delivered, stats.requests) == (5, 3, 3)
    assert (stats.pending, stats.lanes, stats.dead_letters) == (2, 1, 0)
    assert (stats.gauges_read_at, stats.oldest_pending_age) == (closed_at, 20.0)
    assert sender.stats() == stats  # nothing more is read or counted


def test_a_sender_that_could_not_read_its_outbox_at_close_keeps_the_last_gauges(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    with open_sender(outbox, emulator, clock) as sender:
        sender.put("A", {"n": 0})
        read = sender.stats()
        clock.advance(10)
        sender.store.close()  # as if the outbox could not be read any more

    stats = sender.stats()

    assert (stats.enqueued, stats.pending, stats.gauges_read_at) == (1, 1, read.gauges_read_at)


def test_counters_count_this_sender_only(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    with open_sender(outbox, emulator, clock) as sender, Outbox(outbox) as elsewhere:
        elsewhere.put("A", {"n": 0})
        sender.put("A", {"n": 1})
        stats = sender.stats()
        assert (stats.enqueued, stats.pending) == (1, 2)


def test_stats_are_a_frozen_snapshot(empty_store: SqliteStore) -> None:
    recorder = StatsRecorder()
    recorder.request_decided([Retry(1, 1, START, START, "ThrottlingException", "slow down")], 5.0)
    stats = recorder_snapshot(recorder, empty_store)
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.delivered = 3  # type: ignore[misc]
    with pytest.raises(TypeError):
        stats.retried["ThrottlingException"] = 0  # type: ignore[index]
    recorder.request_decided([Retry(1, 2, START, START, "ThrottlingException", "slow down")], 5.0)
    assert stats.retried["ThrottlingException"] == 1


def test_latency_percentiles_are_nearest_rank_over_the_latest_requests(
    empty_store: SqliteStore,
) -> None:
    recorder = StatsRecorder()
    for milliseconds in range(100, 0, -1):  # 100 ms down to 1 ms, in no sorted order of arrival
        recorder.request_decided([Delivered(milliseconds)], float(milliseconds))
    latency = recorder_snapshot(recorder, empty_store).request_latency
    assert latency.samples == 100
    assert (latency.p50, latency.p90, latency.p99, latency.max) == (0.05, 0.09, 0.099, 0.1)


def test_latency_keeps_a_bounded_window_of_the_latest_requests(empty_store: SqliteStore) -> None:
    recorder = StatsRecorder()
    for _ in range(LATENCY_WINDOW * 3):
        recorder.request_decided([Delivered(1)], 900.0)
    for _ in range(LATENCY_WINDOW):
        recorder.request_decided([Delivered(1)], 2.0)
    stats = recorder_snapshot(recorder, empty_store)
    assert stats.request_latency.samples == LATENCY_WINDOW
    assert stats.request_latency.max == 0.002  # the slow requests fell out of the window
    assert stats.requests == LATENCY_WINDOW * 4
    assert stats.request_seconds == pytest.approx(LATENCY_WINDOW * (3 * 0.9 + 0.002))


def test_before_any_request_there_are_no_percentiles(empty_store: SqliteStore) -> None:
    latency = recorder_snapshot(StatsRecorder(), empty_store).request_latency
    assert (latency.samples, latency.p50, latency.p99, latency.max) == (0, None, None, None)


def test_request_latency_is_measured_on_real_requests(
    outbox: Path, emulator: Emulator, clock: ManualClock
) -> None:
    emulator.create_input("A")
    emulator.set_faults(Faults(latency_ms=(60, 60)))
    with open_sender(outbox, emulator, clock) as sender:
        for n in range(3):
            sender.put("A", {"n": n})
        sender.deliver_due()
        latency = sender.stats().request_latency
    assert latency.samples == 3
    assert latency.p50 is not None and latency.max is not None
    assert 0.06 <= latency.p50 <= latency.max < 5


def test_decisions_of_every_kind_are_counted(empty_store: SqliteStore) -> None:
    recorder = StatsRecorder()
    recorder.request_decided(
        [
            Delivered(1),
            Retry(2, 1, START, START, "InternalFailureException", "oops"),
            MoveToDeadLetters(3, "B", 1, START, "InvalidRequestException", "bad"),
            Pause(4, "C", 1, START, "ResourceNotFoundException", "no input"),
        ],
        1.0,
    )
    stats = recorder_snapshot(recorder, empty_store)
    assert (stats.delivered, stats.dead_lettered, stats.lanes_paused) == (1, 1, 1)
    assert dict(stats.retried) == {"InternalFailureException": 1}


@pytest.fixture
def empty_store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(tmp_path / "empty.db")
    yield store
    store.close()


def recorder_snapshot(recorder: StatsRecorder, store: SqliteStore) -> SenderStats:
    """A snapshot with the gauges of an empty outbox."""
    return recorder.snapshot(store, START)

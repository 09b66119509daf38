"""The demo's verdict: from an endpoint's record, did every lane arrive complete and in order?"""

from __future__ import annotations

import socket

from ordered_sender.cli.demo.verdict import (
    EXIT_UNVERIFIED,
    EndpointRecord,
    PlannedMessage,
    Verdict,
    check_lanes,
    exit_status,
    plan_demo,
    remote_record,
    stats_since,
)
from ordered_sender.emulator import Emulator, EmulatorStats


def record(processed_ids: list[str]) -> EndpointRecord:
    return EndpointRecord(tuple(processed_ids), tuple(processed_ids), EmulatorStats())


def ids_of(planned: list[PlannedMessage]) -> list[str]:
    return [message.message_id for message in planned]


def test_plan_spreads_messages_round_robin_and_numbers_them_within_each_lane() -> None:
    planned = plan_demo(7, 3, "run1")

    assert [m.lane.name for m in planned[:3]] == [
        "FlowInput/device-001",
        "TemperatureInput/device-002",
        "VibrationInput/device-003",
    ]
    assert [m.position for m in planned if m.lane == planned[0].lane] == [0, 1, 2]
    assert len(set(ids_of(planned))) == 7


def test_lanes_processed_in_put_order_are_complete_even_when_lanes_interleave() -> None:
    planned = plan_demo(6, 2, "run1")
    lane_a, lane_b = ids_of(planned)[0::2], ids_of(planned)[1::2]

    reports = check_lanes(
        planned, record([lane_b[0], lane_a[0], lane_a[1], lane_b[1], *lane_a[2:], lane_b[2]])
    )

    assert all(report.complete for report in reports)
    assert [report.processed for report in reports] == [3, 3]


def test_a_message_processed_before_an_earlier_one_of_its_lane_is_out_of_order() -> None:
    planned = plan_demo(3, 1, "run1")
    first, second, third = ids_of(planned)

    (report,) = check_lanes(planned, record([first, third, second]))

    assert not report.in_order
    assert report.processed == 3
    assert not report.complete


def test_a_missing_message_makes_its_lane_incomplete() -> None:
    planned = plan_demo(3, 1, "run1")

    (report,) = check_lanes(planned, record(ids_of(planned)[:2]))

    assert report.in_order
    assert report.processed == 2
    assert not report.complete


def test_a_message_processed_twice_counts_as_a_duplicate() -> None:
    planned = plan_demo(2, 1, "run1")
    first, second = ids_of(planned)

    (report,) = check_lanes(planned, record([first, second, first]))

    assert report.duplicates == 1
    assert report.in_order
    assert not report.complete


def test_messages_of_other_runs_on_a_shared_endpoint_are_ignored() -> None:
    earlier = ids_of(plan_demo(4, 1, "old"))
    planned = plan_demo(2, 1, "new")

    (report,) = check_lanes(planned, record([*earlier[::-1], *ids_of(planned)]))

    assert report.complete


def test_stats_since_counts_only_this_run() -> None:
    before = EmulatorStats(requests=5, connections_dropped=1)
    after = EmulatorStats(requests=12, connections_dropped=1, duplicates_ignored=2)

    assert stats_since(before, after) == EmulatorStats(requests=7, duplicates_ignored=2)


def test_the_record_of_an_emulator_is_read_over_http() -> None:
    with Emulator(seed=1) as emulator:
        emulator.create_input("PressureInput")
        emulator.client("iotevents-data").batch_put_message(
            messages=[{"messageId": "m-1", "inputName": "PressureInput", "payload": b"{}"}]
        )

        fetched = remote_record(emulator.endpoint_url)

    assert fetched is not None
    assert fetched.processed_ids == ("m-1",)
    assert fetched.sent_ids == ("m-1",)
    assert fetched.stats.messages_processed == 1


def test_an_endpoint_without_an_emulator_record_has_no_record() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    assert remote_record(f"http://127.0.0.1:{port}") is None


def test_exit_status_is_zero_when_every_part_is_right_or_skipped() -> None:
    assert exit_status(Verdict.RIGHT, Verdict.RIGHT) == 0
    assert exit_status(Verdict.RIGHT, Verdict.SKIPPED) == 0


def test_exit_status_is_one_when_any_part_failed_even_if_another_is_unverified() -> None:
    assert exit_status(Verdict.RIGHT, Verdict.FAILED) == 1
    assert exit_status(Verdict.FAILED, Verdict.SKIPPED) == 1
    assert exit_status(Verdict.UNVERIFIED, Verdict.FAILED) == 1


def test_exit_status_says_unverified_when_the_order_could_not_be_checked() -> None:
    assert exit_status(Verdict.UNVERIFIED, Verdict.RIGHT) == EXIT_UNVERIFIED
    assert exit_status(Verdict.UNVERIFIED, Verdict.SKIPPED) == EXIT_UNVERIFIED

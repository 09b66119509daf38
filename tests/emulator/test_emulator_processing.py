"""What BatchPutMessage does with valid messages: de-duplication, missing inputs, order, seams."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from ordered_sender.emulator import Emulator, EntryError, ProcessedMessage
from ordered_sender.limits import DEDUPLICATION_WINDOW_SECONDS
from ordered_sender.testing import ManualClock

INPUT = "PressureInput"


def processed_ids(emu: Emulator, input_name: str | None = None) -> list[str]:
    return [m.message_id for m in emu.processed(input_name)]


def test_a_messageid_seen_in_the_last_five_minutes_is_ignored_but_reported_as_success(
    emu: Emulator, data: Any, clock: ManualClock, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1", payload=b"first")])
    clock.advance(DEDUPLICATION_WINDOW_SECONDS - 0.001)
    response = data.batch_put_message(messages=[message("m1", payload=b"second")])
    assert response["BatchPutMessageErrorEntries"] == []
    assert [m.payload for m in emu.processed()] == [b"first"]
    assert emu.stats().duplicates_ignored == 1


def test_a_messageid_is_processed_again_once_the_window_has_passed(
    emu: Emulator, data: Any, clock: ManualClock, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1", payload=b"first")])
    clock.advance(DEDUPLICATION_WINDOW_SECONDS)
    data.batch_put_message(messages=[message("m1", payload=b"second")])
    assert [m.payload for m in emu.processed()] == [b"first", b"second"]


def test_ignored_duplicates_do_not_extend_the_window(
    emu: Emulator, data: Any, clock: ManualClock, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1")])
    clock.advance(200)
    data.batch_put_message(messages=[message("m1")])
    clock.advance(100)
    data.batch_put_message(messages=[message("m1")])
    assert processed_ids(emu) == ["m1", "m1"]


def test_duplicates_are_recognised_across_inputs(emu: Emulator, data: Any, message: Any) -> None:
    emu.create_input("OtherInput")
    data.batch_put_message(messages=[message("m1"), message("m2", "OtherInput")])
    data.batch_put_message(messages=[message("m1", "OtherInput")])
    assert processed_ids(emu) == ["m1", "m2"]


def test_a_message_for_a_missing_input_gets_a_resource_not_found_entry(
    emu: Emulator, data: Any, message: Any
) -> None:
    response = data.batch_put_message(messages=[message("ok"), message("lost", "NoSuchInput")])
    (entry,) = response["BatchPutMessageErrorEntries"]
    assert entry["messageId"] == "lost"
    assert entry["errorCode"] == "ResourceNotFoundException"
    assert "NoSuchInput" in entry["errorMessage"]
    assert processed_ids(emu) == ["ok"]


def test_a_refused_message_is_not_remembered_so_its_retry_is_processed(
    emu: Emulator, data: Any, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1", "LateInput")])
    emu.create_input("LateInput")
    response = data.batch_put_message(messages=[message("m1", "LateInput")])
    assert response["BatchPutMessageErrorEntries"] == []
    assert processed_ids(emu, "LateInput") == ["m1"]


def shuffled_order(seed: int, message: Any, shuffle: bool = True) -> list[str]:
    with Emulator(seed=seed, shuffle=shuffle) as emu:
        emu.create_input(INPUT)
        emu.client("iotevents-data").batch_put_message(
            messages=[message(f"m{i}") for i in range(10)]
        )
        return processed_ids(emu)


def test_messages_of_one_request_are_processed_in_a_seeded_random_order(message: Any) -> None:
    request_order = [f"m{i}" for i in range(10)]
    first = shuffled_order(3, message)
    assert first != request_order
    assert sorted(first) == sorted(request_order)
    assert shuffled_order(3, message) == first
    assert shuffled_order(4, message) != first


def test_shuffling_can_be_turned_off(message: Any) -> None:
    assert shuffled_order(3, message, shuffle=False) == [f"m{i}" for i in range(10)]


def test_processed_messages_carry_their_timestamp_or_the_processing_time(
    emu: Emulator, data: Any, clock: ManualClock, message: Any
) -> None:
    stamped = {**message("stamped"), "timestamp": {"timeInMillis": 1234}}
    data.batch_put_message(messages=[stamped, message("unstamped")])
    first, second = emu.processed()
    assert (first.timestamp_ms, second.timestamp_ms) == (1234, int(clock() * 1000))
    assert first.processed_at == second.processed_at == clock()
    assert (first.sequence, second.sequence) == (1, 2)
    assert first.request_number == second.request_number == 1


def test_processors_receive_every_processed_message_in_processing_order(
    emu: Emulator, data: Any, message: Any
) -> None:
    received: list[ProcessedMessage] = []
    emu.add_processor(received.append)
    data.batch_put_message(messages=[message("a"), message("b"), message("lost", "NoSuchInput")])
    data.batch_put_message(messages=[message("a"), message("c")])
    assert received == emu.processed()
    assert [m.message_id for m in received] == ["a", "b", "c"]


def test_a_gate_refuses_a_message_with_its_entry_error(
    emu: Emulator, data: Any, message: Any
) -> None:
    def throttle_b(candidate: ProcessedMessage) -> EntryError | None:
        if candidate.message_id != "b":
            return None
        return EntryError(candidate.message_id, "ThrottlingException", "over quota")

    emu.add_gate(throttle_b)
    response = data.batch_put_message(messages=[message("a"), message("b"), message("c")])
    assert response["BatchPutMessageErrorEntries"] == [
        {
            "messageId": "b",
            "errorCode": "ThrottlingException",
            "errorMessage": "over quota",
        }
    ]
    assert [(m.message_id, m.sequence) for m in emu.processed()] == [("a", 1), ("c", 2)]
    assert emu.stats().refused_by_gate == 1


def test_concurrent_requests_are_processed_one_whole_request_at_a_time(
    emu: Emulator, message: Any
) -> None:
    def send(worker: int) -> None:
        client = emu.client("iotevents-data")
        for request in range(5):
            batch = [message(f"w{worker}r{request}m{i}") for i in range(10)]
            assert client.batch_put_message(messages=batch)["BatchPutMessageErrorEntries"] == []

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(send, range(4)))
    processed = emu.processed()
    assert [m.sequence for m in processed] == list(range(1, 201))
    request_numbers = [m.request_number for m in processed]
    runs = [n for i, n in enumerate(request_numbers) if i == 0 or request_numbers[i - 1] != n]
    assert len(runs) == len(set(runs)) == 20


def test_the_manual_clock_does_not_go_back(clock: ManualClock) -> None:
    before = clock()
    assert clock.advance(1.5) == before + 1.5
    with pytest.raises(ValueError, match=r"seconds=-1"):
        clock.advance(-1)

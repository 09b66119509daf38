"""Injected faults seen from boto3 the way the real service would show them."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError

from ordered_sender.emulator import Emulator, Faults, TargetedFault
from ordered_sender.testing import ManualClock

INPUT = "PressureInput"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (429, "ThrottlingException"),
        (500, "InternalFailureException"),
        (503, "ServiceUnavailableException"),
    ],
)
def test_a_request_fault_raises_its_client_error_and_processes_nothing(
    emu: Emulator, data: Any, message: Any, status: int, code: str
) -> None:
    emu.set_faults(Faults(request_error_rate=1.0, request_error_codes=(status,)))
    with pytest.raises(ClientError) as caught:
        data.batch_put_message(messages=[message("m1"), message("m2")])
    assert caught.value.response["Error"]["Code"] == code
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert emu.processed() == []
    (recorded,) = emu.requests()
    assert (recorded.status, recorded.error_code) == (status, code)
    assert emu.stats().request_errors_injected == 1


def test_botocore_does_not_retry_so_each_attempt_is_one_request(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.set_faults(Faults(request_error_rate=1.0, request_error_codes=(503,)))
    with pytest.raises(ClientError):
        data.batch_put_message(messages=[message("m1")])
    assert len(emu.requests()) == 1


def test_a_random_entry_fault_fails_that_message_only_and_a_retry_processes_it(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.set_faults(Faults(entry_error_rate=1.0, entry_error_codes=("ServiceUnavailableException",)))
    response = data.batch_put_message(messages=[message("m1")])
    (entry,) = response["BatchPutMessageErrorEntries"]
    assert (entry["messageId"], entry["errorCode"]) == ("m1", "ServiceUnavailableException")
    assert emu.processed() == []
    emu.set_faults(Faults())
    assert data.batch_put_message(messages=[message("m1")])["BatchPutMessageErrorEntries"] == []
    assert [m.message_id for m in emu.processed()] == ["m1"]


def test_a_targeted_fault_on_a_messageid_fails_it_every_time(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.set_faults(
        Faults(targeted=(TargetedFault("InvalidRequestException", message_id="bad", count=None),))
    )
    for _ in range(3):
        response = data.batch_put_message(messages=[message("bad"), message(f"ok{_}")])
        codes = {e["messageId"]: e["errorCode"] for e in response["BatchPutMessageErrorEntries"]}
        assert codes == {"bad": "InvalidRequestException"}
    assert [m.message_id for m in emu.processed()] == ["ok0", "ok1", "ok2"]
    assert emu.stats().targeted_errors_injected == 3


def test_a_targeted_fault_fails_the_next_n_messages_of_an_input(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.create_input("OtherInput")
    rule = TargetedFault("ResourceNotFoundException", input_name=INPUT, count=2)
    emu.set_faults(Faults(targeted=(rule,)))
    batch = [message("p1"), message("o1", "OtherInput"), message("p2"), message("p3")]
    response = data.batch_put_message(messages=batch)
    failed = [e["messageId"] for e in response["BatchPutMessageErrorEntries"]]
    assert failed == ["p1", "p2"]
    assert [m.message_id for m in emu.processed()] == ["o1", "p3"]


def test_setting_faults_again_restarts_targeted_counts(
    emu: Emulator, data: Any, message: Any
) -> None:
    faults = Faults(targeted=(TargetedFault("ThrottlingException", input_name=INPUT),))
    emu.set_faults(faults)
    data.batch_put_message(messages=[message("m1"), message("m2")])
    emu.set_faults(faults)
    response = data.batch_put_message(messages=[message("m3")])
    assert [e["messageId"] for e in response["BatchPutMessageErrorEntries"]] == ["m3"]


def test_a_dropped_connection_hides_an_outcome_that_was_processed(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.set_faults(Faults(drop_connection_rate=1.0))
    with pytest.raises(ConnectionClosedError):
        data.batch_put_message(messages=[message("m1")])
    assert [m.message_id for m in emu.processed()] == ["m1"]
    assert emu.requests()[0].dropped
    emu.set_faults(Faults())
    assert data.batch_put_message(messages=[message("m1")])["BatchPutMessageErrorEntries"] == []
    assert [m.message_id for m in emu.processed()] == ["m1"]
    assert emu.stats().duplicates_ignored == 1


def test_latency_delays_the_answer(emu: Emulator, data: Any, message: Any) -> None:
    emu.set_faults(Faults(latency_ms=(150, 150)))
    started = time.monotonic()
    data.batch_put_message(messages=[message("m1")])
    assert time.monotonic() - started >= 0.15
    assert emu.requests()[0].latency_ms == 150
    assert emu.stats().latencies_injected == 1


def test_latency_beyond_the_read_timeout_is_a_timeout_after_processing(
    emu: Emulator, message: Any
) -> None:
    emu.set_faults(Faults(latency_ms=(600, 600)))
    impatient = emu.client("iotevents-data", read_timeout=0.2)
    with pytest.raises(ReadTimeoutError):
        impatient.batch_put_message(messages=[message("m1")])
    assert [m.message_id for m in emu.processed()] == ["m1"]


def fault_outcomes(seed: int, message: Any) -> list[tuple[int, tuple[str, ...]]]:
    faults = Faults(request_error_rate=0.3, entry_error_rate=0.3)
    with Emulator(seed=seed, faults=faults, clock=ManualClock()) as emu:
        emu.create_input(INPUT)
        client = emu.client("iotevents-data")
        for request in range(20):
            with contextlib.suppress(ClientError):
                client.batch_put_message(messages=[message(f"r{request}m{i}") for i in range(5)])
        return [
            (r.status, tuple(e.message_id + e.error_code for e in r.error_entries))
            for r in emu.requests()
        ]


def test_faults_are_reproducible_from_the_seed(message: Any) -> None:
    outcomes = fault_outcomes(11, message)
    assert {status for status, _ in outcomes} > {200}
    assert any(entries for _, entries in outcomes)
    assert fault_outcomes(11, message) == outcomes
    assert fault_outcomes(12, message) != outcomes

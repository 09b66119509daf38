"""Recordings read from Python and over the ``/_emulator`` HTTP paths."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectionClosedError

from ordered_sender.emulator import Emulator, EmulatorStats, Faults, RequestedMessage, TargetedFault


def http_json(emu: Emulator, path: str, method: str = "GET", body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{emu.endpoint_url}{path}", data=data, method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


def test_requests_record_their_messages_in_request_order_and_the_answer(
    emu: Emulator, data: Any, message: Any
) -> None:
    data.batch_put_message(messages=[message("b"), message("a", "NoSuchInput")])
    (recorded,) = emu.requests()
    assert recorded.messages == (
        RequestedMessage("b", "PressureInput"),
        RequestedMessage("a", "NoSuchInput"),
    )
    assert (recorded.status, recorded.error_code, recorded.dropped) == (200, None, False)
    assert [(e.message_id, e.error_code) for e in recorded.error_entries] == [
        ("a", "ResourceNotFoundException")
    ]


def test_processed_can_be_read_per_input(emu: Emulator, data: Any, message: Any) -> None:
    emu.create_input("OtherInput")
    data.batch_put_message(messages=[message("p1"), message("o1", "OtherInput"), message("p2")])
    assert [m.message_id for m in emu.processed("PressureInput")] == ["p1", "p2"]
    assert [m.message_id for m in emu.processed("OtherInput")] == ["o1"]
    assert [m.message_id for m in emu.processed()] == ["p1", "o1", "p2"]


def test_stats_count_requests_messages_and_faults(emu: Emulator, data: Any, message: Any) -> None:
    data.batch_put_message(messages=[message("m1"), message("m2")])
    data.batch_put_message(messages=[message("m1"), message("x", "NoSuchInput")])
    stats = emu.stats()
    assert (stats.requests, stats.messages_received, stats.messages_processed) == (2, 4, 2)
    assert (stats.duplicates_ignored, stats.inputs_not_found) == (1, 1)


def test_processed_messages_over_http_carry_base64_payloads(
    emu: Emulator, data: Any, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1", payload=b'{"pressure": 80}')])
    (document,) = http_json(emu, "/_emulator/processed?inputName=PressureInput")["processed"]
    assert document["message_id"] == "m1"
    assert base64.b64decode(document["payload"]) == b'{"pressure": 80}'
    assert http_json(emu, "/_emulator/processed?inputName=Other")["processed"] == []


def test_requests_and_stats_over_http(emu: Emulator, data: Any, message: Any) -> None:
    data.batch_put_message(messages=[message("m1")])
    (document,) = http_json(emu, "/_emulator/requests")["requests"]
    assert document["messages"] == [{"message_id": "m1", "input_name": "PressureInput"}]
    assert document["status"] == 200
    assert http_json(emu, "/_emulator/stats")["messages_processed"] == 1


def test_faults_can_be_replaced_over_http(emu: Emulator) -> None:
    answered = http_json(emu, "/_emulator/faults", "PUT", {"entry_error_rate": 0.5})
    assert answered["entry_error_rate"] == 0.5
    assert emu.faults == Faults(entry_error_rate=0.5)
    assert http_json(emu, "/_emulator/faults")["entry_error_rate"] == 0.5


def test_bad_faults_over_http_are_refused_by_name(emu: Emulator) -> None:
    with pytest.raises(urllib.error.HTTPError) as caught:
        http_json(emu, "/_emulator/faults", "PUT", {"entry_error_rate": 3})
    assert caught.value.code == 400
    assert "entry_error_rate=3" in json.loads(caught.value.read())["message"]
    assert emu.faults == Faults()


def test_every_injected_fault_and_skipped_duplicate_is_in_the_request_record(
    emu: Emulator, data: Any, message: Any
) -> None:
    emu.set_faults(Faults(request_error_rate=1.0, request_error_codes=(503,)))
    with pytest.raises(ClientError):
        data.batch_put_message(messages=[message("r1")])
    emu.set_faults(
        Faults(
            targeted=(TargetedFault("ThrottlingException", message_id="t1"),),
            entry_error_rate=1.0,
            entry_error_codes=("InternalFailureException",),
            latency_ms=(1, 1),
        )
    )
    data.batch_put_message(messages=[message("t1"), message("e1")])
    emu.set_faults(Faults())
    data.batch_put_message(messages=[message("d1")])
    data.batch_put_message(messages=[message("d1"), message("d2")])
    emu.set_faults(Faults(drop_connection_rate=1.0))
    with pytest.raises(ConnectionClosedError):
        data.batch_put_message(messages=[message("x1")])

    records = emu.requests()
    assert [[(f.kind, f.message_id, f.detail) for f in r.injected] for r in records] == [
        [("request_error", None, "ServiceUnavailableException")],
        [
            ("targeted_error", "t1", "ThrottlingException"),
            ("entry_error", "e1", "InternalFailureException"),
            ("latency", None, "1 ms"),
        ],
        [],
        [],
        [("connection_dropped", None, "")],
    ]
    assert [r.duplicates for r in records] == [(), (), (), ("d1",), ()]
    (over_http,) = [
        r for r in http_json(emu, "/_emulator/requests")["requests"] if r["number"] == 4
    ]
    assert over_http["duplicates"] == ["d1"]


def test_a_reset_forgets_the_record_but_not_the_deduplication_window(
    emu: Emulator, data: Any, message: Any
) -> None:
    data.batch_put_message(messages=[message("m1"), message("m2", "NoSuchInput")])

    request = urllib.request.Request(f"{emu.endpoint_url}/_emulator/record", method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as response:
        status = response.status
    after_reset = (emu.processed(), emu.requests(), emu.stats(), emu.unusable())
    data.batch_put_message(messages=[message("m1"), message("m3")])

    assert status == 204
    assert after_reset == ([], [], EmulatorStats(), [])
    assert [m.message_id for m in emu.processed()] == ["m3"]
    assert [m.sequence for m in emu.processed()] == [2]
    assert [r.number for r in emu.requests()] == [2]
    assert emu.stats().duplicates_ignored == 1

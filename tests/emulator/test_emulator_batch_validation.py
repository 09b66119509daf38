"""BatchPutMessage refuses a broken request as a whole, naming the field and the value."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordered_sender.emulator import Emulator
from ordered_sender.testing import ManualClock

INPUT = "PressureInput"


def refusal(client: Any, messages: list[dict[str, Any]]) -> str:
    """The message of the InvalidRequestException (400) that ``messages`` provoke."""
    with pytest.raises(ClientError) as caught:
        client.batch_put_message(messages=messages)
    error = caught.value.response
    assert error["Error"]["Code"] == "InvalidRequestException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    return str(error["Error"]["Message"])


def test_eleven_messages_are_refused_and_none_is_processed(
    emu: Emulator, raw_data: Any, message: Any
) -> None:
    text = refusal(raw_data, [message(f"m{i}") for i in range(11)])
    assert "length 11" in text and "'messages'" in text
    assert emu.processed() == []


def test_ten_messages_are_accepted(emu: Emulator, data: Any, message: Any) -> None:
    response = data.batch_put_message(messages=[message(f"m{i}") for i in range(10)])
    assert response["BatchPutMessageErrorEntries"] == []
    assert len(emu.processed()) == 10


def test_a_messageid_repeated_in_one_request_is_refused(
    emu: Emulator, raw_data: Any, message: Any
) -> None:
    text = refusal(raw_data, [message("a"), message("b"), message("a")])
    assert "Value 'a' at 'messages.3.member.messageId'" in text
    assert "message 1" in text
    assert emu.processed() == []


@pytest.mark.parametrize(
    ("message_id", "constraint"),
    [
        ("x" * 65, "length less than or equal to 64"),
        ("has space", "regular expression pattern: ^[a-zA-Z0-9_-]+$"),
        ("ends-in-newline\n", "regular expression pattern: ^[a-zA-Z0-9_-]+$"),
        ("", "length greater than or equal to 1"),
    ],
)
def test_a_malformed_messageid_is_refused_naming_it(
    raw_data: Any, message: Any, message_id: str, constraint: str
) -> None:
    text = refusal(raw_data, [message(message_id)])
    assert f"Value '{message_id}' at 'messages.1.member.messageId'" in text
    assert constraint in text


@pytest.mark.parametrize(
    ("input_name", "constraint"),
    [
        ("i" * 129, "length less than or equal to 128"),
        ("-starts-with-dash", "regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
        ("EndsInNewline\n", "regular expression pattern: ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$"),
    ],
)
def test_a_malformed_input_name_is_refused_naming_it(
    raw_data: Any, message: Any, input_name: str, constraint: str
) -> None:
    text = refusal(raw_data, [message("m1", input_name)])
    assert f"Value '{input_name}' at 'messages.1.member.inputName'" in text
    assert constraint in text


def test_payloads_over_one_kib_per_request_are_refused(
    emu: Emulator, data: Any, message: Any
) -> None:
    half = b"x" * 513
    text = refusal(data, [message("m1", payload=half), message("m2", payload=half)])
    assert "1026 bytes" in text and "1024" in text
    assert emu.processed() == []


def test_exactly_one_kib_of_payload_is_accepted(emu: Emulator, data: Any, message: Any) -> None:
    data.batch_put_message(messages=[message("m1", payload=b"x" * 1024)])
    assert [m.payload for m in emu.processed()] == [b"x" * 1024]


def test_the_payload_limit_is_configurable(clock: ManualClock, message: Any) -> None:
    with Emulator(clock=clock, max_payload_bytes=10) as emu:
        emu.create_input(INPUT)
        text = refusal(emu.client("iotevents-data"), [message("m1", payload=b"x" * 11)])
    assert "11 bytes" in text and "at most 10 bytes" in text


def test_a_timestamp_below_one_millisecond_is_refused(raw_data: Any, message: Any) -> None:
    entry = {**message("m1"), "timestamp": {"timeInMillis": 0}}
    text = refusal(raw_data, [entry])
    assert "Value '0' at 'messages.1.member.timestamp.timeInMillis'" in text
    assert "greater than or equal to 1" in text


def test_a_missing_payload_is_refused(raw_data: Any) -> None:
    text = refusal(raw_data, [{"messageId": "m1", "inputName": INPUT}])
    assert "'messages.1.member.payload' failed to satisfy constraint: Member must not be null" in (
        text
    )


def test_every_violation_is_listed(raw_data: Any, message: Any) -> None:
    text = refusal(raw_data, [message("bad id", "-bad-input")])
    assert text.startswith("2 validation errors detected")


def test_a_body_that_is_not_json_is_refused(emu: Emulator) -> None:
    request = urllib.request.Request(
        f"{emu.endpoint_url}/inputs/messages", data=b"{not json", method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert caught.value.code == 400
    assert caught.value.headers["x-amzn-ErrorType"].startswith("InvalidRequestException")
    assert "not JSON" in json.loads(caught.value.read())["message"]


def test_a_payload_that_is_not_base64_is_refused(emu: Emulator) -> None:
    body = {"messages": [{"messageId": "m1", "inputName": INPUT, "payload": "%%%"}]}
    request = urllib.request.Request(
        f"{emu.endpoint_url}/inputs/messages", data=json.dumps(body).encode(), method="POST"
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    assert "base64" in json.loads(caught.value.read())["message"]
    assert emu.stats().requests_refused == 1


def test_a_refused_request_is_recorded_with_the_messages_it_carried(
    emu: Emulator, raw_data: Any, message: Any
) -> None:
    refusal(raw_data, [message("a"), message("a")])
    (recorded,) = emu.requests()
    assert [m.message_id for m in recorded.messages] == ["a", "a"]
    assert (recorded.status, recorded.error_code) == (400, "InvalidRequestException")


def test_payload_bytes_arrive_exactly_as_sent(emu: Emulator, data: Any, message: Any) -> None:
    payload = bytes(range(256))
    data.batch_put_message(messages=[message("m1", payload=payload)])
    assert emu.processed()[0].payload == payload

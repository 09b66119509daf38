"""Reading JSON-lines files for ``ordered-sender send``: every line checked before any put."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ordered_sender.cli.jsonl import BadLine, Line, read_lines
from ordered_sender.errors import InvalidMessage
from ordered_sender.lanes import ByInputAndKey
from ordered_sender.limits import MAX_PAYLOAD_BYTES_PER_REQUEST
from ordered_sender.message import Message


def no_lane_check(message: Message) -> str:
    return message.input_name


def read(
    lines: list[str],
    input_name: str | None = None,
    check: Callable[[Message], object] = no_lane_check,
) -> list[Line]:
    return read_lines(
        "in.jsonl",
        lines,
        input_name=input_name,
        check=check,
        max_payload_bytes=MAX_PAYLOAD_BYTES_PER_REQUEST,
    )


def refusal(lines: list[str], **options: Any) -> str:
    with pytest.raises(BadLine) as caught:
        read(lines, **options)
    return str(caught.value)


def test_envelope_lines_keep_file_order_ids_timestamps_and_line_numbers() -> None:
    parsed = read(
        [
            '{"inputName": "A", "payload": {"n": 1}, "messageId": "m-1", '
            '"timestamp": 1700000000005}',
            "",
            '{"inputName": "B", "payload": {"n": 2}, "timestamp": {"timeInMillis": 1700000000007}}',
        ]
    )

    assert [line.number for line in parsed] == [1, 3]
    assert parsed[0].message == Message("A", b'{"n":1}', "m-1", 1700000000005)
    assert parsed[1].message.input_name == "B"
    assert parsed[1].message.timestamp_ms == 1700000000007


def test_a_line_without_message_id_gets_one_before_it_is_stored() -> None:
    (line,) = read(['{"inputName": "A", "payload": {}}'])

    assert len(line.message.message_id) == 32


def test_with_input_name_every_line_is_the_payload_itself() -> None:
    (line,) = read(['{"inputName": "not a field here", "n": 1}'], input_name="Pressure")

    assert line.message.input_name == "Pressure"
    assert line.message.payload == b'{"inputName":"not a field here","n":1}'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("{not json", "in.jsonl:2: line='{not json': is not JSON"),
        ("[1, 2]", "in.jsonl:2: line=[1, 2]: must be a JSON object"),
        ('{"payload": {}}', "in.jsonl:2: inputName='<missing>': is required"),
        ('{"inputName": "A"}', "in.jsonl:2: payload='<missing>': is required"),
        ('{"inputName": "A", "payload": {}, "messageID": "x"}', "in.jsonl:2: messageID='x'"),
        ('{"inputName": "-A", "payload": {}}', "in.jsonl:2: inputName='-A': must match"),
        ('{"inputName": "A", "payload": {}, "messageId": "a b"}', "messageId='a b': must match"),
        ('{"inputName": "A", "payload": {}, "timestamp": "soon"}', "timestamp='soon': must be"),
        ('{"inputName": "A", "payload": 3}', "in.jsonl:2: payload=3: must be a JSON object"),
        ('{"inputName": "A", "payload": "hello"}', "payload='hello': must be a JSON object"),
        ('{"inputName": "A", "payload": [1, 2]}', "payload=[1, 2]: must be a JSON object"),
        (
            '{"inputName": "A", "payload": {}, "timestamp": 1700000000}',
            "timestamp=1700000000: is too small for milliseconds since the Unix epoch (before "
            "1973): it looks like seconds; give milliseconds (1700000000000)",
        ),
        (
            '{"inputName": "A", "payload": {}, "timestamp": {"timeInMillis": 1700000000}}',
            "in.jsonl:2: timestamp=1700000000: is too small",
        ),
    ],
)
def test_a_bad_line_is_refused_naming_file_line_field_and_value(line: str, expected: str) -> None:
    good = '{"inputName": "A", "payload": {}}'

    assert expected in refusal([good, line])


def test_a_message_id_used_twice_in_a_file_is_refused_at_its_second_line() -> None:
    line = '{"inputName": "A", "payload": {}, "messageId": "m-1"}'

    assert refusal([line, line]) == (
        "in.jsonl:2: messageId='m-1': is already used on line 1; message ids must be unique"
    )


def test_a_payload_without_the_lane_key_is_refused_by_the_lane_function() -> None:
    lines = ['{"motorid": "m1"}', '{"speed": 3}']

    message = refusal(lines, input_name="Motor", check=ByInputAndKey("motorid"))

    assert message.startswith("in.jsonl:2: payload.motorid='<missing>'")


def test_a_payload_over_the_request_limit_is_refused() -> None:
    big = '{"inputName": "A", "payload": {"text": "' + "x" * 2000 + '"}}'

    assert "in.jsonl:1: payload='<2011 bytes>'" in refusal([big])


def test_a_line_nested_too_deeply_is_refused_naming_it_not_a_recursion_error() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    text = refusal([deep], input_name="A")
    assert text.startswith("in.jsonl:1: line='<200000 characters>'")
    assert "nested too deeply" in text
    assert "[[[[" not in text  # the line itself is not echoed


def test_errors_show_a_value_too_deep_or_long_to_print_by_its_type() -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    assert "<list>" in str(InvalidMessage("payload", nested, "x"))
    assert "<int>" in str(InvalidMessage("timestamp_ms", 10**5000, "x"))

"""put() refuses every bad input with its own clear error and stores nothing."""

from __future__ import annotations

import json
import multiprocessing
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from freezegun import freeze_time
from hypothesis import given
from hypothesis import strategies as st

import ordered_sender
from ordered_sender import InvalidMessage, OrderedSender
from ordered_sender.limits import INPUT_NAME_PATTERN, MESSAGE_ID_PATTERN
from ordered_sender.message import Message, build_message, new_message_id, unpack_put_item
from ordered_sender.testing import MockTransport

# AWS's rules written out again, so the checks below do not test limits.py against itself.
DOCUMENTED_INPUT_NAME = r"[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}"
DOCUMENTED_MESSAGE_ID = r"[a-zA-Z0-9_-]{1,64}"
LARGEST_LONG = 2**63 - 1

BAD_PUTS = [
    # (input_name, payload, kwargs, field, words in the message)
    ("", {"a": 1}, {}, "input_name", "1 to 128 characters"),
    ("x" * 129, {"a": 1}, {}, "input_name", "1 to 128 characters"),
    ("_starts_badly", {"a": 1}, {}, "input_name", "must match"),
    ("has space", {"a": 1}, {}, "input_name", "must match"),
    (42, {"a": 1}, {}, "input_name", "must be a str"),
    ("In", {"a": 1}, {"message_id": ""}, "message_id", "1 to 64 characters"),
    ("In", {"a": 1}, {"message_id": "m" * 65}, "message_id", "1 to 64 characters"),
    ("In", {"a": 1}, {"message_id": "bad.id"}, "message_id", "must match"),
    ("In", {"a": 1}, {"message_id": "bad id"}, "message_id", "must match"),
    ("In", {"a": {1, 2}}, {}, "payload", "not JSON-serialisable"),
    ("In", {"a": float("nan")}, {}, "payload", "not JSON-serialisable"),
    ("In", 3.5, {}, "payload", "must be bytes, str"),
    ("In", b"x" * 1025, {}, "payload", "1024-byte payload limit"),
    ("In", {"a": 1}, {"timestamp_ms": 0}, "timestamp_ms", ">= 1"),
    ("In", {"a": 1}, {"timestamp_ms": -5}, "timestamp_ms", ">= 1"),
    ("In", {"a": 1}, {"timestamp_ms": 1.5}, "timestamp_ms", "must be an int"),
]


@pytest.fixture
def idle_sender(outbox: Path) -> Iterator[OrderedSender]:
    sender = OrderedSender(outbox, transport=MockTransport(), autostart=False)
    yield sender
    sender.close()


@pytest.mark.parametrize(("input_name", "payload", "kwargs", "field", "words"), BAD_PUTS)
def test_bad_put_is_refused_naming_field_and_value_and_stores_nothing(
    idle_sender: OrderedSender,
    input_name: object,
    payload: object,
    kwargs: dict[str, object],
    field: str,
    words: str,
) -> None:
    idle_sender.put("Good", {"before": True})
    with pytest.raises(InvalidMessage) as caught:
        idle_sender.put(input_name, payload, **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}=")
    assert words in str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert idle_sender.counts().pending == 1


def test_error_never_echoes_a_payload(idle_sender: OrderedSender) -> None:
    secret = "s3cr3t-" * 200
    with pytest.raises(InvalidMessage) as caught:
        idle_sender.put("In", secret)
    assert "s3cr3t" not in str(caught.value)
    assert "1400 bytes" in str(caught.value)


def test_reused_message_id_is_refused_and_outbox_unchanged(idle_sender: OrderedSender) -> None:
    idle_sender.put("In", {"n": 1}, message_id="order-1")
    with pytest.raises(InvalidMessage, match=r"order-1.*already used") as caught:
        idle_sender.put("Other", {"n": 2}, message_id="order-1")
    assert caught.value.field == "message_id"
    assert idle_sender.counts().pending == 1


def test_put_many_is_all_or_nothing(idle_sender: OrderedSender) -> None:
    with pytest.raises(InvalidMessage, match="input_name"):
        idle_sender.put_many([("A", {"n": 1}), ("B", {"n": 2}), ("bad name", {"n": 3})])
    with pytest.raises(InvalidMessage, match="already used"):
        idle_sender.put_many([("A", {"n": 1}, "same"), ("B", {"n": 2}, "same")])
    assert idle_sender.counts().pending == 0
    receipts = idle_sender.put_many([("A", {"n": 1}), ("B", b"raw"), ("A", "text")])
    assert [r.seq for r in receipts] == sorted(r.seq for r in receipts)
    assert idle_sender.counts().pending == 3


def test_generated_ids_are_unique_and_match_the_documented_pattern() -> None:
    ids = {new_message_id() for _ in range(10_000)}
    assert len(ids) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_generated_ids_sort_in_the_order_they_were_made() -> None:
    """Time first, so the outbox's index of ids grows at one end instead of everywhere."""
    with freeze_time("2026-05-01 12:00:00") as frozen:
        ids = []
        for _ in range(5):
            ids.append(new_message_id())
            frozen.tick(0.01)
    assert ids == sorted(ids)
    assert len(set(ids)) == 5
    assert ids[0][:12] == f"{1777636800000:012x}"  # the milliseconds of the frozen time


def _ids_in_child(count: int) -> list[str]:
    return [new_message_id() for _ in range(count)]


def test_a_forked_process_generates_other_ids_than_its_parent() -> None:
    """Two processes putting into one outbox (or sending to one endpoint) after a fork must not
    draw the same ids: IoT Events would drop the second of each as a duplicate."""
    with multiprocessing.get_context("fork").Pool(1) as pool:
        child = pool.apply(_ids_in_child, (100,))
    parent = _ids_in_child(100)
    assert len(set(child) | set(parent)) == 200


def test_payload_encodings(idle_sender: OrderedSender) -> None:
    transport = MockTransport()
    assert isinstance(idle_sender.path, Path)  # an SQLite outbox, not a database URL
    sender = OrderedSender(
        idle_sender.path.with_name("other.db"), transport=transport, autostart=False
    )
    try:
        sender.put("A", {"b": "é", "a": [1, 2]}, timestamp_ms=7)
        sender.put("B", "plain é")
        sender.put("C", b"\x00\x01")
        sender.deliver_due()
        sent = {m.input_name: m for request in transport.requests for m in request}
        assert sent["A"].payload == '{"b":"é","a":[1,2]}'.encode()
        assert sent["A"].timestamp_ms == 7
        assert sent["B"].payload == "plain é".encode()
        assert sent["C"].payload == b"\x00\x01"
    finally:
        sender.close()


def refused(sender: OrderedSender, *args: object, **kwargs: object) -> InvalidMessage:
    """The InvalidMessage a put raises, after checking that the outbox did not change."""
    pending = sender.counts().pending
    with pytest.raises(InvalidMessage) as caught:
        sender.put(*args, **kwargs)  # type: ignore[arg-type]
    assert sender.counts().pending == pending
    return caught.value


def nested_lists(depth: int) -> list[object]:
    payload: list[object] = []
    for _ in range(depth):
        payload = [payload]
    return payload


@pytest.mark.parametrize("name", ["abc\n", "abc\r", "abc\n\n", "\nabc", "ab\nc"])
def test_a_newline_anywhere_in_the_input_name_is_refused(
    idle_sender: OrderedSender, name: str
) -> None:
    error = refused(idle_sender, name, {"a": 1})
    assert error.field == "input_name"
    assert error.value == name
    assert "must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]*$" in str(error)


def test_a_trailing_newline_in_the_message_id_is_refused(idle_sender: OrderedSender) -> None:
    error = refused(idle_sender, "In", {"a": 1}, message_id="order-1\n")
    assert error.field == "message_id"
    assert error.value == "order-1\n"
    assert "must match ^[a-zA-Z0-9_-]+$" in str(error)


@pytest.mark.parametrize("text", ["abc\n", "abc\u0661", "\u00e9t\u00e9", "abc\ud800", "\uff41bc"])
def test_the_patterns_pass_only_whole_ascii_strings_whichever_way_they_are_applied(
    text: str,
) -> None:
    for pattern in (INPUT_NAME_PATTERN, MESSAGE_ID_PATTERN):
        assert pattern.match(text) is None
        assert pattern.search(text) is None
        assert pattern.fullmatch(text) is None
        assert pattern.match(text.rstrip("\n")[:3] if text.isascii() else "abc") is not None


def test_a_lone_surrogate_in_a_name_or_id_is_refused_by_the_pattern(
    idle_sender: OrderedSender,
) -> None:
    assert refused(idle_sender, "In\ud800", {"a": 1}).field == "input_name"
    error = refused(idle_sender, "In", {"a": 1}, message_id="m\udfff")
    assert error.field == "message_id"
    # The message shows the surrogate escaped, so printing the error cannot fail in turn.
    assert "\\udfff" in str(error)
    str(error).encode("utf-8")


@pytest.mark.parametrize("payload", [nested_lists(100_000), {"a": nested_lists(100_000)}])
def test_a_deeply_nested_payload_is_refused_as_too_deep(
    idle_sender: OrderedSender, payload: object
) -> None:
    error = refused(idle_sender, "In", payload)
    assert error.field == "payload"
    assert error.value == f"<{type(payload).__name__} of length 1>"
    assert "nested too deeply" in str(error)


def test_a_lone_surrogate_in_a_str_payload_is_refused(idle_sender: OrderedSender) -> None:
    error = refused(idle_sender, "In", "secret\ud800")
    assert error.field == "payload"
    assert "lone surrogate (U+D800)" in str(error)
    assert "secret" not in str(error)
    assert error.value == "<str of length 7>"


@pytest.mark.parametrize(
    "payload",
    [{"text": "secret\udc00"}, {"secret\udc00": 1}, ["secret", ["\udc00"]]],
    ids=["dict value", "dict key", "nested list"],
)
def test_a_lone_surrogate_inside_a_dict_or_list_payload_is_refused(
    idle_sender: OrderedSender, payload: object
) -> None:
    error = refused(idle_sender, "In", payload)
    assert error.field == "payload"
    assert "lone surrogate (U+DC00)" in str(error)
    assert "secret" not in str(error)


@pytest.mark.parametrize("stamp", [LARGEST_LONG + 1, 2**64, 2**100])
def test_a_timestamp_beyond_a_64_bit_long_is_refused_naming_it(
    idle_sender: OrderedSender, stamp: int
) -> None:
    error = refused(idle_sender, "In", {"a": 1}, timestamp_ms=stamp)
    assert error.field == "timestamp_ms"
    assert str(error).startswith(f"timestamp_ms={stamp}: must be <= {LARGEST_LONG}")


def test_a_timestamp_of_thousands_of_digits_is_refused_without_printing_them(
    idle_sender: OrderedSender,
) -> None:
    error = refused(idle_sender, "In", {"a": 1}, timestamp_ms=10**5000)
    assert error.field == "timestamp_ms"
    assert error.value == "<int of 16610 bits>"
    assert "must be <=" in str(error)


def test_the_largest_long_timestamp_is_stored_and_sent_as_given(outbox: Path) -> None:
    transport = MockTransport()
    sender = OrderedSender(outbox, transport=transport, autostart=False)
    try:
        sender.put("In", {"a": 1}, timestamp_ms=LARGEST_LONG)
        sender.deliver_due()
        assert [m.timestamp_ms for r in transport.requests for m in r] == [LARGEST_LONG]
    finally:
        sender.close()


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ({"secret": "s3cr3t"}, "<dict of length 1>"),
        (nested_lists(100_000), "<list of length 1>"),
        (b"s3cr3t", "<bytes of length 6>"),
        (10**5000, "<int of 16610 bits>"),
        (42, 42),
        (4.5, 4.5),
    ],
    ids=["dict", "deep list", "bytes", "huge int", "int", "float"],
)
def test_a_name_of_the_wrong_type_is_shown_by_type_never_echoing_a_payload(
    idle_sender: OrderedSender, given: object, shown: object
) -> None:
    error = refused(idle_sender, given, {"a": 1})
    assert (error.field, error.value) == ("input_name", shown)
    assert "s3cr3t" not in str(error)
    error = refused(idle_sender, "In", {"a": 1}, message_id=given)
    assert (error.field, error.value) == ("message_id", shown)


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        (("In", b"p"), ("In", b"p", None, None)),
        (["In", b"p", "id-1"], ("In", b"p", "id-1", None)),
        (("In", b"p", None, 7), ("In", b"p", None, 7)),
    ],
)
def test_a_put_many_item_of_two_to_four_values_unpacks_padded_with_none(
    item: object, fields: tuple[object, ...]
) -> None:
    assert unpack_put_item(item) == fields


@pytest.mark.parametrize(
    ("item", "shown", "words"),
    [
        ("ab", "<str of length 2>", "must be a tuple"),
        ("s3cr3t-text", "<str of length 11>", "must be a tuple"),
        (b"ab", "<bytes of length 2>", "must be a tuple"),
        ({"In": "s3cr3t"}, "<dict of length 1>", "must be a tuple"),
        (None, "<NoneType>", "must be a tuple"),
        (iter([("In", b"p")]), "<list_iterator>", "must be a tuple"),
        (("In",), "<tuple of length 1>", "2 to 4 values"),
        (("In", "s3cr3t", "id", 7, "extra"), "<tuple of length 5>", "2 to 4 values"),
        ([], "<list of length 0>", "2 to 4 values"),
    ],
)
def test_a_put_many_item_that_is_not_a_tuple_of_two_to_four_values_is_refused(
    item: object, shown: str, words: str
) -> None:
    with pytest.raises(InvalidMessage) as caught:
        unpack_put_item(item)
    assert (caught.value.field, caught.value.value) == ("item", shown)
    assert words in str(caught.value)
    assert "(input_name, payload[, message_id[, timestamp_ms]])" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_put_many_refuses_a_string_item_and_stores_nothing(tmp_path: Path) -> None:
    with ordered_sender.Outbox(tmp_path / "o.db") as outbox:
        with pytest.raises(InvalidMessage) as caught:
            outbox.put_many([("Good", {"n": 1}), "ab"])  # type: ignore[list-item]
        assert caught.value.field == "item"
        assert outbox.counts().pending == 0


TEXT_WITH_SURROGATES = st.text(st.characters(exclude_categories=()))
NAMES = st.one_of(
    TEXT_WITH_SURROGATES,
    st.from_regex(DOCUMENTED_INPUT_NAME, fullmatch=True),
    st.from_regex(DOCUMENTED_MESSAGE_ID, fullmatch=True).map(lambda text: text + "\n"),
)


@given(input_name=NAMES, message_id=NAMES)
def test_any_text_name_or_id_builds_a_documented_message_or_is_refused(
    input_name: str, message_id: str
) -> None:
    try:
        message = build_message(input_name, b"{}", message_id=message_id, max_payload_bytes=1024)
    except InvalidMessage as error:
        assert error.field in {"input_name", "message_id"}
        return
    assert re.fullmatch(DOCUMENTED_INPUT_NAME, message.input_name)
    assert re.fullmatch(DOCUMENTED_MESSAGE_ID, message.message_id)


JSON_ISH = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT_WITH_SURROGATES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(TEXT_WITH_SURROGATES, children, max_size=4)
    ),
    max_leaves=12,
)


@given(payload=JSON_ISH)
def test_any_json_ish_payload_encodes_to_what_it_said_or_is_refused(payload: object) -> None:
    try:
        message = build_message("In", payload, max_payload_bytes=1024)
    except InvalidMessage as error:
        assert error.field == "payload"
        return
    assert isinstance(message, Message)
    if isinstance(payload, str):
        assert message.payload.decode("utf-8") == payload
    else:
        assert isinstance(payload, dict | list)
        assert json.loads(message.payload) == payload

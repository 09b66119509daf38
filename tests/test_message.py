"""put() refuses every bad input with its own clear error and stores nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ordered_sender import InvalidMessage, OrderedSender
from ordered_sender.message import new_message_id
from ordered_sender.testing import MockTransport

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
def idle_sender(outbox: Path) -> OrderedSender:
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
    assert all(re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", i) for i in ids)


def test_payload_encodings(idle_sender: OrderedSender) -> None:
    transport = MockTransport()
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

"""Lane functions decide what keeps order with what; they are fixed at put time."""

from __future__ import annotations

from pathlib import Path

import pytest

from ordered_sender import (
    ByInput,
    ByInputAndKey,
    ByInputGroup,
    InvalidConfig,
    InvalidMessage,
    OrderedSender,
    SenderConfig,
)
from ordered_sender.message import Message
from ordered_sender.testing import MockTransport


def message(input_name: str, payload: bytes) -> Message:
    return Message(input_name, payload, "id")


def test_default_lane_is_the_input_name() -> None:
    assert ByInput()(message("PressureInput", b"{}")) == "PressureInput"


def test_keyed_lane_reads_a_dotted_attribute() -> None:
    lane = ByInputAndKey("motor.id")
    assert lane(message("P", b'{"motor": {"id": "m1"}}')) == "P/m1"
    assert lane(message("P", b'{"motor": {"id": 7}}')) == "P/7"


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"not json", "<not JSON>"),
        (b'{"motor": {}}', "<missing>"),
        (b'{"motor": {"id": [1]}}', "string or an integer"),
        (b'{"motor": {"id": true}}', "string or an integer"),
    ],
)
def test_keyed_lane_refuses_payloads_without_a_usable_key(payload: bytes, words: str) -> None:
    with pytest.raises(InvalidMessage, match=r"payload\.motor\.id") as caught:
        ByInputAndKey("motor.id")(message("P", payload))
    assert words in str(caught.value)


def test_grouped_inputs_share_one_lane_and_others_keep_their_own() -> None:
    lane = ByInputGroup({"hvac": ("Temperature", "Door")})
    assert lane(message("Temperature", b"{}")) == "hvac"
    assert lane(message("Door", b"{}")) == "hvac"
    assert lane(message("Pressure", b"{}")) == "Pressure"
    keyed = ByInputGroup({"hvac": ("Temperature", "Door")}, key="unit")
    assert keyed(message("Door", b'{"unit": "u9"}')) == "hvac/u9"


@pytest.mark.parametrize(
    ("build", "words"),
    [
        (lambda: ByInputAndKey(""), "lane.key=''"),
        (lambda: ByInputAndKey("a..b"), "dotted attribute path"),
        (lambda: ByInputGroup({"g": ()}), "non-empty tuple"),
        (lambda: ByInputGroup({"g": "Door"}), "non-empty tuple"),  # type: ignore[dict-item]
        (lambda: ByInputGroup({"g": ("bad name",)}), "not a valid input name"),
        (lambda: ByInputGroup({"g": ("A",), "h": ("A",)}), "already in group 'g'"),
    ],
)
def test_bad_lane_settings_are_refused(build: object, words: str) -> None:
    with pytest.raises(InvalidConfig, match=words.replace("(", r"\(")):
        build()  # type: ignore[operator]


def test_lane_is_stored_at_put_and_a_keyed_lane_orders_per_key(outbox: Path) -> None:
    transport = MockTransport()
    config = SenderConfig(lane=ByInputAndKey("motorid"))
    sender = OrderedSender(outbox, transport=transport, config=config, autostart=False)
    try:
        receipts = [sender.put("P", {"motorid": m, "n": n}) for n in range(3) for m in ("a", "b")]
        assert [r.lane for r in receipts] == ["P/a", "P/b"] * 3
        sender.deliver_due()
    finally:
        sender.close()
    # Two lanes of one input travel in the same request: more parallelism for keyed detectors.
    assert [len(r) for r in transport.requests] == [2, 2, 2]
    with (
        OrderedSender(outbox, transport=transport, config=config, autostart=False) as reopened,
        pytest.raises(InvalidMessage, match=r"payload\.motorid"),
    ):
        reopened.put("P", {})

"""What the endpoint's record is, as against its state: ``Emulator.reset_record()`` forgets the
record and keeps the state; ``--state`` keeps the state and not the record or the action log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ordered_sender.emulator import Emulator, EmulatorStats
from ordered_sender.emulator.detectors.examples import (
    MOTOR_DETECTOR_MODEL,
    MOTOR_INPUT,
    motor_payload,
)
from ordered_sender.testing import ManualClock

MODEL = MOTOR_DETECTOR_MODEL["detectorModelName"]


def put(emu: Emulator, message_id: str, pressure: int) -> None:
    payload = json.dumps(motor_payload("A32", pressure)).encode()
    response = emu.client("iotevents-data").batch_put_message(
        messages=[{"messageId": message_id, "inputName": "PressureInput", "payload": payload}]
    )
    assert response["BatchPutMessageErrorEntries"] == []


def state_of(emu: Emulator) -> dict[str, Any]:
    data = emu.client("iotevents-data")
    state: dict[str, Any] = data.describe_detector(detectorModelName=MODEL, keyValue="A32")[
        "detector"
    ]["state"]
    return state


def create_motor_model(emu: Emulator) -> None:
    control = emu.client("iotevents")
    control.create_input(**MOTOR_INPUT)
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)


def test_reset_record_forgets_the_record_and_keeps_detectors_actions_and_deduplication() -> None:
    with Emulator(clock=ManualClock()) as emu:
        create_motor_model(emu)
        put(emu, "m1", 80)  # Dangerous: the model's SNS action is logged
        before = state_of(emu)

        emu.reset_record()
        record = (emu.processed(), emu.requests(), emu.stats(), emu.unusable())
        put(emu, "m1", 80)  # within five minutes: a duplicate, skipped

        assert record == ([], [], EmulatorStats(), [])
        assert state_of(emu) == before
        assert [a.action_type for a in emu.detectors.actions()] == ["sns"]
        assert emu.stats().duplicates_ignored == 1
        assert emu.processed() == []


def test_state_keeps_detectors_but_not_the_record_or_the_action_log(tmp_path: Path) -> None:
    state = tmp_path / "endpoint.sqlite"
    clock = ManualClock()
    with Emulator(clock=clock, state_path=state) as first:
        create_motor_model(first)
        put(first, "m1", 80)
        before = state_of(first)
        logged = [a.action_type for a in first.detectors.actions()]

    with Emulator(clock=clock, state_path=state) as second:
        after = state_of(second)
        record = (second.processed(), second.requests(), second.stats(), second.unusable())
        actions = second.detectors.actions()

    assert logged == ["sns"]
    assert after == before
    assert before["stateName"] == "Dangerous"
    assert record == ([], [], EmulatorStats(), [])
    assert actions == []

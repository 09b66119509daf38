"""Detector models end to end: boto3 over HTTP to the emulator on 127.0.0.1, on a manual clock."""

from __future__ import annotations

import copy
import json
import urllib.request
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordered_sender.emulator import Emulator
from ordered_sender.emulator.detectors.examples import (
    MOTOR_DETECTOR_MODEL,
    MOTOR_INPUT,
    motor_payload,
)
from ordered_sender.emulator.detectors.routes import ACTIONS_PATH, DetectorService
from ordered_sender.testing import ManualClock

MODEL = MOTOR_DETECTOR_MODEL["detectorModelName"]


@pytest.fixture
def detectors(emu: Emulator, control: Any) -> DetectorService:
    """The detector runtime of ``emu``, whose ``PressureInput`` is the guide's input."""
    # Until Emulator installs the runtime itself (as ``emu.detectors``), the test installs it.
    installed = getattr(emu, "detectors", None)
    service = installed if isinstance(installed, DetectorService) else DetectorService.install(emu)
    emu.inputs.delete(MOTOR_INPUT["inputName"])
    control.create_input(**MOTOR_INPUT)
    return service


def send(data: Any, message_id: str, motor_id: str, pressure: int) -> list[dict[str, Any]]:
    response = data.batch_put_message(
        messages=[
            {
                "messageId": message_id,
                "inputName": "PressureInput",
                "payload": json.dumps(motor_payload(motor_id, pressure)).encode(),
            }
        ]
    )
    entries: list[dict[str, Any]] = response["BatchPutMessageErrorEntries"]
    return entries


def observed(data: Any, motor_id: str) -> tuple[str, dict[str, str]]:
    detector = data.describe_detector(detectorModelName=MODEL, keyValue=motor_id)["detector"]
    variables = {v["name"]: v["value"] for v in detector["state"]["variables"]}
    return detector["state"]["stateName"], variables


def action_log(emu: Emulator) -> list[dict[str, Any]]:
    with urllib.request.urlopen(emu.endpoint_url + ACTIONS_PATH, timeout=5) as response:
        actions: list[dict[str, Any]] = json.load(response)["actions"]
    return actions


def test_motor_example_is_dangerous_after_80_and_normal_after_three_readings_of_60(
    detectors: DetectorService, control: Any, data: Any, emu: Emulator
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)

    steps = []
    for number, pressure in enumerate([80, 60, 60, 60], start=1):
        assert send(data, f"0000{number}", "Fulton-A32", pressure) == []
        steps.append(observed(data, "Fulton-A32"))

    assert steps == [
        ("Dangerous", {"pressureThresholdBreached": "3"}),
        ("Dangerous", {"pressureThresholdBreached": "2"}),
        ("Dangerous", {"pressureThresholdBreached": "1"}),
        ("Normal", {"pressureThresholdBreached": "0"}),
    ]
    actions = action_log(emu)
    assert [(a["eventName"], a["action"]["targetArn"].rsplit(":", 1)[1]) for a in actions] == [
        ("Pressure Threshold Breached", "underPressureAction"),
        ("Normal Pressure Restored", "pressureClearedAction"),
    ]
    assert [a["messageId"] for a in actions] == ["00001", "00004"]
    first_payload = json.loads(actions[0]["payload"])["payload"]
    assert first_payload["state"]["variables"] == {"pressureThresholdBreached": 3}


def test_motor_example_under_serial_evaluation_is_normal_after_the_second_reading_of_60(
    detectors: DetectorService, control: Any, data: Any
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL, evaluationMethod="SERIAL")

    states = []
    for number, pressure in enumerate([80, 60, 60], start=1):
        send(data, f"m{number}", "Fulton-A32", pressure)
        states.append(observed(data, "Fulton-A32")[0])

    assert states == ["Dangerous", "Dangerous", "Normal"]


def test_each_key_value_gets_its_own_detector_and_list_detectors_filters_and_pages(
    detectors: DetectorService, control: Any, data: Any
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    for number, (motor_id, pressure) in enumerate([("A", 80), ("B", 10), ("C", 90)]):
        send(data, f"m{number}", motor_id, pressure)

    dangerous = data.list_detectors(detectorModelName=MODEL, stateName="Dangerous")
    first = data.list_detectors(detectorModelName=MODEL, maxResults=2)
    second = data.list_detectors(
        detectorModelName=MODEL, maxResults=2, nextToken=first["nextToken"]
    )

    assert [d["keyValue"] for d in dangerous["detectorSummaries"]] == ["A", "C"]
    assert [d["keyValue"] for d in first["detectorSummaries"]] == ["A", "B"]
    assert [d["keyValue"] for d in second["detectorSummaries"]] == ["C"]
    assert "nextToken" not in second
    assert observed(data, "B") == ("Normal", {"pressureThresholdBreached": "0"})


def test_a_model_without_key_has_one_detector_for_every_message(
    detectors: DetectorService, control: Any, data: Any
) -> None:
    unkeyed = {k: v for k, v in MOTOR_DETECTOR_MODEL.items() if k != "key"}
    control.create_detector_model(**unkeyed)

    send(data, "m1", "A", 80)
    send(data, "m2", "B", 60)

    summaries = data.list_detectors(detectorModelName=MODEL)["detectorSummaries"]
    detector = data.describe_detector(detectorModelName=MODEL)["detector"]
    assert len(summaries) == 1
    assert "keyValue" not in detector
    assert detector["state"]["variables"] == [{"name": "pressureThresholdBreached", "value": "2"}]


def test_update_detector_model_adds_a_version_and_resets_the_detectors(
    detectors: DetectorService, control: Any, data: Any
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    send(data, "m1", "Fulton-A32", 80)
    update = {k: v for k, v in MOTOR_DETECTOR_MODEL.items() if k != "key"}

    configuration = control.update_detector_model(**update)["detectorModelConfiguration"]

    assert configuration["detectorModelVersion"] == "2"
    assert configuration["key"] == "motorid"
    assert data.list_detectors(detectorModelName=MODEL)["detectorSummaries"] == []
    send(data, "m2", "Fulton-A32", 60)
    detector = data.describe_detector(detectorModelName=MODEL, keyValue="Fulton-A32")["detector"]
    assert (detector["detectorModelVersion"], detector["state"]["stateName"]) == ("2", "Normal")
    versions = control.list_detector_model_versions(detectorModelName=MODEL)
    assert [v["detectorModelVersion"] for v in versions["detectorModelVersionSummaries"]] == [
        "1",
        "2",
    ]
    described = control.describe_detector_model(detectorModelName=MODEL, detectorModelVersion="1")
    assert (
        described["detectorModel"]["detectorModelDefinition"]
        == (MOTOR_DETECTOR_MODEL["detectorModelDefinition"])
    )


def heartbeat_model() -> dict[str, Any]:
    """Online until no message arrived for 120 s, then Offline (timer ``heartbeat``)."""
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    model["detectorModelName"] = "heartbeat"
    model["detectorModelDefinition"] = {
        "initialStateName": "Online",
        "states": [
            {
                "stateName": "Online",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "arm",
                            "actions": [{"setTimer": {"timerName": "heartbeat", "seconds": 120}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "beat",
                            "condition": "currentInput('PressureInput')",
                            "actions": [{"resetTimer": {"timerName": "heartbeat"}}],
                        }
                    ],
                    "transitionEvents": [
                        {
                            "eventName": "silent",
                            "condition": "timeout('heartbeat')",
                            "nextState": "Offline",
                            "actions": [{"lambda": {"functionArn": "arn:aws:lambda:page"}}],
                        }
                    ],
                },
            },
            {
                "stateName": "Offline",
                "onInput": {
                    "transitionEvents": [
                        {
                            "eventName": "back",
                            "condition": "$input.PressureInput.sensorData.pressure > 0",
                            "nextState": "Online",
                        }
                    ]
                },
            },
        ],
    }
    return model


def test_a_timer_fires_when_the_clock_passes_it_and_describe_detector_shows_its_expiry(
    detectors: DetectorService, control: Any, data: Any, clock: ManualClock
) -> None:
    control.create_detector_model(**heartbeat_model())
    started = clock()
    send(data, "m1", "motor-1", 50)
    clock.advance(100)
    send(data, "m2", "motor-1", 50)

    before = data.describe_detector(detectorModelName="heartbeat", keyValue="motor-1")["detector"]
    clock.advance(119)
    still = data.describe_detector(detectorModelName="heartbeat", keyValue="motor-1")["detector"]
    clock.advance(1)
    assert detectors.detector("heartbeat", "motor-1").state_name == "Offline"
    after = data.describe_detector(detectorModelName="heartbeat", keyValue="motor-1")["detector"]

    [timer] = before["state"]["timers"]
    assert timer["name"] == "heartbeat"
    assert timer["timestamp"].timestamp() == started + 100 + 120
    assert still["state"]["stateName"] == "Online"
    assert after["state"] == {"stateName": "Offline", "variables": [], "timers": []}
    assert [(a.action_type, a.trigger_type) for a in detectors.actions()] == [("lambda", "Timer")]


def test_the_detector_quota_refuses_the_eleventh_message_in_one_second_as_throttling(
    detectors: DetectorService, control: Any, data: Any, clock: ManualClock
) -> None:
    detectors.registry.enforce_detector_quota = True
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)

    accepted = [send(data, f"a{n}", "A", 60) for n in range(10)]
    refused = send(data, "a10", "A", 60)
    other_motor = send(data, "b0", "B", 60)
    clock.advance(1)
    later = send(data, "a11", "A", 60)

    assert accepted == [[]] * 10
    assert [entry["errorCode"] for entry in refused] == ["ThrottlingException"]
    assert "10 messages" in refused[0]["errorMessage"]
    assert other_motor == later == []


def test_the_action_log_can_be_cleared_over_http(
    detectors: DetectorService, control: Any, data: Any, emu: Emulator
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    send(data, "m1", "A", 80)
    assert len(action_log(emu)) == 1

    request = urllib.request.Request(emu.endpoint_url + ACTIONS_PATH, method="DELETE")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 204

    assert action_log(emu) == []


def test_delete_input_is_refused_while_a_detector_model_reads_it(
    detectors: DetectorService, control: Any
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)

    with pytest.raises(ClientError) as refused:
        control.delete_input(inputName="PressureInput")
    control.delete_detector_model(detectorModelName=MODEL)
    control.delete_input(inputName="PressureInput")

    assert refused.value.response["Error"]["Code"] == "ResourceInUseException"
    assert MODEL in refused.value.response["Error"]["Message"]
    assert control.list_detector_models()["detectorModelSummaries"] == []


def error_of(call: Any, **arguments: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as raised:
        call(**arguments)
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


def with_definition_change(path: list[Any], value: Any) -> dict[str, Any]:
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    target = model["detectorModelDefinition"]
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return model


@pytest.mark.parametrize(
    ("path", "value", "where", "names"),
    [
        (["initialStateName"], "Idle", "detectorModelDefinition.initialStateName", ""),
        (
            ["states", 1, "onInput", "transitionEvents", 0, "nextState"],
            "Nowhere",
            "detectorModelDefinition.states[1].onInput.transitionEvents[0].nextState",
            "state 'Dangerous', event 'BackToNormal'",
        ),
        (
            ["states", 1, "onInput", "events", 0, "condition"],
            "$input.PressureInput.sensorData.pressure >",
            "detectorModelDefinition.states[1].onInput.events[0].condition",
            "state 'Dangerous', event 'Overpressurized'",
        ),
        (
            ["states", 0, "onInput", "transitionEvents", 0, "condition"],
            "$input.NoSuchInput.pressure > 70",
            "detectorModelDefinition.states[0].onInput.transitionEvents[0].condition",
            "state 'Normal', event 'Overpressurized'",
        ),
        (
            ["states", 0, "onEnter", "events", 0, "actions", 0, "setTimer"],
            {"timerName": "t", "seconds": 60},
            "detectorModelDefinition.states[0].onEnter.events[0].actions[0]",
            "state 'Normal', event 'init'",
        ),
        (
            ["states", 0, "onEnter", "events", 0, "actions", 0],
            {"setTimer": {"timerName": "t"}},
            "detectorModelDefinition.states[0].onEnter.events[0].actions[0].setTimer",
            "state 'Normal', event 'init'",
        ),
    ],
)
def test_a_detector_model_with_a_wrong_reference_or_expression_is_refused_saying_where(
    detectors: DetectorService, control: Any, path: list[Any], value: Any, where: str, names: str
) -> None:
    code, message = error_of(control.create_detector_model, **with_definition_change(path, value))

    assert code == "InvalidRequestException"
    assert message.startswith(f"{where} ({names}): " if names else f"{where}: ")
    assert control.list_detector_models()["detectorModelSummaries"] == []


def test_a_detector_model_breaking_the_service_model_shapes_is_refused_naming_the_member(
    detectors: DetectorService, control: Any
) -> None:
    bad_name = {**MOTOR_DETECTOR_MODEL, "detectorModelName": "motor model!"}
    bad_key = {**MOTOR_DETECTOR_MODEL, "key": "motor id?"}
    long_event = with_definition_change(
        ["states", 0, "onEnter", "events", 0, "eventName"], "e" * 129
    )

    for request, member in [
        (bad_name, "detectorModelName"),
        (bad_key, "key"),
        (long_event, "detectorModelDefinition.states.1.member.onEnter.events.1.member.eventName"),
    ]:
        code, message = error_of(control.create_detector_model, **request)
        assert code == "InvalidRequestException"
        assert f"at '{member}'" in message


def test_control_plane_errors_use_the_documented_codes(
    detectors: DetectorService, control: Any, data: Any
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)

    assert error_of(control.create_detector_model, **MOTOR_DETECTOR_MODEL)[0] == (
        "ResourceAlreadyExistsException"
    )
    assert error_of(control.describe_detector_model, detectorModelName="missing")[0] == (
        "ResourceNotFoundException"
    )
    assert error_of(control.delete_detector_model, detectorModelName="missing")[0] == (
        "ResourceNotFoundException"
    )
    assert error_of(data.describe_detector, detectorModelName=MODEL, keyValue="never-seen")[0] == (
        "ResourceNotFoundException"
    )
    assert error_of(data.list_detectors, detectorModelName="missing")[0] == (
        "ResourceNotFoundException"
    )


def test_batch_update_detector_sets_a_state_and_batch_delete_detector_removes_it(
    detectors: DetectorService, control: Any, data: Any, clock: ManualClock
) -> None:
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    send(data, "m1", "A", 80)

    def update(message_id: str, state_name: str) -> dict[str, Any]:
        return {
            "messageId": message_id,
            "detectorModelName": MODEL,
            "keyValue": "A",
            "state": {
                "stateName": state_name,
                "variables": [{"name": "pressureThresholdBreached", "value": "0"}],
                "timers": [{"name": "recheck", "seconds": 60}],
            },
        }

    updated = data.batch_update_detector(detectors=[update("u1", "Normal"), update("u2", "Idle")])
    state = data.describe_detector(detectorModelName=MODEL, keyValue="A")["detector"]["state"]
    deleted = data.batch_delete_detector(
        detectors=[
            {"messageId": "d1", "detectorModelName": MODEL, "keyValue": "A"},
            {"messageId": "d2", "detectorModelName": MODEL, "keyValue": "never-seen"},
        ]
    )

    assert [
        (e["messageId"], e["errorCode"]) for e in updated["batchUpdateDetectorErrorEntries"]
    ] == [("u2", "InvalidRequestException")]
    assert state["stateName"] == "Normal"
    assert state["variables"] == [{"name": "pressureThresholdBreached", "value": "0"}]
    assert [(t["name"], t["timestamp"].timestamp()) for t in state["timers"]] == [
        ("recheck", clock() + 60)
    ]
    assert [
        (e["messageId"], e["errorCode"]) for e in deleted["batchDeleteDetectorErrorEntries"]
    ] == [("d2", "ResourceNotFoundException")]
    assert data.list_detectors(detectorModelName=MODEL)["detectorSummaries"] == []

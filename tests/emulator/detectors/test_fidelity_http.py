"""Documented behaviours of detectors seen through boto3 over HTTP: what a message makes
available, messages detectors cannot use, timers as DescribeDetector shows them, the model
status, and the ``iotEvents`` action. Each test names the documentation it follows."""

from __future__ import annotations

import copy
import json
import math
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
from ordered_sender.testing import ManualClock

MODEL = MOTOR_DETECTOR_MODEL["detectorModelName"]
ROLE = "arn:aws:iam::123456789012:role/IoTEventsRole"


@pytest.fixture
def clock() -> ManualClock:
    """A clock off the whole second, so whole-second rendering is visible."""
    return ManualClock(start=1_700_000_000.75)


@pytest.fixture
def control(emu: Emulator) -> Any:
    """The ``iotevents`` client of ``emu``, whose ``PressureInput`` is the guide's input."""
    client = emu.client("iotevents")
    emu.inputs.delete(MOTOR_INPUT["inputName"])
    client.create_input(**MOTOR_INPUT)
    return client


def put(data: Any, message_id: str, payload: bytes, input_name: str = "PressureInput") -> Any:
    response = data.batch_put_message(
        messages=[{"messageId": message_id, "inputName": input_name, "payload": payload}]
    )
    return response["BatchPutMessageErrorEntries"]


def model_of(name: str, states: list[dict[str, Any]], key: str | None = None) -> dict[str, Any]:
    model: dict[str, Any] = {
        "detectorModelName": name,
        "roleArn": ROLE,
        "detectorModelDefinition": {"states": states, "initialStateName": states[0]["stateName"]},
    }
    if key is not None:
        model["key"] = key
    return model


def test_a_condition_reading_an_undeclared_attribute_sees_nothing(control: Any, data: Any) -> None:
    # API reference, Attribute: "Those attributes (and their paired values) specified here are
    # available for use in the condition expressions used by detectors." PressureInput declares
    # sensorData.pressure and motorid, not sensorData.temperature, which the payload holds.
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    normal = model["detectorModelDefinition"]["states"][0]
    normal["onInput"]["transitionEvents"][0]["condition"] = (
        "$input.PressureInput.sensorData.temperature > 30"
    )
    control.create_detector_model(**model)

    put(data, "m1", json.dumps(motor_payload("A32", pressure=80, temperature=39)).encode())

    detector = data.describe_detector(detectorModelName=MODEL, keyValue="A32")["detector"]
    assert detector["state"]["stateName"] == "Normal"


def test_a_message_without_the_key_is_answered_with_an_error_entry_and_not_processed(
    emu: Emulator, control: Any, data: Any
) -> None:
    # AWS IoT Core developer guide, "AWS IoT Events" rule action, Important: a payload
    # "without the Input attribute Key ... will cause the IoT rule to fail with the error
    # Failed to send message to Iot Events".
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)

    refused = put(data, "no-key", json.dumps({"sensorData": {"pressure": 80}}).encode())
    accepted = put(data, "with-key", json.dumps(motor_payload("A32", 80)).encode())

    assert [(e["messageId"], e["errorCode"]) for e in refused] == [
        ("no-key", "InvalidRequestException")
    ]
    assert "'motorid'" in refused[0]["errorMessage"]
    assert accepted == []
    assert [m.message_id for m in emu.processed("PressureInput")] == ["with-key"]


def test_a_payload_no_detector_can_read_is_in_the_endpoint_record_not_dropped_silently(
    emu: Emulator, control: Any, data: Any
) -> None:
    # BatchPutMessage takes any payload bytes (API reference, Message.payload) and AWS documents
    # nothing for a model without a key that gets a payload that is not JSON, so it is processed
    # and the endpoint's record says the detectors could not use it.
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    del model["key"]
    control.create_detector_model(**model)

    entries = put(data, "raw", b"\x00\x01 not json")
    with urllib.request.urlopen(emu.endpoint_url + "/_emulator/unusable", timeout=5) as answer:
        recorded = json.load(answer)["unusable"]

    assert entries == []
    assert [(u["messageId"], u["reason"]) for u in _camel(recorded)] == [
        ("raw", "payload_not_json")
    ]
    assert emu.stats().unusable_messages == 1


def _camel(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"messageId": r["message_id"], "reason": r["reason"]} for r in records]


def test_describe_detector_shows_timers_in_whole_seconds(
    control: Any, data: Any, clock: ManualClock
) -> None:
    # Developer guide, "Example: HVAC temperature control", DescribeDetector response: the
    # timer's "timestamp": 1557520454.0, a whole second.
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    init = model["detectorModelDefinition"]["states"][0]["onEnter"]["events"][0]
    init["actions"].append({"setTimer": {"timerName": "recheck", "seconds": 120}})
    control.create_detector_model(**model)

    put(data, "m1", json.dumps(motor_payload("A32", 60)).encode())

    state = data.describe_detector(detectorModelName=MODEL, keyValue="A32")["detector"]["state"]
    [timer] = state["timers"]
    assert timer["timestamp"].timestamp() == math.floor(clock() + 120)


def test_create_and_update_answer_activating_and_describe_shows_active(control: Any) -> None:
    # Developer guide, "Example: HVAC temperature control" and the commented example: the
    # CreateDetectorModel response shows "status": "ACTIVATING"; DescribeDetectorModel of the
    # running model shows "ACTIVE" ("Create a detector model" walkthrough).
    created = control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    updated = control.update_detector_model(
        **{k: v for k, v in MOTOR_DETECTOR_MODEL.items() if k != "key"}
    )
    described = control.describe_detector_model(detectorModelName=MODEL)

    assert created["detectorModelConfiguration"]["status"] == "ACTIVATING"
    assert updated["detectorModelConfiguration"]["status"] == "ACTIVATING"
    assert described["detectorModel"]["detectorModelConfiguration"]["status"] == "ACTIVE"


def escalating_model(payload: dict[str, str] | None) -> dict[str, Any]:
    """Sends every reading above 70 to input ``Escalations`` with the ``iotEvents`` action."""
    action: dict[str, Any] = {"inputName": "Escalations"}
    if payload is not None:
        action["payload"] = payload
    return model_of(
        "escalating",
        [
            {
                "stateName": "Watching",
                "onInput": {
                    "events": [
                        {
                            "eventName": "escalate",
                            "condition": "$input.PressureInput.sensorData.pressure > 70",
                            "actions": [{"iotEvents": action}],
                        }
                    ]
                },
            }
        ],
        key="motorid",
    )


def counting_model(condition: str) -> dict[str, Any]:
    """Counts the messages of ``Escalations`` for which ``condition`` holds, in ``seen``."""
    return model_of(
        "escalations",
        [
            {
                "stateName": "Counting",
                "onEnter": {
                    "events": [
                        {
                            "eventName": "init",
                            "actions": [{"setVariable": {"variableName": "seen", "value": "0"}}],
                        }
                    ]
                },
                "onInput": {
                    "events": [
                        {
                            "eventName": "count",
                            "condition": condition,
                            "actions": [
                                {
                                    "setVariable": {
                                        "variableName": "seen",
                                        "value": "$variable.seen + 1",
                                    }
                                }
                            ],
                        }
                    ]
                },
            }
        ],
    )


def seen(data: Any) -> str:
    detector = data.describe_detector(detectorModelName="escalations")["detector"]
    [variable] = detector["state"]["variables"]
    return str(variable["value"])


def test_the_iot_events_action_sends_its_default_payload_to_the_named_input(
    control: Any, data: Any
) -> None:
    # Developer guide, "Using AWS IoT Events to monitor your IoT devices": an iotEvents action's
    # "Information about the detector model instance and the event that initiated the action are
    # fed back into the system as an input with the name that you specify"; the default payload
    # is the one "Working with other AWS services" describes (the HVAC example's SNS messages).
    control.create_input(
        inputName="Escalations",
        inputDefinition={
            "attributes": [{"jsonPath": "payload.detector.keyValue"}, {"jsonPath": "eventName"}]
        },
    )
    control.create_detector_model(**escalating_model(None))
    control.create_detector_model(
        **counting_model(
            "$input.Escalations.eventName == 'escalate' && "
            "$input.Escalations.payload.detector.keyValue == 'A32'"
        )
    )

    put(data, "m1", json.dumps(motor_payload("A32", 80)).encode())
    put(data, "m2", json.dumps(motor_payload("A32", 60)).encode())
    put(data, "m3", json.dumps(motor_payload("A32", 75)).encode())

    assert seen(data) == "2"


def test_the_iot_events_action_sends_its_custom_payload(control: Any, data: Any) -> None:
    # API reference, IotEventsAction.payload: "You can configure the action payload when you send
    # a message to an AWS IoT Events input"; Payload.contentExpression with type JSON.
    control.create_input(
        inputName="Escalations", inputDefinition={"attributes": [{"jsonPath": "motor"}]}
    )
    content = '\'{"motor": "${$input.PressureInput.motorid}"}\''
    control.create_detector_model(
        **escalating_model({"contentExpression": content, "type": "JSON"})
    )
    control.create_detector_model(**counting_model("$input.Escalations.motor == 'A32'"))

    put(data, "m1", json.dumps(motor_payload("A32", 80)).encode())

    assert seen(data) == "1"


def test_an_iot_events_action_to_a_missing_input_is_recorded(
    emu: Emulator, control: Any, data: Any
) -> None:
    control.create_detector_model(**escalating_model(None))

    put(data, "m1", json.dumps(motor_payload("A32", 80)).encode())

    [unusable] = emu.unusable()
    assert (unusable.input_name, unusable.reason, unusable.detector_model_name) == (
        "Escalations",
        "input_missing",
        "escalating",
    )
    assert [a.action_type for a in emu.detectors.actions()] == ["iotEvents"]


def test_iot_events_actions_feeding_their_own_input_stop_after_a_hundred_messages(
    emu: Emulator, control: Any, data: Any
) -> None:
    control.create_input(
        inputName="Loop",
        inputDefinition={"attributes": [{"jsonPath": "n"}, {"jsonPath": "eventName"}]},
    )
    looping = counting_model('currentInput("Loop")')
    count = looping["detectorModelDefinition"]["states"][0]["onInput"]["events"][0]
    count["actions"].append({"iotEvents": {"inputName": "Loop"}})
    looping["detectorModelName"] = "escalations"
    control.create_detector_model(**looping)

    put(data, "m1", json.dumps({"n": 1}).encode(), input_name="Loop")

    assert seen(data) == "101"
    assert [u.reason for u in emu.unusable()] == ["chain_too_long"]


def test_batch_update_detector_with_more_than_ten_variables_is_refused_whole(
    control: Any, data: Any
) -> None:
    # Developer guide, "Example: HVAC temperature control", BatchUpdateDetector example: 13
    # variables are answered "An error occurred (InvalidRequestException) when calling the
    # BatchUpdateDetector operation: Number of variables in the detector exceeds the limit 10".
    control.create_detector_model(**MOTOR_DETECTOR_MODEL)
    put(data, "m1", json.dumps(motor_payload("A32", 60)).encode())

    def update(message_id: str, variables: int) -> dict[str, Any]:
        return {
            "messageId": message_id,
            "detectorModelName": MODEL,
            "keyValue": "A32",
            "state": {
                "stateName": "Dangerous",
                "variables": [{"name": f"v{n}", "value": "1"} for n in range(variables)],
                "timers": [],
            },
        }

    with pytest.raises(ClientError) as refused:
        data.batch_update_detector(detectors=[update("ok", 10), update("many", 13)])
    ten = data.batch_update_detector(detectors=[update("ten", 10)])

    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidRequestException"
    assert error["Message"].startswith("Number of variables in the detector exceeds the limit 10")
    assert "'many'" in error["Message"]
    assert ten["batchUpdateDetectorErrorEntries"] == []
    state = data.describe_detector(detectorModelName=MODEL, keyValue="A32")["detector"]["state"]
    assert (state["stateName"], len(state["variables"])) == ("Dangerous", 10)

"""Routing of messages and timers to detectors, without HTTP: ``DetectorRegistry`` with ``now``."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from ordered_sender.emulator.detectors.examples import MOTOR_DETECTOR_MODEL, motor_payload
from ordered_sender.emulator.detectors.registry import DetectorRegistry
from ordered_sender.emulator.recording import UnusableMessage
from ordered_sender.emulator.wire import ApiError

T0 = 1_700_000_000.0
MODEL = MOTOR_DETECTOR_MODEL["detectorModelName"]


DECLARED = {
    "PressureInput": ("motorid", "sensorData.pressure", "value", "device", "id", "wait"),
    "Other": ("value", "id"),
}
"""The attributes each input of these tests declares; detectors see only these."""


@pytest.fixture
def unusable() -> list[UnusableMessage]:
    return []


@pytest.fixture
def registry(unusable: list[UnusableMessage]) -> DetectorRegistry:
    return DetectorRegistry(input_attributes=DECLARED.get, record_unusable=unusable.append)


def send(
    registry: DetectorRegistry, payload: Any, *, at: float = T0, input_name: str = "PressureInput"
) -> None:
    registry.process(input_name, json.dumps(payload).encode(), f"m{at}", at)


def counter_model(name: str, input_name: str, key: str | None = None) -> dict[str, Any]:
    """Counts the messages of ``input_name`` that have a ``value``, in variable ``count``."""
    model: dict[str, Any] = {
        "detectorModelName": name,
        "roleArn": "arn:aws:iam::123456789012:role/IoTEventsRole",
        "detectorModelDefinition": {
            "initialStateName": "Counting",
            "states": [
                {
                    "stateName": "Counting",
                    "onEnter": {
                        "events": [
                            {
                                "eventName": "init",
                                "actions": [
                                    {"setVariable": {"variableName": "count", "value": "0"}}
                                ],
                            }
                        ]
                    },
                    "onInput": {
                        "events": [
                            {
                                "eventName": "count",
                                "condition": (
                                    f"currentInput('{input_name}')"
                                    f" && !isUndefined($input.{input_name}.value)"
                                ),
                                "actions": [
                                    {
                                        "setVariable": {
                                            "variableName": "count",
                                            "value": "$variable.count + 1",
                                        }
                                    }
                                ],
                            }
                        ]
                    },
                }
            ],
        },
    }
    if key is not None:
        model["key"] = key
    return model


def test_a_message_reaches_every_model_that_reads_its_input_and_no_other(
    registry: DetectorRegistry,
) -> None:
    registry.create_model(counter_model("first", "PressureInput"), T0)
    registry.create_model(counter_model("second", "PressureInput"), T0)
    registry.create_model(counter_model("elsewhere", "Other"), T0)

    send(registry, {"value": 1})

    assert registry.detector("first").variables["count"] == 1
    assert registry.detector("second").variables["count"] == 1
    assert registry.detectors("elsewhere") == []


def test_a_key_read_by_a_nested_and_backticked_path_routes_numbers_as_text(
    registry: DetectorRegistry,
) -> None:
    registry.create_model(counter_model("keyed", "PressureInput", key="device.`serial no`"), T0)

    send(registry, {"value": 1, "device": {"serial no": 42}})
    send(registry, {"value": 1, "device": {"serial no": 42}}, at=T0 + 1)
    send(registry, {"value": 1, "device": {"serial no": "x-1"}}, at=T0 + 2)

    assert {d.key_value: d.variables["count"] for d in registry.detectors("keyed")} == {
        "42": 2,
        "x-1": 1,
    }


def test_a_message_without_the_key_or_not_json_is_refused_before_processing(
    registry: DetectorRegistry,
) -> None:
    # AWS IoT Core developer guide, "AWS IoT Events" rule action, Important: a payload without
    # the key "will cause the IoT rule to fail with the error Failed to send message to Iot
    # Events": the message is refused (an error entry), not silently skipped.
    registry.create_model(MOTOR_DETECTOR_MODEL, T0)

    without_key = registry.admit("PressureInput", b'{"sensorData": {"pressure": 80}}', T0)
    not_json = registry.admit("PressureInput", b"not json", T0)
    with_key = registry.admit("PressureInput", json.dumps(motor_payload("A", 80)).encode(), T0)

    assert without_key is not None and not_json is not None
    assert without_key.error_code == not_json.error_code == "InvalidRequestException"
    assert "'motorid'" in without_key.message and MODEL in without_key.message
    assert "not JSON" in not_json.message
    assert with_key is None


def test_a_payload_that_is_not_json_for_a_model_without_key_is_recorded_and_logged(
    registry: DetectorRegistry, unusable: list[UnusableMessage]
) -> None:
    # Undocumented: BatchPutMessage accepts any payload bytes, so the message is processed and
    # the endpoint's record says no detector could use it.
    registry.create_model(counter_model("counter", "PressureInput"), T0)

    with capture_logs() as logs:
        registry.process("PressureInput", b"not json", "m-raw", T0)

    assert registry.detectors("counter") == []
    assert [(u.message_id, u.reason, u.detector_model_name) for u in unusable] == [
        ("m-raw", "payload_not_json", None)
    ]
    assert [log["event"] for log in logs] == ["detector.payload_not_json"]
    assert all("not json" not in str(log) for log in logs)


def test_a_key_value_describe_detector_would_refuse_creates_no_detector_and_is_recorded(
    registry: DetectorRegistry, unusable: list[UnusableMessage]
) -> None:
    # API reference (iotevents-data), DescribeDetector: keyValue matches ^[a-zA-Z0-9\-_:]+$,
    # 1 to 128 characters. A detector under another key value could never be described.
    registry.create_model(MOTOR_DETECTOR_MODEL, T0)

    send(registry, motor_payload("motor 1", 80))
    send(registry, motor_payload("m" * 129, 80), at=T0 + 1)
    send(registry, motor_payload("motor-1:a_b", 80), at=T0 + 2)

    assert [d.key_value for d in registry.detectors(MODEL)] == ["motor-1:a_b"]
    assert [(u.reason, u.detector_model_name) for u in unusable] == [
        ("key_value_invalid", MODEL),
        ("key_value_invalid", MODEL),
    ]


def test_detectors_see_only_the_attributes_their_input_declares(
    registry: DetectorRegistry, unusable: list[UnusableMessage]
) -> None:
    # API reference, Attribute: "Those attributes (and their paired values) specified here
    # are available for use in the condition expressions used by detectors."
    model = counter_model("reader", "Other")
    events = model["detectorModelDefinition"]["states"][0]["onInput"]["events"]
    events.append(
        {
            "eventName": "undeclared",
            "condition": "currentInput('Other') && isUndefined($input.Other.secret)",
            "actions": [{"setVariable": {"variableName": "hidden", "value": "true"}}],
        }
    )
    registry.create_model(model, T0)

    send(registry, {"value": 1, "secret": 7}, input_name="Other")
    partly_declared = list(unusable)
    send(registry, {"secret": 8}, input_name="Other", at=T0 + 1)

    detector = registry.detector("reader")
    assert detector.variables["hidden"] is True
    assert detector.last_payloads["Other"] == {}
    assert partly_declared == []
    assert [(u.reason, u.message_id) for u in unusable] == [("attributes_missing", f"m{T0 + 1}")]


def test_due_timers_fire_before_a_later_message_is_evaluated(registry: DetectorRegistry) -> None:
    model = copy.deepcopy(counter_model("timed", "PressureInput"))
    counting = model["detectorModelDefinition"]["states"][0]
    counting["onEnter"]["events"][0]["actions"].append(
        {"setTimer": {"timerName": "t", "seconds": 60}}
    )
    counting["onInput"]["events"].append(
        {
            "eventName": "expired",
            "condition": "timeout('t')",
            "actions": [
                {"setVariable": {"variableName": "count_at_expiry", "value": "$variable.count"}}
            ],
        }
    )
    registry.create_model(model, T0)

    send(registry, {"value": 1}, at=T0)
    send(registry, {"value": 2}, at=T0 + 61)

    detector = registry.detector("timed")
    assert detector.variables == {"count": 2, "count_at_expiry": 1}


def test_tick_fires_the_timers_of_all_detectors_earliest_first(registry: DetectorRegistry) -> None:
    model = counter_model("timed", "PressureInput", key="id")
    state = model["detectorModelDefinition"]["states"][0]
    state["onEnter"]["events"][0]["actions"].append(
        {"setTimer": {"timerName": "t", "durationExpression": "$input.PressureInput.wait"}}
    )
    state["onInput"]["events"].append(
        {
            "eventName": "expired",
            "condition": "triggerType('Timer')",
            "actions": [{"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:expired"}}],
        }
    )
    registry.create_model(model, T0)
    send(registry, {"value": 1, "id": "slow", "wait": 90})
    send(registry, {"value": 1, "id": "fast", "wait": 60})

    assert registry.tick(T0 + 59) == 0
    assert registry.tick(T0 + 90) == 2

    assert [(a.key_value, a.time) for a in registry.actions()] == [
        ("fast", T0 + 60),
        ("slow", T0 + 90),
    ]


def test_deleting_a_model_deletes_its_detectors(registry: DetectorRegistry) -> None:
    registry.create_model(MOTOR_DETECTOR_MODEL, T0)
    send(registry, motor_payload("A", 80))

    registry.delete_model(MODEL)
    registry.create_model(MOTOR_DETECTOR_MODEL, T0 + 1)

    assert registry.detectors(MODEL) == []
    with pytest.raises(ApiError) as missing:
        registry.detector(MODEL, "A")
    assert missing.value.code == "ResourceNotFoundException"


def test_an_eleventh_model_reading_one_input_exceeds_the_quota(registry: DetectorRegistry) -> None:
    for number in range(10):
        registry.create_model(counter_model(f"model{number}", "PressureInput"), T0)

    with pytest.raises(ApiError) as refused:
        registry.create_model(counter_model("model10", "PressureInput"), T0)
    registry.update_model(counter_model("model9", "PressureInput"), T0 + 1)

    assert (refused.value.status, refused.value.code) == (410, "LimitExceededException")
    assert "'PressureInput'" in refused.value.message


def test_the_detector_quota_is_off_by_default_and_counts_one_second_per_detector_when_on(
    registry: DetectorRegistry,
) -> None:
    registry.create_model(MOTOR_DETECTOR_MODEL, T0)
    payload = json.dumps(motor_payload("A", 60)).encode()
    for number in range(10):
        registry.process("PressureInput", payload, f"m{number}", T0 + number / 100)

    off = registry.admit("PressureInput", payload, T0 + 0.5)
    registry.enforce_detector_quota = True
    on = registry.admit("PressureInput", payload, T0 + 0.5)
    other_motor = registry.admit("PressureInput", json.dumps(motor_payload("B", 60)).encode(), T0)
    a_second_after_the_first = registry.admit("PressureInput", payload, T0 + 1.0)

    assert off is None
    assert on is not None
    assert on.error_code == "ThrottlingException"
    assert f"{MODEL!r} with key value 'A'" in on.message
    assert other_motor is None
    assert a_second_after_the_first is None


def test_a_model_reading_two_inputs_gets_the_messages_of_both_in_one_detector(
    registry: DetectorRegistry,
) -> None:
    model = counter_model("both", "PressureInput", key="id")
    events = model["detectorModelDefinition"]["states"][0]["onInput"]["events"]
    other = copy.deepcopy(events[0])
    other["condition"] = "currentInput('Other') && !isUndefined($input.Other.value)"
    events.append(other)
    registry.create_model(model, T0)

    send(registry, {"id": "A", "value": 1}, at=T0)
    send(registry, {"id": "A", "value": 2}, at=T0 + 1, input_name="Other")
    send(registry, {"id": "B", "value": 3}, at=T0 + 2, input_name="Other")

    assert {d.key_value: d.variables["count"] for d in registry.detectors("both")} == {
        "A": 2,
        "B": 1,
    }


def test_a_model_reading_an_undeclared_attribute_is_stored_with_a_warning_naming_the_place(
    registry: DetectorRegistry,
) -> None:
    # API reference, Attribute: only declared attributes are available to conditions, so such
    # a reference is always undefined; AWS documents no refusal for it, so it is a warning.
    model = counter_model("reader", "Other")
    events = model["detectorModelDefinition"]["states"][0]["onInput"]["events"]
    events[0]["condition"] = (
        "currentInput('Other') && $input.Other.secret > 0 && $input.Other.value > 0"
    )
    events.append(
        {
            "eventName": "covered",
            "condition": "$input.PressureInput.device.serial > 0",
            "actions": [],
        }
    )

    with capture_logs() as logs:
        registry.create_model(model, T0)

    warnings = [log for log in logs if log["event"] == "detector_model.undeclared_attribute"]
    assert [(w["reference"], w["location"], w["names"]) for w in warnings] == [
        (
            "$input.Other.secret",
            "detectorModelDefinition.states[0].onInput.events[0]",
            "state 'Counting', event 'count'",
        )
    ]
    assert registry.model("reader").version == "1"

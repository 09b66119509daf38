"""CreateDetectorModel refuses what AWS's detector model analysis reports as a publish-blocking
error, naming the place; boto3 over HTTP to the emulator.

Source for every case: developer guide, "Detector model analysis and diagnostic information"
("Troubleshoot detector model errors"): "An error result ... AWS IoT Events automatically performs
this set of analyses when you try to publish the detector model. You must fix all errors before
you can publish the detector model." Each case names its section (analysis type) and message.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from ordered_sender.emulator import Emulator
from ordered_sender.emulator.detectors.examples import MOTOR_DETECTOR_MODEL, MOTOR_INPUT

Model = dict[str, Any]
Change = Callable[[Model], None]


@pytest.fixture
def control(emu: Emulator) -> Any:
    """The ``iotevents`` client of ``emu``, whose ``PressureInput`` is the guide's input."""
    client = emu.client("iotevents")
    emu.inputs.delete(MOTOR_INPUT["inputName"])
    client.create_input(**MOTOR_INPUT)
    return client


def states(model: Model) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = model["detectorModelDefinition"]["states"]
    return found


def normal_transition(model: Model) -> dict[str, Any]:
    event: dict[str, Any] = states(model)[0]["onInput"]["transitionEvents"][0]
    return event


def init_actions(model: Model) -> list[dict[str, Any]]:
    actions: list[dict[str, Any]] = states(model)[0]["onEnter"]["events"][0]["actions"]
    return actions


def many_states(model: Model) -> None:
    for number in range(19):
        states(model).append({"stateName": f"Extra{number}"})


def many_events(model: Model) -> None:
    states(model)[0]["onEnter"]["events"].extend(
        {"eventName": f"extra{number}", "condition": "true", "actions": []} for number in range(20)
    )


def many_transitions(model: Model) -> None:
    states(model)[0]["onInput"]["transitionEvents"].extend(
        {**normal_transition(model), "eventName": f"extra{number}"} for number in range(20)
    )


def many_actions(model: Model) -> None:
    init_actions(model).extend(
        {"setVariable": {"variableName": f"v{number}", "value": "1"}} for number in range(10)
    )


def long_content(model: Model) -> None:
    content = "'" + "x" * 1023 + "'"
    init_actions(model).append(
        {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "payload": {
            "contentExpression": content, "type": "STRING"}}}
    )  # fmt: skip


def json_number_payload(model: Model) -> None:
    init_actions(model).append(
        {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:t", "payload": {
            "contentExpression": "$variable.pressureThresholdBreached + 1", "type": "JSON"}}}
    )  # fmt: skip


def variable_never_set(model: Model) -> None:
    normal_transition(model)["condition"] += " && $variable.calibrated"


def timer_never_set(model: Model) -> None:
    normal_transition(model)["condition"] += ' || timeout("cooldown")'


def short_timer(model: Model) -> None:
    init_actions(model).append({"setTimer": {"timerName": "recheck", "seconds": 59}})


def short_timer_expression(model: Model) -> None:
    init_actions(model).append({"setTimer": {"timerName": "recheck", "durationExpression": "30"}})


def no_input_in_any_condition(model: Model) -> None:
    for state in states(model):
        for event in state.get("onInput", {}).get("events", []):
            event["condition"] = "true"
        for event in state.get("onInput", {}).get("transitionEvents", []):
            event["condition"] = "$variable.pressureThresholdBreached > 1"


@pytest.mark.parametrize(
    ("change", "where", "names", "says"),
    [
        # service-limits: "Number of states allowed in detector model definition exceeded the
        # limit" (up to 20 states).
        (many_states, "detectorModelDefinition.states", "", "21 states; at most 20"),
        # service-limits: "Number of events allowed per state exceeded the limit" (up to 20
        # events for each state; counted over onEnter, onInput and onExit).
        (
            many_events,
            "detectorModelDefinition.states[0]",
            "state 'Normal'",
            "21 events (onEnter, onInput and onExit together); at most 20",
        ),
        # service-limits: "Number of transition events allowed per state exceeded the limit".
        (
            many_transitions,
            "detectorModelDefinition.states[0].onInput.transitionEvents",
            "state 'Normal'",
            "21 transition events; at most 20",
        ),
        # service-limits: "Number of actions allowed per event exceeded the limit" (up to 10).
        (
            many_actions,
            "detectorModelDefinition.states[0].onEnter.events[0].actions",
            "state 'Normal', event 'init'",
            "11 actions; at most 10",
        ),
        # service-limits: "Content Expression allowed in payload exceeded the limit" (1024 bytes).
        (
            long_content,
            "detectorModelDefinition.states[0].onEnter.events[0].actions[1].sns.payload"
            ".contentExpression",
            "state 'Normal', event 'init'",
            "1025 bytes; at most 1024",
        ),
        # expression-syntax / data-type: "The defined payload type is JSON, so you must specify
        # an expression that AWS IoT Events would evaluate to a string."
        (
            json_number_payload,
            "detectorModelDefinition.states[0].onEnter.events[0].actions[1].sns.payload"
            ".contentExpression",
            "state 'Normal', event 'init'",
            "must evaluate to a string",
        ),
        # referenced-data: "Detected broken Variable: variable ... is used in an expression but
        # is never set."
        (
            variable_never_set,
            "detectorModelDefinition.states[0].onInput.transitionEvents[0]",
            "state 'Normal', event 'Overpressurized'",
            "variable 'calibrated' is used in",
        ),
        # referenced-data: "Detected broken Timer: timer ... is used in an expression but is
        # never set."
        (
            timer_never_set,
            "detectorModelDefinition.states[0].onInput.transitionEvents[0]",
            "state 'Normal', event 'Overpressurized'",
            "timer 'cooldown' is used in",
        ),
        # service-limits: "The duration for timer ... should be at least ... seconds long"
        # (60 seconds; API reference, SetTimerAction: "The minimum value is 60 seconds").
        (
            short_timer,
            "detectorModelDefinition.states[0].onEnter.events[0].actions[1].setTimer.seconds",
            "state 'Normal', event 'init'",
            "is 59 seconds; it must be at least 60",
        ),
        (
            short_timer_expression,
            "detectorModelDefinition.states[0].onEnter.events[0].actions[1].setTimer"
            ".durationExpression",
            "state 'Normal', event 'init'",
            "is 30 seconds; it must be at least 60",
        ),
        # structure: "Detector Model Definition must use at least one Input in a condition."
        (
            no_input_in_any_condition,
            "detectorModelDefinition.states",
            "",
            "no condition uses an input",
        ),
    ],
)
def test_a_publish_blocking_analysis_error_is_refused_naming_the_place(
    control: Any, change: Change, where: str, names: str, says: str
) -> None:
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    change(model)

    with pytest.raises(ClientError) as refused:
        control.create_detector_model(**model)
    with pytest.raises(ClientError) as refused_update:
        control.create_detector_model(**MOTOR_DETECTOR_MODEL)
        control.update_detector_model(**{k: v for k, v in model.items() if k != "key"})

    for error in (refused.value, refused_update.value):
        assert error.response["Error"]["Code"] == "InvalidRequestException"
        message = error.response["Error"]["Message"]
        assert message.startswith(f"{where} ({names}): " if names else f"{where}: ")
        assert says in message
    described = control.describe_detector_model(detectorModelName="motorDetectorModel")
    assert described["detectorModel"]["detectorModelConfiguration"]["detectorModelVersion"] == "1"


def test_the_limits_themselves_are_accepted(control: Any) -> None:
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    for number in range(18):
        states(model).append({"stateName": f"Extra{number}"})
    states(model)[0]["onEnter"]["events"].extend(
        {"eventName": f"extra{number}", "actions": []} for number in range(19)
    )
    init_actions(model).extend(
        {"setVariable": {"variableName": f"v{number}", "value": "1"}} for number in range(9)
    )
    init_actions(model)[-1] = {"setTimer": {"timerName": "recheck", "seconds": 60}}

    configuration = control.create_detector_model(**model)["detectorModelConfiguration"]

    assert configuration["detectorModelName"] == "motorDetectorModel"


def test_a_model_reading_an_input_only_through_current_input_receives_its_messages(
    emu: Emulator, control: Any
) -> None:
    # Developer guide, "Expressions" > Functions > currentInput("input"): "Evaluates to true if
    # the event condition in which it appears is being evaluated because the specified input
    # message was received." A model naming an input only there must receive its messages.
    control.create_input(inputName="Ping", inputDefinition={"attributes": [{"jsonPath": "n"}]})
    model = copy.deepcopy(MOTOR_DETECTOR_MODEL)
    model["detectorModelName"] = "pinged"
    del model["key"]
    states(model)[0]["onInput"]["events"] = [
        {
            "eventName": "ping",
            "condition": 'currentInput("Ping")',
            "actions": [{"setVariable": {"variableName": "pings", "value": "1"}}],
        }
    ]
    control.create_detector_model(**model)
    data = emu.client("iotevents-data")

    data.batch_put_message(
        messages=[{"messageId": "p1", "inputName": "Ping", "payload": json.dumps({}).encode()}]
    )

    detector = data.describe_detector(detectorModelName="pinged")["detector"]
    assert {"name": "pings", "value": "1"} in detector["state"]["variables"]

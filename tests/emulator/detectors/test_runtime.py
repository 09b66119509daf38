"""Golden tests of detector evaluation: one per documented rule of the IoT Events runtime.

They call the pure functions of ``detector_runtime`` with the time passed in; nothing waits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from structlog.testing import capture_logs

from ordered_sender.emulator.detectors.models import EvaluationMethod, compile_definition
from ordered_sender.emulator.detectors.runtime import evaluate, expire_timer, start_detector
from ordered_sender.emulator.detectors.state import (
    Detector,
    RunnableModel,
    Trigger,
    variable_text,
    variable_value,
)
from ordered_sender.emulator.expressions import TriggerType, VariableValue

INPUT = "In"
T0 = 1_700_000_000.0


def runnable(*states: dict[str, Any], method: str = "BATCH") -> RunnableModel:
    definition = {"states": list(states), "initialStateName": states[0]["stateName"]}
    compiled = compile_definition(definition, lambda name: True)
    return RunnableModel("model", "1", compiled, EvaluationMethod(method))


def state(name: str, **lifecycles: Any) -> dict[str, Any]:
    """``state("A", on_enter=[...], on_input=[...], transitions=[...], on_exit=[...])``."""
    document: dict[str, Any] = {"stateName": name}
    for lifecycle, key in (("on_enter", "onEnter"), ("on_exit", "onExit")):
        if lifecycle in lifecycles:
            document[key] = {"events": lifecycles[lifecycle]}
    on_input = {}
    if "on_input" in lifecycles:
        on_input["events"] = lifecycles["on_input"]
    if "transitions" in lifecycles:
        on_input["transitionEvents"] = lifecycles["transitions"]
    if on_input:
        document["onInput"] = on_input
    return document


def event(name: str, condition: str | None, *actions: dict[str, Any]) -> dict[str, Any]:
    document: dict[str, Any] = {"eventName": name, "actions": list(actions)}
    if condition is not None:
        document["condition"] = condition
    return document


def transition(
    name: str, condition: str, next_state: str, *actions: dict[str, Any]
) -> dict[str, Any]:
    return {
        "eventName": name,
        "condition": condition,
        "nextState": next_state,
        "actions": list(actions),
    }


def set_variable(name: str, value: str) -> dict[str, Any]:
    return {"setVariable": {"variableName": name, "value": value}}


def one_event(*actions: dict[str, Any]) -> RunnableModel:
    """A one-state model whose single onInput event, named ``e``, runs ``actions``."""
    return runnable(state("A", on_input=[event("e", None, *actions)]))


def append(word: str) -> dict[str, Any]:
    """An action that appends ``word`` to the ``trace`` variable, to observe ordering."""
    return set_variable("trace", f"$variable.trace + ',{word}'")


def message(
    payload: dict[str, Any] | None = None, *, at: float = T0, message_id: str = "m1"
) -> Trigger:
    return Trigger(TriggerType.MESSAGE, at, INPUT, message_id, payload or {})


def run(model: RunnableModel, *triggers: Trigger) -> Detector:
    """A detector created by the first trigger and evaluated with the others."""
    detector, _ = start_detector(model, None, triggers[0])
    for trigger in triggers[1:]:
        detector, _ = evaluate(model, detector, trigger)
    return detector


def trace_start() -> dict[str, Any]:
    return event("start", None, set_variable("trace", "'start'"))


def test_a_new_detector_runs_on_enter_of_the_initial_state_before_evaluating_its_message() -> None:
    model = runnable(
        state("A", on_enter=[trace_start()], on_input=[event("i", None, append("input"))])
    )

    detector = run(model, message())

    assert detector.state_name == "A"
    assert detector.variables["trace"] == "start,input"


def test_a_transition_runs_on_input_events_its_actions_on_exit_then_on_enter_in_that_order() -> (
    None
):
    # Developer guide, "Example: HVAC temperature control": the Amazon SNS messages of the
    # onExit event resetHeatCool (state "start") carry the variables that only the transition
    # "initialize" sets, so the transition's actions run before onExit (see the runtime's
    # module docstring; the guide states no order in prose).
    model = runnable(
        state(
            "A",
            on_enter=[trace_start()],
            on_input=[event("i", None, append("input"))],
            transitions=[transition("go", "true", "B", append("transition"))],
            on_exit=[event("x", None, append("exit"))],
        ),
        state("B", on_enter=[event("e", None, append("enter"))]),
    )

    detector = run(model, message())

    assert detector.state_name == "B"
    assert detector.variables["trace"] == "start,input,transition,exit,enter"


def test_a_transition_to_the_same_state_exits_and_enters_it_again() -> None:
    model = runnable(
        state(
            "A",
            on_enter=[
                event("first", "isUndefined($variable.entered)", set_variable("entered", "0")),
                event(
                    "e",
                    "!isUndefined($variable.entered)",
                    set_variable("entered", "$variable.entered + 1"),
                ),
            ],
            transitions=[transition("again", "true", "A")],
        ),
    )

    detector = run(model, message(), message(message_id="m2"))

    assert detector.variables["entered"] == 2


def test_the_first_transition_whose_condition_holds_wins() -> None:
    model = runnable(
        state(
            "A",
            transitions=[
                transition("never", "false", "B"),
                transition("first", "true", "C"),
                transition("second", "true", "B"),
            ],
        ),
        state("B"),
        state("C"),
    )

    assert run(model, message()).state_name == "C"


def test_an_event_without_condition_fires() -> None:
    model = one_event(set_variable("fired", "true"))

    assert run(model, message()).variables["fired"] is True


@pytest.mark.parametrize(
    "condition",
    [
        "1",
        "'true'",
        "$variable.undefined > 1",
        "$input.In.missing == 3",
        "convert(Decimal, 'x') > 1",
    ],
)
def test_a_condition_that_is_not_a_boolean_or_has_no_valid_value_counts_as_false(
    condition: str,
) -> None:
    model = runnable(
        state(
            "A",
            on_input=[event("maybe", condition, set_variable("fired", "true"))],
            transitions=[transition("maybe", condition, "B")],
        ),
        state("B"),
    )

    detector = run(model, message())

    assert "fired" not in detector.variables
    assert detector.state_name == "A"


def counting_model(method: str) -> RunnableModel:
    """``x`` goes 0 -> 1 on input; a later event and a transition test whether they saw 1."""
    return runnable(
        state(
            "A",
            on_enter=[event("init", None, set_variable("x", "0"))],
            on_input=[
                event("increment", None, set_variable("x", "$variable.x + 1")),
                event("saw", "$variable.x == 1", set_variable("later_event_saw_update", "true")),
            ],
            transitions=[transition("to B", "$variable.x == 1", "B")],
        ),
        state("B"),
        method=method,
    )


def test_batch_conditions_see_variables_as_the_message_found_them() -> None:
    detector = run(counting_model("BATCH"), message())

    assert detector.variables["x"] == 1
    assert "later_event_saw_update" not in detector.variables
    assert detector.state_name == "A"


def test_serial_conditions_see_the_updates_of_earlier_events_and_transitions_see_on_input() -> None:
    detector = run(counting_model("SERIAL"), message())

    assert detector.variables["x"] == 1
    assert detector.variables["later_event_saw_update"] is True
    assert detector.state_name == "B"


def test_batch_runs_the_actions_of_fired_events_in_definition_order() -> None:
    model = runnable(
        state(
            "A",
            on_enter=[trace_start()],
            on_input=[
                event("one", None, append("one")),
                event("two", "$variable.trace == 'start'", append("two")),
            ],
        )
    )

    assert run(model, message()).variables["trace"] == "start,one,two"


def test_batch_on_enter_conditions_see_the_transition_actions() -> None:
    model = runnable(
        state("A", transitions=[transition("go", "true", "B", set_variable("level", "3"))]),
        state(
            "B", on_enter=[event("alarm", "$variable.level > 1", set_variable("alarmed", "true"))]
        ),
    )

    assert run(model, message()).variables["alarmed"] is True


def test_an_action_without_a_valid_value_is_skipped_and_the_next_action_still_runs() -> None:
    model = one_event(
        set_variable("broken", "$variable.undefined + 1"), set_variable("after", "'ran'")
    )

    with capture_logs() as logs:
        detector = run(model, message())

    assert "broken" not in detector.variables
    assert detector.variables["after"] == "ran"
    assert any(log["event"] == "detector.expression_failed" for log in logs)


def test_set_variable_stores_the_evaluated_value_with_its_type() -> None:
    model = one_event(
        set_variable("pressure", "$input.In.sensor.pressure"),
        set_variable("half", "$input.In.sensor.pressure / 2.0"),
        set_variable("name", "'motor-' + $input.In.id"),
        set_variable("high", "$input.In.sensor.pressure > 70"),
    )

    detector = run(model, message({"id": "7", "sensor": {"pressure": 81}}))

    assert detector.variables == {"pressure": 81, "half": 40.5, "name": "motor-7", "high": True}


def set_timer(name: str, seconds: int | None = None, duration: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"timerName": name}
    if seconds is not None:
        body["seconds"] = seconds
    if duration is not None:
        body["durationExpression"] = duration
    return {"setTimer": body}


def timer_model(*actions_on_input: dict[str, Any]) -> RunnableModel:
    """State Waiting runs the given actions per message and moves to TimedOut on timeout("t")."""
    return runnable(
        state(
            "Waiting",
            on_input=[event("act", "currentInput('In')", *actions_on_input)],
            transitions=[
                transition(
                    "expired",
                    "timeout('t') && triggerType('Timer')",
                    "TimedOut",
                    set_variable("expired_at_trigger", "triggerType('Timer')"),
                )
            ],
        ),
        state("TimedOut"),
    )


def test_set_timer_expires_after_its_seconds_and_evaluates_the_detector_with_a_timer_trigger() -> (
    None
):
    model = timer_model(set_timer("t", seconds=60))
    detector = run(model, message(at=T0))

    timer = detector.next_expiry()
    assert timer is not None
    assert (timer.name, timer.expires_at) == ("t", T0 + 60)

    detector, _ = expire_timer(model, detector, "t", T0 + 60)

    assert detector.state_name == "TimedOut"
    assert detector.variables["expired_at_trigger"] is True
    assert detector.timers == {}


def test_a_duration_expression_is_evaluated_and_rounded_down_to_whole_seconds() -> None:
    model = timer_model(set_timer("t", duration="$input.In.wait"))

    detector = run(model, message({"wait": 60.99}, at=T0))

    assert detector.timers["t"].expires_at == T0 + 60


@pytest.mark.parametrize(
    "duration", ["'sixty'", "0", "59", "$input.In.short", "31622401", "$variable.undefined"]
)
def test_a_timer_whose_duration_is_not_valid_is_not_set(duration: str) -> None:
    # API reference, SetTimerAction: "The minimum value is 60 seconds ... The maximum value is
    # 31622400 seconds"; troubleshooting, "Amazon CloudWatch Logs action.setTimer errors": an
    # evaluated duration "less than 60" fails to set the timer. ($input.In.short is 59.9.)
    model = timer_model(set_timer("t", duration=duration))

    with capture_logs():
        detector = run(model, message({"short": 59.9}))

    assert detector.timers == {}


def test_reset_timer_restarts_it_with_its_last_duration() -> None:
    model = runnable(
        state(
            "A",
            on_input=[
                event("start", "$input.In.command == 'start'", set_timer("t", seconds=60)),
                event("reset", "$input.In.command == 'reset'", {"resetTimer": {"timerName": "t"}}),
            ],
        )
    )

    detector = run(
        model, message({"command": "start"}, at=T0), message({"command": "reset"}, at=T0 + 30)
    )

    assert detector.timers["t"].expires_at == T0 + 90


def test_clear_timer_deletes_it() -> None:
    model = runnable(
        state(
            "A",
            on_input=[
                event("start", "$input.In.command == 'start'", set_timer("t", seconds=60)),
                event("clear", "$input.In.command == 'clear'", {"clearTimer": {"timerName": "t"}}),
            ],
        )
    )

    detector = run(model, message({"command": "start"}), message({"command": "clear"}))

    assert detector.timers == {}


def test_a_detector_holds_at_most_five_timers() -> None:
    model = runnable(
        state(
            "A", on_input=[event("many", None, *(set_timer(f"t{n}", seconds=60) for n in range(6)))]
        )
    )

    with capture_logs() as logs:
        detector = run(model, message())

    assert sorted(detector.timers) == ["t0", "t1", "t2", "t3", "t4"]
    assert [log["timer"] for log in logs if log["event"] == "detector.timer_not_set"] == ["t5"]


def test_timeout_is_true_only_the_first_time_it_is_checked_after_expiry() -> None:
    model = runnable(
        state(
            "A",
            on_enter=[event("init", None, set_variable("seen", "0"), set_timer("t", seconds=60))],
            on_input=[event("count", "timeout('t')", set_variable("seen", "$variable.seen + 1"))],
        )
    )
    detector = run(model, message(at=T0))

    detector, _ = expire_timer(model, detector, "t", T0 + 60)
    detector, _ = evaluate(model, detector, message(at=T0 + 61, message_id="m2"))

    assert detector.variables["seen"] == 1


def test_timeout_behind_a_false_and_is_not_checked_so_the_next_message_sees_the_expiry() -> None:
    # Developer guide, "Detector model analysis and diagnostic information", structure: "An
    # expiring timer can cause an unexpected amount of messages to be sent" recommends
    # triggerType("MESSAGE") && timeout("awake"); "Expressions" > Functions: timeout() "returns
    # true only the first time it's checked following the actual timer expiration". On the
    # timer's own evaluation && stops at triggerType, so timeout() is not checked there.
    model = runnable(
        state(
            "A",
            on_enter=[event("init", None, set_variable("woke", "0"), set_timer("awake", 60))],
            on_input=[
                event(
                    "wake",
                    'triggerType("MESSAGE") && timeout("awake")',
                    set_variable("woke", "$variable.woke + 1"),
                )
            ],
        )
    )
    detector = run(model, message(at=T0))

    detector, _ = expire_timer(model, detector, "awake", T0 + 60)
    on_expiry = detector.variables["woke"]
    detector, _ = evaluate(model, detector, message(at=T0 + 61, message_id="m2"))
    on_next_message = detector.variables["woke"]
    detector, _ = evaluate(model, detector, message(at=T0 + 62, message_id="m3"))

    assert (on_expiry, on_next_message, detector.variables["woke"]) == (0, 1, 1)


def test_timeout_checked_first_in_another_state_after_expiry_is_true_there() -> None:
    model = runnable(
        state(
            "Setting",
            on_enter=[event("init", None, set_timer("t", seconds=60))],
            transitions=[transition("move", "triggerType('Message')", "Checking")],
        ),
        state(
            "Checking",
            on_enter=[event("init", None, set_variable("seen", "0"))],
            on_input=[event("count", "timeout('t')", set_variable("seen", "$variable.seen + 1"))],
        ),
    )
    detector, _ = start_detector(model, None, Trigger(TriggerType.TIMER, T0))
    detector, _ = expire_timer(model, detector, "t", T0 + 60)
    assert detector.state_name == "Setting"

    for minute in (2, 3, 4):
        detector, _ = evaluate(
            model, detector, message(at=T0 + 60 * minute, message_id=f"m{minute}")
        )

    assert detector.state_name == "Checking"
    assert detector.variables["seen"] == 1


def sns(payload: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}
    if payload is not None:
        body["payload"] = {"contentExpression": payload, "type": "STRING"}
    return {"sns": body}


def test_actions_for_other_services_are_recorded_with_their_evaluated_payload() -> None:
    model = one_event(
        sns("'pressure ${$input.In.pressure} on ' + $input.In.id"),
        {"iotTopicPublish": {"mqttTopic": "motors/alerts"}},
    )

    _, records = start_detector(model, None, message({"id": "A32", "pressure": 81}))

    assert [(r.action_type, r.event_name, r.state_name) for r in records] == [
        ("sns", "e", "A"),
        ("iotTopicPublish", "e", "A"),
    ]
    assert records[0].payload == "pressure 81 on A32"
    assert records[0].parameters["targetArn"] == "arn:aws:sns:us-east-1:123456789012:alerts"
    assert (records[0].input_name, records[0].message_id) == (INPUT, "m1")


def test_an_action_without_payload_records_the_default_iot_events_payload() -> None:
    model = one_event(set_variable("level", "3"), sns())

    _, records = start_detector(model, "motor-1", message(at=T0, message_id="00001"))

    payload = json.loads(records[0].payload)
    assert payload["eventName"] == "e"
    assert payload["eventTime"] == int(T0 * 1000)
    assert payload["payload"]["detector"] == {
        "detectorModelName": "model",
        "detectorModelVersion": "1",
        "keyValue": "motor-1",
    }
    assert payload["payload"]["eventTriggerDetails"] == {
        "inputName": INPUT,
        "messageId": "00001",
        "triggerType": "Message",
    }
    assert payload["payload"]["state"] == {
        "stateName": "A",
        "variables": {"level": 3},
        "timers": {},
    }


def test_an_action_whose_payload_has_no_valid_value_is_not_recorded() -> None:
    model = one_event(sns("$variable.undefined"))

    with capture_logs():
        _, records = start_detector(model, None, message())

    assert records == ()


def test_a_detector_remembers_the_last_payload_of_another_input_for_timer_evaluations() -> None:
    model = runnable(
        state(
            "A",
            on_input=[
                event("arm", "currentInput('In')", set_timer("t", seconds=60)),
                event("copy", "triggerType('Timer')", set_variable("last", "$input.In.value")),
            ],
        )
    )
    detector = run(model, message({"value": 5}, at=T0))

    detector, _ = expire_timer(model, detector, "t", T0 + 60)

    assert detector.variables["last"] == 5


def test_on_exit_sends_the_variables_the_transition_set_in_the_old_state() -> None:
    # Developer guide, "Example: HVAC temperature control": state "start" has the transition
    # "initialize" (setVariable rangeHigh from seedTemperatureInput, nextState idle) and the
    # onExit event resetHeatCool (sns, default payload); its SNS message shows stateName
    # "start" and variables holding rangeHigh 30.0 and sensorCount 10.
    model = runnable(
        state(
            "start",
            on_enter=[event("prepare", None, set_variable("sensorId", "0"))],
            transitions=[
                transition(
                    "initialize",
                    "$input.In.sensorCount > 0",
                    "idle",
                    set_variable("rangeHigh", "$input.In.rangeHigh"),
                    set_variable("sensorCount", "$input.In.sensorCount"),
                )
            ],
            on_exit=[event("resetHeatCool", "true", sns())],
        ),
        state("idle"),
    )

    _, records = start_detector(
        model, "Area51", message({"sensorCount": 10, "rangeHigh": 30.0}, message_id="00001")
    )

    [record] = records
    payload = json.loads(record.payload)
    assert (record.event_name, record.state_name) == ("resetHeatCool", "start")
    assert payload["payload"]["state"]["stateName"] == "start"
    assert payload["payload"]["state"]["variables"] == {
        "sensorId": 0,
        "rangeHigh": 30.0,
        "sensorCount": 10,
    }


def test_an_mqtt_topic_template_is_recorded_evaluated() -> None:
    # API reference, IotTopicPublishAction.mqttTopic: "You can use a string expression that
    # includes variables ($variable.<variable-name>) and input values
    # ($input.<input-name>.<path-to-datum>) as the topic string"; the HVAC example's plain
    # topics ("hvac/Heating/Off") are text, so substitutions are written ${...}.
    model = one_event(
        set_variable("area", "'Area51'"),
        {"iotTopicPublish": {"mqttTopic": "hvac/${$variable.area}/${$input.In.id}/it's"}},
    )

    _, records = start_detector(model, None, message({"id": "7"}))

    assert records[0].parameters["mqttTopic"] == "hvac/Area51/7/it's"


@pytest.mark.parametrize(
    "action",
    [
        {"sns": {"targetArn": "arn:aws:sns:us-east-1:123456789012:alerts"}},
        {"iotTopicPublish": {"mqttTopic": "motors/alerts"}},
        {"lambda": {"functionArn": "arn:aws:lambda:us-east-1:123456789012:function:page"}},
        {"iotEvents": {"inputName": "Escalations"}},
        {"sqs": {"queueUrl": "https://sqs.us-east-1.amazonaws.com/123456789012/q"}},
        {"firehose": {"deliveryStreamName": "motors", "separator": "\n"}},
        {"dynamoDB": {"hashKeyField": "id", "hashKeyValue": "'A32'", "tableName": "motors"}},
        {"dynamoDBv2": {"tableName": "motors"}},
    ],
)
def test_every_action_for_another_service_is_recorded_by_the_runtime(
    action: dict[str, Any],
) -> None:
    [(action_type, parameters)] = action.items()
    configured = {
        action_type: {**parameters, "payload": {"contentExpression": "'hi'", "type": "STRING"}}
    }

    _, records = start_detector(one_event(configured), None, message())

    [record] = records
    assert (record.action_type, record.payload) == (action_type, "hi")
    assert {k: v for k, v in record.parameters.items() if k != "payload"} == parameters


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (40.5, "40.5"), (True, "true"), ("on", '"on"'), ("3", '"3"')],
)
def test_a_variable_is_shown_as_json_text_and_read_back_with_its_type(
    value: VariableValue, text: str
) -> None:
    assert variable_text(value) == text
    assert variable_value(text) == value
    assert type(variable_value(text)) is type(value)


def test_a_variable_given_as_a_bare_word_is_a_string() -> None:
    assert variable_value("on") == "on"

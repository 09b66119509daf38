"""Golden tests for ``$input`` and ``$variable`` references, templates and reference sets."""

from __future__ import annotations

from typing import Any

import pytest

from ordered_sender.emulator.expressions import (
    EvaluationContext,
    ExpressionTypeError,
    ExpressionUndefinedError,
    TriggerType,
    Value,
    parse,
)

# The guide's GreenhouseInput example: temperature 10.01 renders as 50.018 in Fahrenheit.
GREENHOUSE = EvaluationContext(
    variables={"TableName": "Greenhouse Temperature Table", "SensorID": 10, "ok": True},
    input_name="GreenhouseInput",
    payload={
        "temperature": 10.01,
        "sensors": [{"sensor1": "Sensor_1"}],
        "date": "2000-01-01",
        "temperatures": [78.4, 77.9, 78.8],
        "a": None,
        "nested": {"deep": {"list": [[1, 2], [3, 4]]}},
        "_value": 7,
        "a-b": "dashed",
    },
)

GUIDE_JSON_TEMPLATE = (
    r"""'{\"sensor_id\":\"${$input.GreenhouseInput.sensors[0].sensor1}\","""
    r"""\"temperature\":\"${$input.GreenhouseInput.temperature*9/5+32}\"}'"""
)


def value_in_greenhouse(text: str) -> Value:
    return parse(text).evaluate(GREENHOUSE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$input.GreenhouseInput.temperature", 10.01),
        ("$input.GreenhouseInput.temperatures[2]", 78.8),
        ("$input.GreenhouseInput.sensors[0].sensor1", "Sensor_1"),
        ("$input.GreenhouseInput.nested.deep.list[1][0]", 3),
        ("$input.GreenhouseInput.nested.deep", {"list": [[1, 2], [3, 4]]}),
        ("$input.GreenhouseInput.temperatures", [78.4, 77.9, 78.8]),
        ("$input.GreenhouseInput.a", None),
        ("$input.GreenhouseInput.`_value`", 7),
        ("$input.GreenhouseInput.`a-b`", "dashed"),
        ("$input.`GreenhouseInput`.date", "2000-01-01"),
        ("$variable.TableName", "Greenhouse Temperature Table"),
        ("$variable.`SensorID` + 1", 11),
        ("$input . GreenhouseInput . temperatures [ 0 ]", 78.4),
    ],
)
def test_references_read_the_payload_and_the_variables(text: str, expected: Value) -> None:
    assert value_in_greenhouse(text) == expected


def test_backticks_allow_input_names_with_special_characters() -> None:
    context = EvaluationContext(input_name="my-input", payload={"a-b": {"c d": 1}})
    assert parse("$input.`my-input`.`a-b`.`c d`").evaluate(context) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$input.GreenhouseInput.missing", r"\$input.GreenhouseInput.missing is undefined"),
        ("$input.GreenhouseInput.temperatures[3]", r"temperatures\[3\] is undefined"),
        ("$input.GreenhouseInput.temperature.value", r"temperature.value is undefined"),
        ("$input.GreenhouseInput.date[0]", r"date\[0\] is undefined"),
        ("$input.GreenhouseInput.a.b", r"\$input.GreenhouseInput.a.b is undefined"),
        ("$input.OtherInput.temperature", r"no message of input 'OtherInput'"),
        ("$variable.neverSet", r"\$variable.neverSet is undefined: the variable was never set"),
        ("$input.GreenhouseInput.missing > 3", r"missing is undefined"),
    ],
)
def test_references_that_find_nothing_are_undefined(text: str, message: str) -> None:
    with pytest.raises(ExpressionUndefinedError, match=message):
        value_in_greenhouse(text)


def test_json_null_is_a_value_no_operator_accepts() -> None:
    with pytest.raises(ExpressionTypeError, match="got Null null and Integer 1"):
        value_in_greenhouse("$input.GreenhouseInput.a == 1")


def test_other_inputs_are_read_from_the_previous_payloads() -> None:
    context = EvaluationContext(
        input_name=None,
        trigger_type=TriggerType.TIMER,
        previous_payloads={"HeartBeat": {"status": "OFFLINE"}},
    )
    expression = parse("$input.HeartBeat.status == 'OFFLINE'")
    assert expression.evaluate(context) is True


def test_the_current_message_wins_over_a_previous_payload_of_the_same_input() -> None:
    context = EvaluationContext(
        input_name="HeartBeat",
        payload={"status": "ONLINE"},
        previous_payloads={"HeartBeat": {"status": "OFFLINE"}},
    )
    assert parse("$input.HeartBeat.status").evaluate(context) == "ONLINE"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The guide's examples ("Expression usage").
        (
            "'${$input.GreenhouseInput.temperature * 9 / 5 + 32} in Fahrenheit'",
            "50.018 in Fahrenheit",
        ),
        # As the guide prints it (JSON-escaped) and as it arrives in a decoded API request.
        (GUIDE_JSON_TEMPLATE, '{"sensor_id":"Sensor_1","temperature":"50.018"}'),
        (GUIDE_JSON_TEMPLATE.replace("\\", ""), '{"sensor_id":"Sensor_1","temperature":"50.018"}'),
        (
            "'Greenhouse Temperature Table ' + $input.GreenhouseInput.date",
            "Greenhouse Temperature Table 2000-01-01",
        ),
        ("'${$variable.SensorID}'", "10"),
        ("'Sensor ${$variable.SensorID + 1}!'", "Sensor 11!"),
        ("'${true}/${1.5}/${$variable.TableName}'", "true/1.5/Greenhouse Temperature Table"),
        ("'${$input.GreenhouseInput.a}'", "null"),
        ("'${$input.GreenhouseInput.sensors}'", '[{"sensor1":"Sensor_1"}]'),
        ("'outer ${'inner ${1 + 1}'} done'", "outer inner 2 done"),
        ("'${'}'}'", "}"),
        ("'${ \"a\" + 'b' }'", "ab"),
        ("'${1}${2}'", "12"),
        ('"${not a template}"', "${not a template}"),
        ("'$notATemplate {}'", "$notATemplate {}"),
    ],
)
def test_substitution_templates_render_each_expression_as_text(text: str, expected: str) -> None:
    assert value_in_greenhouse(text) == expected


def test_a_template_with_undefined_data_is_undefined() -> None:
    with pytest.raises(ExpressionUndefinedError, match="missing is undefined"):
        value_in_greenhouse("'value: ${$input.GreenhouseInput.missing}'")


def test_reference_sets_name_every_input_variable_and_timer_used() -> None:
    expression = parse(
        "currentInput(\"Command\") && $input.Command.value == 'Abort'"
        " || timeout(\"awake\") && '${$variable.count}' == '3'"
        " || $input.`Other-Input`.x[0] > $variable.limit"
        " || timeout($variable.timerName)"
    )
    assert expression.input_references() == frozenset({"Command", "Other-Input"})
    assert expression.variable_references() == frozenset({"count", "limit", "timerName"})
    assert expression.timer_references() == frozenset({"awake"})


def test_currentinput_argument_is_not_an_input_reference() -> None:
    assert parse('currentInput("Command")').input_references() == frozenset()


def test_expressions_are_immutable_and_reusable() -> None:
    expression = parse("$input.In.n * 2")
    results = [
        expression.evaluate(EvaluationContext(input_name="In", payload={"n": n})) for n in (1, 2, 3)
    ]
    assert results == [2, 4, 6]
    assert expression == parse("$input.In.n * 2")
    assert expression.text == "$input.In.n * 2"
    with pytest.raises(AttributeError):
        expression.text = "other"  # type: ignore[misc]


def test_undefined_error_names_the_expression() -> None:
    with pytest.raises(ExpressionUndefinedError) as raised:
        value_in_greenhouse("1 + $variable.nope")
    assert raised.value.text == "1 + $variable.nope"
    assert raised.value.position == 4


def context_with(payload: Any) -> EvaluationContext:
    return EvaluationContext(input_name="In", payload=payload)


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"v": 1}, 1),
        ({"v": 1.0}, 1.0),
        ({"v": True}, True),
        ({"v": "1"}, "1"),
    ],
)
def test_payload_json_types_keep_their_expression_types(payload: Any, expected: Value) -> None:
    result = parse("$input.In.v").evaluate(context_with(payload))
    assert result == expected
    assert type(result) is type(expected)

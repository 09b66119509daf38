"""Golden tests for the built-in functions, with the guide's examples, and condition evaluation."""

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


def on_message(input_name: str, payload: Any, **context: Any) -> EvaluationContext:
    return EvaluationContext(input_name=input_name, payload=payload, **context)


ON_TIMER = EvaluationContext(trigger_type=TriggerType.TIMER, expired_timers=frozenset({"awake"}))


@pytest.mark.parametrize(
    ("text", "payload", "expected"),
    [
        # The guide's examples, each with the message it gives.
        ("isNull($input.MyInput.a)", {"a": None}, True),
        ("isUndefined($input.MyInput.a)", {"a": None}, False),
        ('startsWith($input.MyInput.status, "off")', {"status": "offline"}, True),
        ('endsWith($input.MyInput.status, "line")', {"status": "offline"}, True),
        ('contains($input.MyInput.value, "fli")', {"value": "offline"}, True),
        ("bitor($input.MyInput.value1, $input.MyInput.value2)", {"value1": 13, "value2": 5}, 13),
        ("bitand($input.MyInput.value1, $input.MyInput.value2)", {"value1": 13, "value2": 5}, 5),
        ("bitxor($input.MyInput.value1, $input.MyInput.value2)", {"value1": 13, "value2": 5}, 8),
        ("bitnot($input.MyInput.value)", {"value": 13}, -14),
        # And their other side.
        ("isNull($input.MyInput.a)", {"a": 0}, False),
        ("isNull($input.MyInput.a)", {}, False),
        ("isUndefined($input.MyInput.a)", {}, True),
        ("isUndefined($input.MyInput.a.b[0])", {"a": {"b": []}}, True),
        ("isUndefined($input.MyInput.a)", {"a": 0}, False),
        ('startsWith($input.MyInput.status, "on")', {"status": "offline"}, False),
        ('endsWith($input.MyInput.status, "off")', {"status": "offline"}, False),
        ('contains($input.MyInput.status, "xyz")', {"status": "offline"}, False),
        ("startsWith('abc', '')", {}, True),
    ],
)
def test_functions_give_the_documented_results(text: str, payload: Any, expected: Value) -> None:
    assert parse(text).evaluate(on_message("MyInput", payload)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "startsWith(1, 'a')",
        "endsWith('a', true)",
        "contains('123', 2)",
        "bitor(1, 2.0)",
        "bitand('1', 1)",
        "bitxor(true, 1)",
        "bitnot(1.5)",
        "isUndefined($variable.nothing) && startsWith($variable.nothing, 'a')",
    ],
)
def test_string_and_bitwise_functions_are_undefined_for_wrong_types(text: str) -> None:
    with pytest.raises(ExpressionUndefinedError, match="is undefined"):
        parse(text).evaluate(EvaluationContext())


def test_undefined_function_result_is_false_under_or() -> None:
    assert parse("startsWith(1, 'a') || true").evaluate(EvaluationContext()) is True
    assert parse("isUndefined(bitnot('x'))").evaluate(EvaluationContext()) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("convert(String, true)", "true"),
        ("convert(String, false)", "false"),
        ("convert(String, 1.5)", "1.5"),
        ("convert(String, 42)", "42"),
        ("convert(Boolean, 'true')", True),
        ("convert(Boolean, 'FALSE')", False),
        ("convert(Decimal, '12.5')", 12.5),
        ("convert(Decimal, ' -3 ')", -3.0),
        ("convert(Decimal, '1e2')", 100.0),
        ("convert('Decimal', '2')", 2.0),
        ('convert("string", 3)', "3"),
        ("convert($variable.type, '4')", 4.0),
        ("convert(Decimal, '10') / 4", 2.5),
        ("convert(String, 1) + 'x'", "1x"),
    ],
)
def test_convert_performs_the_documented_conversions(text: str, expected: Value) -> None:
    # Developer guide, "Expressions" > Functions > convert(type, expression): Boolean -> string,
    # Decimal -> string (an Integer is a compatible Decimal), String -> Boolean, String -> decimal.
    result = parse(text).evaluate(EvaluationContext(variables={"type": "Decimal"}))
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("convert(Decimal, 'abc')", "cannot turn String 'abc' into a Decimal"),
        ("convert(Decimal, 'NaN')", "cannot turn String 'NaN' into a Decimal"),
        ("convert(Decimal, true)", "cannot turn Boolean true into a Decimal"),
        ("convert(Boolean, 'yes')", "cannot turn String 'yes' into a Boolean"),
        ("convert(Boolean, 1)", "cannot turn Integer 1 into a Boolean"),
        # "Only the following conversions succeed": not to a value's own type, not Integer ->
        # Decimal (developer guide, "Expressions" > Functions > convert).
        ("convert(String, 'same')", "cannot turn String 'same' into a String"),
        ("convert(Boolean, false)", "cannot turn Boolean false into a Boolean"),
        ("convert(Decimal, 2.5)", "cannot turn Decimal 2.5 into a Decimal"),
        ("convert(Decimal, 7)", "cannot turn Integer 7 into a Decimal"),
        ("convert('Integer', 1)", "type must be String, Boolean or Decimal, got String 'Integer'"),
        ("convert(1, 1)", "type must be String, Boolean or Decimal, got Integer 1"),
    ],
)
def test_failed_conversions_are_type_errors(text: str, message: str) -> None:
    with pytest.raises(ExpressionTypeError, match=message):
        parse(text).evaluate(EvaluationContext())


def test_failed_convert_makes_the_condition_false() -> None:
    expression = parse("convert(Decimal, $input.In.text) > 1")
    assert expression.evaluate_condition(on_message("In", {"text": "2.5"})) is True
    assert expression.evaluate_condition(on_message("In", {"text": "n/a"})) is False


@pytest.mark.parametrize(
    ("text", "context", "expected"),
    [
        ('timeout("awake")', ON_TIMER, True),
        ('timeout("other")', ON_TIMER, False),
        ('timeout("awake")', EvaluationContext(), False),
        ('triggerType("Timer")', ON_TIMER, True),
        ('triggerType("Message")', ON_TIMER, False),
        ('triggerType("MESSAGE")', on_message("In", {}), True),
        ('triggerType("timer")', on_message("In", {}), False),
        ('currentInput("Command")', on_message("Command", {"value": "Abort"}), True),
        ('currentInput("Command")', on_message("Other", {"value": "Abort"}), False),
        ('currentInput("Command")', ON_TIMER, False),
        (
            'currentInput("Command") && $input.Command.value == "Abort"',
            on_message("Command", {"value": "Abort"}),
            True,
        ),
        ('triggerType("MESSAGE") && timeout("awake")', ON_TIMER, False),
    ],
)
def test_trigger_and_timer_functions_read_the_context(
    text: str, context: EvaluationContext, expected: bool
) -> None:
    assert parse(text).evaluate(context) is expected


def test_trigger_type_rejects_unknown_names() -> None:
    with pytest.raises(ExpressionTypeError, match='takes "Message" or "Timer", got \'Clock\''):
        parse('triggerType("Clock")').evaluate(EvaluationContext())


def test_name_arguments_must_be_strings() -> None:
    with pytest.raises(ExpressionTypeError, match=r"timeout\(\) needs a string argument"):
        parse("timeout(1)").evaluate(EvaluationContext())


def test_timer_name_may_come_from_a_variable() -> None:
    context = EvaluationContext(variables={"name": "awake"}, expired_timers=frozenset({"awake"}))
    assert parse("timeout($variable.name)").evaluate(context) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("true", True),
        ("$input.In.pressure > 70", True),
        ("$input.In.pressure < 70", False),
        ("$input.In.pressure", False),  # not a Boolean
        ("'true'", False),  # a string, not a Boolean
        ("$input.In.missing > 70", False),  # undefined data
        ("$input.In.name * 2", False),  # type error
        ("$input.In.pressure / 0 > 1", False),  # no valid value
        ("$input.In.missing > 70 || $input.In.pressure > 70", True),  # documented || rule
        ("$input.In.missing > 70 && true", False),
    ],
)
def test_conditions_count_anything_but_true_as_false(text: str, expected: bool) -> None:
    context = on_message("In", {"pressure": 80, "name": "motor"})
    assert parse(text).evaluate_condition(context) is expected


def test_evaluation_context_rejects_an_unknown_trigger_type() -> None:
    with pytest.raises(ValueError, match=r"trigger_type must be one of .* got 'Clock'"):
        EvaluationContext(trigger_type="Clock")


def test_evaluation_context_accepts_trigger_type_strings() -> None:
    context = EvaluationContext(trigger_type="Timer")
    assert parse('triggerType("Timer")').evaluate(context) is True

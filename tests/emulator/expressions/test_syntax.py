"""Syntax errors: each names what is wrong, the text and the position of the problem."""

from __future__ import annotations

import pytest

from ordered_sender.emulator.expressions import (
    EvaluationContext,
    ExpressionError,
    ExpressionSyntaxError,
    parse,
)
from ordered_sender.emulator.expressions.parser import MAX_DEPTH, MAX_NESTING


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("", 0, "the expression is empty"),
        ("   ", 3, "the expression is empty"),
        ("1 +", 3, "expected a value, found the end of the expression"),
        ("1 2", 2, "unexpected integer '2' after a complete expression"),
        ("(1 + 2", 6, r"expected '\)' to close the '\(' at position 0"),
        ("1 + 2)", 5, r"unexpected '\)' after a complete expression"),
        ("5 % 2", 2, "'%' is not an IoT Events operator"),
        ("a = 1", 2, "'=' is not an IoT Events operator; compare with '=='"),
        ("1 # 2", 2, "unexpected character '#'"),
        ("'abc", 0, "string starting with ' is never closed"),
        ('1 == "abc', 5, 'string starting with " is never closed'),
        ("'${1 + 1'", 8, "string starting with ' is never closed"),
        ("'${1 + }'", 7, r"expected a value, found '}'"),
        ("'${}'", 3, r"a '\$\{\}' substitution needs an expression"),
        ("'${1 2}'", 5, r"expected '}' to close the '\$\{' substitution, found integer '2'"),
        ("{1}", 0, r"'\{' is only allowed inside a string"),
        ("1 }", 2, r"unexpected '}' after a complete expression"),
        ("$input", 6, r"expected '.' after \$input"),
        ("$input.In", 9, r"\$input.In needs a path to an attribute"),
        ("$input.In.", 10, r"expected a name after '.'"),
        ("$input.In._value", 10, "must be in backticks, e.g. `_value`"),
        ("$input.In.`a", 10, "backticked name is never closed"),
        ("$input.In.``", 10, "backticked name is empty"),
        ("$input.In.list[x]", 15, "an array index must be an integer such as \\[0\\]"),
        ("$input.In.list[-1]", 15, "an array index must be an integer"),
        ("$input.In.list[1.5]", 15, "an array index must be an integer"),
        ("$input.In.list[0", 16, "expected ']' to close the array index"),
        ("$variable", 9, r"expected '.' after \$variable"),
        ("$variable.a.b", 11, "unexpected '.' after a complete expression"),
        ("$var.a", 0, r"'\$var' is not a reference; references start with \$input. or"),
        ("$ input.a", 0, r"'\$' is not a reference"),
        ("pressure > 5", 0, "unknown name 'pressure': references start with \\$input."),
        ("TRUE", 0, "unknown name 'TRUE'"),
        ("abs(-1)", 0, "unknown function 'abs'; the functions are bitand, bitnot"),
        ("isnan(1)", 0, "unknown function 'isnan'"),
        ("isNull()", 0, r"isNull\(\) takes 1 argument\(s\), got 0"),
        ("startsWith('a')", 0, r"startsWith\(\) takes 2 argument\(s\), got 1"),
        ("bitor(1, 2, 3)", 0, r"bitor\(\) takes 2 argument\(s\), got 3"),
        ("contains('a' 'b')", 13, r"expected ',' between the arguments of contains\(\)"),
        ("timeout(", 8, "expected a value, found the end of the expression"),
        ("convert(Integer, 1)", 8, "unknown name 'Integer'"),
        ("12abc", 0, "malformed number '12a'"),
        ("1.", 1, "unexpected '.' after a complete expression"),
        ("!", 1, "expected a value, found the end of the expression"),
    ],
)
def test_syntax_errors_name_the_problem_and_its_position(
    text: str, position: int, message: str
) -> None:
    with pytest.raises(ExpressionSyntaxError, match=message) as raised:
        parse(text)
    assert raised.value.position == position
    assert raised.value.text == text
    assert f"at position {position} of expression {text!r}" in str(raised.value)


def test_syntax_errors_are_expression_errors_and_value_errors() -> None:
    with pytest.raises(ExpressionError):
        parse("1 +")
    with pytest.raises(ValueError, match="expected a value"):
        parse("1 +")


@pytest.mark.parametrize(
    "text",
    [
        "$input.PressureInput.sensorData.pressure > 70",
        "$variable.pressureThresholdBreached > 1",
        "$input.`my-input`.`a-b`[0][1].c",
        "timeout(\"awake\") || triggerType('Timer')",
        "convert(Decimal, $input.In.text) >= 1.5e2",
        "'${$input.GreenhouseInput.temperature * 9 / 5 + 32} in Fahrenheit'",
        "\t(\n1\n+\n2\n)\n",
        "!!~-1 == -1",
    ],
)
def test_valid_expressions_parse_and_keep_their_text(text: str) -> None:
    assert parse(text).text == text


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
        "-" * (MAX_NESTING + 1) + "1",
        "bitnot(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
    ],
)
def test_nesting_beyond_the_limit_is_a_syntax_error_not_a_recursion_error(text: str) -> None:
    with pytest.raises(ExpressionSyntaxError, match=f"nests more than {MAX_NESTING} levels"):
        parse(text)


def test_nesting_up_to_the_limit_parses() -> None:
    text = "(" * MAX_NESTING + "1" + ")" * MAX_NESTING
    assert parse(text).evaluate(EvaluationContext()) == 1


def test_operator_chains_deeper_than_the_limit_are_refused() -> None:
    with pytest.raises(ExpressionSyntaxError, match=f"more than the {MAX_DEPTH} supported"):
        parse(" + ".join(["1"] * (MAX_DEPTH + 1)))
    assert parse(" + ".join(["1"] * (MAX_DEPTH - 1))).evaluate(EvaluationContext()) == MAX_DEPTH - 1

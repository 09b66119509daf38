"""Golden tests for literals, operators, precedence and the type rules of IoT Events expressions."""

from __future__ import annotations

import pytest

from ordered_sender.emulator.expressions import (
    EvaluationContext,
    ExpressionEvaluationError,
    ExpressionTypeError,
    Value,
    parse,
)

NO_MESSAGE = EvaluationContext()


def value_of(text: str) -> Value:
    return parse(text).evaluate(NO_MESSAGE)


def typed_value_of(text: str) -> tuple[Value, type]:
    """The value and its Python type, so that ``2 == 2.0`` cannot pass for an integer result."""
    value = value_of(text)
    return value, type(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("0", 0),
        ("10.01", 10.01),
        ("2e3", 2000.0),
        ("1.5E-1", 0.15),
        ("'hello'", "hello"),
        ('"hello"', "hello"),
        ("''", ""),
        ("'123'", "123"),
        ("true", True),
        ("false", False),
    ],
)
def test_literals_evaluate_to_their_value(text: str, expected: Value) -> None:
    # A quoted '123' is a String: "Expression usage" lists '123' as an Integer, but "Expressions"
    # > Operators puts string literals in single quotes ('my' + 'string' -> 'mystring'); the two
    # contradict each other and only this reading lets a string hold digits (see the package
    # docstring of ordered_sender.emulator.expressions).
    assert typed_value_of(text) == (expected, type(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"'it\'s'", "it's"),
        (r'"say \"hi\""', 'say "hi"'),
        (r"'back\\slash'", "back\\slash"),
        (r"'\${not a template}'", "${not a template}"),
        (r"'C:\temp'", "C:\\temp"),
    ],
)
def test_backslash_escapes_only_quotes_backslash_and_dollar(text: str, expected: str) -> None:
    assert value_of(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # The guide's own examples.
        ("'my' + 'string'", "mystring"),
        ("13 | 5", 13),
        ("13 & 5", 5),
        ("13 ^ 5", 8),
        ("~13", -14),
        # Arithmetic.
        ("1 + 2", 3),
        ("1 + 2.5", 3.5),
        ("5 - 7", -2),
        ("6 * 7", 42),
        ("1.5 * 2", 3.0),
        ("-5", -5),
        ("--5", 5),
        ("-2.5", -2.5),
        ("!true", False),
        ("!!false", False),
    ],
)
def test_operators_compute_the_documented_results(text: str, expected: Value) -> None:
    assert typed_value_of(text) == (expected, type(expected))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7 / 2", 4),
        ("8 / 2", 4),
        ("5 / 3", 2),
        ("4 / 3", 1),
        ("-7 / 2", -4),
        ("7 / -2", -4),
        ("-7 / -2", 4),
        ("-5 / 3", -2),
        ("1000000000000000000000000000001 / 3", 333333333333333333333333333334),
        ("7.0 / 2", 3.5),
        ("7 / 2.0", 3.5),
        ("1 / 4.0", 0.25),
    ],
)
def test_division_of_two_integers_is_a_rounded_integer(text: str, expected: Value) -> None:
    # Developer guide, "Expressions" > Operators > Arithmetic > Division: "The result of the
    # division is a rounded integer value unless at least one of the operands (divisor or
    # dividend) is a decimal value." Halves go away from zero (the guide does not say).
    assert typed_value_of(text) == (expected, type(expected))


@pytest.mark.parametrize("text", ["1 / 0", "1.5 / 0", "1 / 0.0", "0 / 0"])
def test_division_by_zero_has_no_valid_value(text: str) -> None:
    with pytest.raises(ExpressionEvaluationError, match="division by zero"):
        value_of(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2", True),
        ("2 < 1", False),
        ("2 <= 2", True),
        ("3 > 2.5", True),
        ("2 >= 3", False),
        ("2 == 2.0", True),
        ("2 != 2", False),
        ("'abc' == 'abc'", True),
        ("'abc' != 'abd'", True),
        ("'abc' < 'abd'", True),
        ("'b' > 'abc'", True),
        ("'Z' < 'a'", True),
        ("true == true", True),
        ("true != false", True),
        ("true && true", True),
        ("true && false", False),
        ("false || true", True),
        ("false || false", False),
    ],
)
def test_comparisons_and_logical_operators(text: str, expected: bool) -> None:
    assert value_of(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),
        ("24 / 4 / 2", 3),
        ("2 * 5 / 4", 3),
        ("-2 * 3", -6),
        ("1 + 2 == 3", True),
        ("1 < 2 == true", True),
        ("1 == 1 && 2 == 2", True),
        ("true || false && false", True),
        ("(true || false) && false", False),
        ("!false && false", False),
        ("!(false && false)", True),
        ("1 | 2 ^ 3 & 4", 1 | (2 ^ (3 & 4))),
        ("~0 + 1", 0),
    ],
)
def test_precedence_follows_java(text: str, expected: Value) -> None:
    assert value_of(text) == expected


def test_equality_binds_tighter_than_bitwise_and_as_in_java() -> None:
    # 12 & (10 == 8): an integer and a Boolean.
    with pytest.raises(ExpressionTypeError, match="got Integer 12 and Boolean false"):
        value_of("12 & 10 == 8")
    assert value_of("(12 & 10) == 8") is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("'a' * 2", "operator '\\*' needs numbers, got String 'a' and Integer 2"),
        (
            "'a' + 1",
            "operator '\\+' needs two numbers or two strings, got String 'a' and Integer 1",
        ),
        ("1 + 'a'", "got Integer 1 and String 'a'"),
        ("true + false", "operator '\\+' needs two numbers or two strings"),
        ("true + 1", "got Boolean true and Integer 1"),
        ("'5' - 2", "operator '-' needs numbers"),
        ("1 == '1'", "operator '==' needs operands of compatible types"),
        ("'a' < 1", "operator '<' needs operands of compatible types"),
        ("true == 1", "got Boolean true and Integer 1"),
        ("true < false", "operator '<' needs two numbers or two strings"),
        ("1.5 | 1", "operator '\\|' needs two integers, got Decimal 1.5 and Integer 1"),
        ("true & 1", "operator '&' needs two integers"),
        ("~1.5", "operator '~' needs an integer, got Decimal 1.5"),
        ("-'a'", "operator '-' needs a number, got String 'a'"),
        ("-true", "operator '-' needs a number, got Boolean true"),
        ("!1", "operator '!' needs a Boolean, got Integer 1"),
        ("1 && true", "operator '&&' needs Boolean operands, got Integer 1"),
        ("false || 'yes'", "operator '\\|\\|' needs Boolean operands, got String 'yes'"),
    ],
)
def test_incompatible_types_are_type_errors_naming_operator_and_values(
    text: str, message: str
) -> None:
    with pytest.raises(ExpressionTypeError, match=message):
        value_of(text)


def test_type_error_names_the_expression_text_and_the_operator_position() -> None:
    with pytest.raises(ExpressionTypeError) as raised:
        value_of("1 + ('a' * 2)")
    assert raised.value.position == 9
    assert raised.value.text == "1 + ('a' * 2)"
    assert "at position 9 of expression \"1 + ('a' * 2)\"" in str(raised.value)


def test_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="needs numbers"):
        value_of("'a' * 2")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("false && 'not evaluated' * 2", False),
        ("true || 'not evaluated' * 2", True),
    ],
)
def test_logical_operators_short_circuit(text: str, expected: bool) -> None:
    assert value_of(text) is expected


def test_integers_do_not_overflow() -> None:
    assert value_of("9223372036854775807 + 1") == 9223372036854775808

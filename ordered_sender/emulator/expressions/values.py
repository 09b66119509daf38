"""The value rules of IoT Events expressions: types, operators, ``convert`` and template text.

IoT Events has four types (Integer, Decimal, String, Boolean) and documents which pairs are
incompatible: only Integer and Decimal mix. So ``'a' + 1``, ``'a' * 2``, ``1 == '1'`` and
``true + false`` are type errors, never coercions. JSON ``null``, objects and arrays can be read
from a payload, but no operator accepts them (only ``isNull`` and templates look at them).

Python's ``bool`` is an ``int``; every check here tests ``bool`` first so ``true + 1`` stays a
type error. This module is pure: no I/O, no context.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from enum import Enum
from typing import NoReturn, TypeGuard

from ordered_sender.emulator.expressions.context import Value
from ordered_sender.emulator.expressions.errors import (
    ExpressionEvaluationError,
    ExpressionTypeError,
)

Number = int | float

_DECIMAL_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


class ValueType(Enum):
    """The type of a value, named as IoT Events names it in its messages."""

    INTEGER = "Integer"
    DECIMAL = "Decimal"
    STRING = "String"
    BOOLEAN = "Boolean"
    NULL = "Null"
    OBJECT = "Object"
    ARRAY = "Array"


def type_of(value: Value) -> ValueType:
    """The IoT Events type of a Python value."""
    if isinstance(value, bool):
        return ValueType.BOOLEAN
    if isinstance(value, int):
        return ValueType.INTEGER
    if isinstance(value, float):
        return ValueType.DECIMAL
    if isinstance(value, str):
        return ValueType.STRING
    if value is None:
        return ValueType.NULL
    if isinstance(value, dict):
        return ValueType.OBJECT
    return ValueType.ARRAY


def describe(value: Value) -> str:
    """A value with its type, for error messages: ``String 'abc'``."""
    shown = repr(value) if isinstance(value, str) else render(value)
    return f"{type_of(value).value} {shown}"


def is_number(value: Value) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def is_integer(value: Value) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def render(value: Value) -> str:
    """The text a value becomes inside a substitution template or ``convert(String, ...)``.

    Booleans are ``true``/``false`` (as IoT Events documents for ``convert``); structured JSON
    values are written back as compact JSON.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, separators=(",", ":"))


class BinaryOperator(Enum):
    """Operators with two eagerly evaluated operands; ``&&`` and ``||`` short-circuit elsewhere."""

    ADD = "+"
    SUBTRACT = "-"
    MULTIPLY = "*"
    DIVIDE = "/"
    BIT_OR = "|"
    BIT_AND = "&"
    BIT_XOR = "^"
    EQUAL = "=="
    NOT_EQUAL = "!="
    LESS = "<"
    LESS_OR_EQUAL = "<="
    GREATER = ">"
    GREATER_OR_EQUAL = ">="


def _incompatible(operator: str, left: Value, right: Value, position: int, needs: str) -> NoReturn:
    raise ExpressionTypeError(
        f"operator {operator!r} needs {needs}, got {describe(left)} and {describe(right)}; "
        "use convert(...) to change a type",
        position=position,
    )


def _arithmetic(operator: BinaryOperator, left: Number, right: Number, position: int) -> Number:
    if operator is BinaryOperator.ADD:
        return left + right
    if operator is BinaryOperator.SUBTRACT:
        return left - right
    if operator is BinaryOperator.MULTIPLY:
        return left * right
    if right == 0:
        raise ExpressionEvaluationError(
            f"division by zero: {render(left)} / {render(right)}", position=position
        )
    if isinstance(left, int) and isinstance(right, int):
        return _rounded_quotient(left, right)
    return left / right


def _rounded_quotient(dividend: int, divisor: int) -> int:
    """``dividend / divisor`` rounded to the nearest integer, halves away from zero.

    Developer guide, "Expressions", Syntax > Operators > Arithmetic > Division: "The result of the
    division is a rounded integer value unless at least one of the operands (divisor or
    dividend) is a decimal value." Rounded, not truncated: ``7 / 2`` is ``4``, ``5 / 3`` is ``2``.
    The guide does not say how halves go; away from zero keeps ``-7 / 2 == -(7 / 2)``. Exact
    integer arithmetic, so large integers do not lose precision through a float.
    """
    quotient, remainder = divmod(abs(dividend), abs(divisor))
    if 2 * remainder >= abs(divisor):
        quotient += 1
    return quotient if (dividend < 0) == (divisor < 0) else -quotient


_BITWISE: dict[BinaryOperator, Callable[[int, int], int]] = {
    BinaryOperator.BIT_OR: lambda left, right: left | right,
    BinaryOperator.BIT_AND: lambda left, right: left & right,
    BinaryOperator.BIT_XOR: lambda left, right: left ^ right,
}

# Each comparison as a test of the sign of (left - right).
_SIGN_TESTS: dict[BinaryOperator, Callable[[int], bool]] = {
    BinaryOperator.EQUAL: lambda sign: sign == 0,
    BinaryOperator.NOT_EQUAL: lambda sign: sign != 0,
    BinaryOperator.LESS: lambda sign: sign < 0,
    BinaryOperator.LESS_OR_EQUAL: lambda sign: sign <= 0,
    BinaryOperator.GREATER: lambda sign: sign > 0,
    BinaryOperator.GREATER_OR_EQUAL: lambda sign: sign >= 0,
}


def _compare(operator: BinaryOperator, left: Value, right: Value, position: int) -> bool:
    booleans = isinstance(left, bool) and isinstance(right, bool)
    ordered = (is_number(left) and is_number(right)) or (
        isinstance(left, str) and isinstance(right, str)
    )
    if booleans and operator in (BinaryOperator.EQUAL, BinaryOperator.NOT_EQUAL):
        sign = int(left != right)
    elif ordered:
        sign = (left > right) - (left < right)  # type: ignore[operator]
    else:
        needs = "two numbers or two strings" if booleans else "operands of compatible types"
        _incompatible(operator.value, left, right, position, needs)
    return _SIGN_TESTS[operator](sign)


def apply_binary(operator: BinaryOperator, left: Value, right: Value, position: int) -> Value:
    """``left <operator> right`` under the IoT Events type rules."""
    symbol = operator.value
    if operator in _BITWISE:
        if not (is_integer(left) and is_integer(right)):
            _incompatible(symbol, left, right, position, "two integers")
        return _BITWISE[operator](left, right)
    if operator is BinaryOperator.ADD and isinstance(left, str) and isinstance(right, str):
        return left + right
    if operator in (
        BinaryOperator.ADD,
        BinaryOperator.SUBTRACT,
        BinaryOperator.MULTIPLY,
        BinaryOperator.DIVIDE,
    ):
        if not (is_number(left) and is_number(right)):
            needs = "two numbers or two strings" if operator is BinaryOperator.ADD else "numbers"
            _incompatible(symbol, left, right, position, needs)
        return _arithmetic(operator, left, right, position)
    return _compare(operator, left, right, position)


def negate(value: Value, position: int) -> Number:
    """Unary ``-``: numbers only."""
    if not is_number(value):
        raise ExpressionTypeError(
            f"operator '-' needs a number, got {describe(value)}", position=position
        )
    return -value


def logical_not(value: Value, position: int) -> bool:
    """Unary ``!``: Booleans only."""
    if not isinstance(value, bool):
        raise ExpressionTypeError(
            f"operator '!' needs a Boolean, got {describe(value)}", position=position
        )
    return not value


def bitwise_not(value: Value, position: int) -> int:
    """Unary ``~``: integers only (``~13`` is ``-14``)."""
    if not is_integer(value):
        raise ExpressionTypeError(
            f"operator '~' needs an integer, got {describe(value)}", position=position
        )
    return ~value


def require_boolean(value: Value, operator: str, position: int) -> bool:
    """An operand of ``&&`` or ``||``, which must be a Boolean."""
    if not isinstance(value, bool):
        raise ExpressionTypeError(
            f"operator {operator!r} needs Boolean operands, got {describe(value)}",
            position=position,
        )
    return value


class ConversionType(Enum):
    """The target types ``convert(type, expression)`` accepts, by their documented keyword."""

    STRING = "String"
    BOOLEAN = "Boolean"
    DECIMAL = "Decimal"


def conversion_type(name: Value, position: int) -> ConversionType:
    """The target type named by ``convert``'s first argument (a keyword or a string)."""
    if isinstance(name, str):
        for candidate in ConversionType:
            if candidate.value.lower() == name.lower():
                return candidate
    raise ExpressionTypeError(
        "convert() type must be String, Boolean or Decimal, got " + describe(name),
        position=position,
    )


def convert(target: ConversionType, value: Value, position: int) -> Value:
    """``convert(target, value)``: only the four conversions the guide lists succeed.

    Developer guide, "Expressions", Syntax > Functions > ``convert(type, expression)``: "Only the
    following conversions succeed and return a valid value: Boolean -> string, Decimal -> string,
    String -> Boolean, String -> decimal." An Integer counts as a Decimal there (the one pair the
    guide calls compatible), so ``convert(String, 42)`` is ``"42"``; a conversion to a value's own
    type, or from Integer to Decimal, is not in the list and fails like any other.
    """
    if target is ConversionType.STRING and (isinstance(value, bool) or is_number(value)):
        return render(value)
    text = value if isinstance(value, str) else None
    if target is ConversionType.BOOLEAN and text is not None and text.lower() in ("true", "false"):
        return text.lower() == "true"
    if (
        target is ConversionType.DECIMAL
        and text is not None
        and _DECIMAL_TEXT.fullmatch(text.strip())
    ):
        converted = float(text)
        if math.isfinite(converted):
            return converted
    raise ExpressionTypeError(
        f"convert() cannot turn {describe(value)} into a {target.value}: only Boolean and "
        "Decimal to String, and String to Boolean or Decimal, are documented",
        position=position,
    )

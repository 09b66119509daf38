"""The built-in functions of IoT Events expressions and the ``Call`` node that runs them.

Every function the developer guide documents is here; no others (the guide documents no ``abs``,
``isNaN`` or ``%``, so an expression using them is a syntax error rather than a silent extension).
The documented rules they follow:

- ``startsWith``/``endsWith``/``contains`` need two strings and ``bitor``/``bitand``/``bitxor``/
  ``bitnot`` need integers; otherwise "the result of the function is undefined" and no
  conversion is done: we raise ``ExpressionUndefinedError``, so ``||`` treats it as ``false``;
- ``isNull`` is true for a JSON ``null``; ``isUndefined`` for a reference that finds nothing
  (``isNull`` of undefined data is ``false``: it is not null, it is absent);
- ``timeout("t")`` is true when ``t`` is in ``context.expired_timers``, and records in
  ``context.checked_timers`` that ``t`` was checked (only when it is evaluated);
- ``triggerType("Message"|"Timer")`` compares with ``context.trigger_type``, ignoring case
  because the guide itself writes ``triggerType("MESSAGE")``; any other name is a type error;
- ``currentInput("In")`` is true when a message of input ``In`` triggered this evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from ordered_sender.emulator.expressions.context import EvaluationContext, TriggerType, Value
from ordered_sender.emulator.expressions.errors import (
    ExpressionTypeError,
    ExpressionUndefinedError,
)
from ordered_sender.emulator.expressions.nodes import Node
from ordered_sender.emulator.expressions.values import (
    conversion_type,
    convert,
    describe,
    is_integer,
)


class Function(Enum):
    """A documented built-in function, by its exact (case-sensitive) name."""

    TIMEOUT = "timeout"
    CONVERT = "convert"
    IS_NULL = "isNull"
    IS_UNDEFINED = "isUndefined"
    TRIGGER_TYPE = "triggerType"
    CURRENT_INPUT = "currentInput"
    STARTS_WITH = "startsWith"
    ENDS_WITH = "endsWith"
    CONTAINS = "contains"
    BIT_OR = "bitor"
    BIT_AND = "bitand"
    BIT_XOR = "bitxor"
    BIT_NOT = "bitnot"

    @property
    def arity(self) -> int:
        """How many arguments the function takes."""
        return 1 if self in _ONE_ARGUMENT else 2


_ONE_ARGUMENT = frozenset(
    {
        Function.TIMEOUT,
        Function.IS_NULL,
        Function.IS_UNDEFINED,
        Function.TRIGGER_TYPE,
        Function.CURRENT_INPUT,
        Function.BIT_NOT,
    }
)


@dataclass(frozen=True, slots=True)
class Call:
    """``function(arguments...)``; the parser has checked the number of arguments."""

    function: Function
    arguments: tuple[Node, ...]
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        return _IMPLEMENTATIONS[self.function](self, context)

    def children(self) -> tuple[Node, ...]:
        return self.arguments

    def string_argument(self, index: int, context: EvaluationContext) -> str:
        """Argument ``index`` evaluated, which must be a string (a timer or input name...)."""
        value = self.arguments[index].evaluate(context)
        if not isinstance(value, str):
            raise ExpressionTypeError(
                f"{self.function.value}() needs a string argument, got {describe(value)}",
                position=self.position,
            )
        return value

    def undefined(self, values: tuple[Value, ...], needs: str) -> ExpressionUndefinedError:
        """The documented outcome of a string or bitwise function given the wrong types."""
        given = ", ".join(describe(value) for value in values)
        return ExpressionUndefinedError(
            f"{self.function.value}() is undefined unless given {needs}, got {given}",
            position=self.position,
        )


def _timeout(call: Call, context: EvaluationContext) -> Value:
    name = call.string_argument(0, context)
    context.checked_timers.add(name)
    return name in context.expired_timers


def _convert(call: Call, context: EvaluationContext) -> Value:
    target = conversion_type(call.arguments[0].evaluate(context), call.position)
    return convert(target, call.arguments[1].evaluate(context), call.position)


def _is_null(call: Call, context: EvaluationContext) -> Value:
    try:
        return call.arguments[0].evaluate(context) is None
    except ExpressionUndefinedError:
        return False


def _is_undefined(call: Call, context: EvaluationContext) -> Value:
    try:
        call.arguments[0].evaluate(context)
    except ExpressionUndefinedError:
        return True
    return False


def _trigger_type(call: Call, context: EvaluationContext) -> Value:
    name = call.string_argument(0, context)
    for trigger_type in TriggerType:
        if trigger_type.value.lower() == name.lower():
            return context.trigger_type == trigger_type
    raise ExpressionTypeError(
        f'triggerType() takes "Message" or "Timer", got {name!r}', position=call.position
    )


def _current_input(call: Call, context: EvaluationContext) -> Value:
    name = call.string_argument(0, context)
    return context.trigger_type == TriggerType.MESSAGE and context.input_name == name


def _string_function(
    test: Callable[[str, str], bool],
) -> Callable[[Call, EvaluationContext], Value]:
    def implementation(call: Call, context: EvaluationContext) -> Value:
        text = call.arguments[0].evaluate(context)
        part = call.arguments[1].evaluate(context)
        if not (isinstance(text, str) and isinstance(part, str)):
            raise call.undefined((text, part), "two strings")
        return test(text, part)

    return implementation


def _bitwise_function(
    operation: Callable[[list[int]], int],
) -> Callable[[Call, EvaluationContext], Value]:
    def implementation(call: Call, context: EvaluationContext) -> Value:
        values = tuple(argument.evaluate(context) for argument in call.arguments)
        integers = [value for value in values if is_integer(value)]
        if len(integers) != len(values):
            raise call.undefined(values, "integers")
        return operation(integers)

    return implementation


_IMPLEMENTATIONS: dict[Function, Callable[[Call, EvaluationContext], Value]] = {
    Function.TIMEOUT: _timeout,
    Function.CONVERT: _convert,
    Function.IS_NULL: _is_null,
    Function.IS_UNDEFINED: _is_undefined,
    Function.TRIGGER_TYPE: _trigger_type,
    Function.CURRENT_INPUT: _current_input,
    Function.STARTS_WITH: _string_function(str.startswith),
    Function.ENDS_WITH: _string_function(str.endswith),
    Function.CONTAINS: _string_function(str.__contains__),
    Function.BIT_OR: _bitwise_function(lambda values: values[0] | values[1]),
    Function.BIT_AND: _bitwise_function(lambda values: values[0] & values[1]),
    Function.BIT_XOR: _bitwise_function(lambda values: values[0] ^ values[1]),
    Function.BIT_NOT: _bitwise_function(lambda values: ~values[0]),
}

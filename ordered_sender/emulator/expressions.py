"""The AWS IoT Events detector-model expression language: ``parse`` once, evaluate many times.

Follows the IoT Events developer guide ("Expressions to filter, transform, and process event
data", its "Syntax", "Functions" and "Expression usage" pages). What it supports:

- literals: integers, decimals, strings in single or double quotes, ``true``/``false``;
- prefix ``!`` ``~`` ``-``; ``+ - * /``; bitwise ``| & ^``; ``== != < <= > >=``; ``&& ||``;
  parentheses; there is no ``%`` (it is not documented);
- ``$input.InputName.path.to[0].attribute``, ``$variable.name`` and backticked names for
  anything outside ``[a-zA-Z][a-zA-Z0-9_]*`` (`` $input.`my-input`.`a-b` ``);
- substitution templates ``'text ${expression} text'`` (single-quoted strings only, nestable);
- the documented functions: ``timeout``, ``convert``, ``isNull``, ``isUndefined``,
  ``triggerType``, ``currentInput``, ``startsWith``, ``endsWith``, ``contains``, ``bitor``,
  ``bitand``, ``bitxor``, ``bitnot``.

Documented rules it follows: only Integer and Decimal mix, so ``'a' + 1``, ``'a' * 2`` and
``1 == '1'`` are type errors; ``+`` of two strings concatenates; ``/`` of two integers gives an
integer; a ``||`` operand with undefined data counts as ``false``; a condition whose value is not
a Boolean (including one with no valid value at all) counts as ``false``.

Choices where the guide is silent (each pinned by a test):

- integer division rounds toward zero (``-7 / 2`` is ``-3``), like the JVM the service ran on;
- division by zero, integer or decimal, has no valid value (``ExpressionEvaluationError``);
- integers are unbounded, decimals are Python floats and render with ``repr`` (``50.018``);
- strings compare by code point; Booleans support only ``==`` and ``!=``;
- JSON ``null``, objects and arrays can be read and tested (``isNull``) but no operator takes them;
  a template renders them as compact JSON;
- in strings, ``\\'`` ``\\"`` ``\\\\`` and ``\\$`` escape that character; no other escapes;
- the guide's ``'123'  # Integer`` example describes action fields; inside an expression a
  quoted ``'123'`` is a String, or ``'123'`` and ``'hello'`` could not be told apart.

This module and its ``expressions_*`` siblings are pure: no I/O, no clock, no threads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ordered_sender.emulator.expressions_context import (
    EvaluationContext,
    TriggerType,
    Value,
    VariableValue,
)
from ordered_sender.emulator.expressions_errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    ExpressionUndefinedError,
)
from ordered_sender.emulator.expressions_functions import Call, Function
from ordered_sender.emulator.expressions_nodes import (
    InputReference,
    Literal,
    Node,
    VariableReference,
)
from ordered_sender.emulator.expressions_parser import parse_tree

__all__ = [
    "EvaluationContext",
    "Expression",
    "ExpressionError",
    "ExpressionEvaluationError",
    "ExpressionSyntaxError",
    "ExpressionTypeError",
    "ExpressionUndefinedError",
    "TriggerType",
    "Value",
    "VariableValue",
    "parse",
]


@dataclass(frozen=True, slots=True)
class Expression:
    """A parsed expression: immutable, safe to share and to evaluate any number of times."""

    text: str
    """The text it was parsed from."""
    tree: Node = field(repr=False, compare=False)
    """The syntax tree; an implementation detail that ``evaluate`` walks."""

    def evaluate(self, context: EvaluationContext) -> Value:
        """The value of the expression for one message (or timer expiry).

        Raises ``ExpressionEvaluationError`` (a ``ExpressionTypeError`` or
        ``ExpressionUndefinedError`` when it is one of those) when the expression has no valid
        value in ``context``; the error names this expression and the position of the part
        that failed.
        """
        try:
            return self.tree.evaluate(context)
        except ExpressionEvaluationError as error:
            error.text = self.text
            raise

    def evaluate_condition(self, context: EvaluationContext) -> bool:
        """The expression as an event condition: true only if it evaluates to ``true``.

        IoT Events documents that a condition whose result is not a Boolean "is equivalent to
        false", and that an invalid expression (a failed ``convert``, undefined data) is too.
        """
        try:
            return self.evaluate(context) is True
        except ExpressionEvaluationError:
            return False

    def input_references(self) -> frozenset[str]:
        """Names of the inputs the expression reads with ``$input.<name>...``."""
        return frozenset(
            node.input_name for node in _walk(self.tree) if isinstance(node, InputReference)
        )

    def variable_references(self) -> frozenset[str]:
        """Names of the variables the expression reads with ``$variable.<name>``."""
        return frozenset(
            node.name for node in _walk(self.tree) if isinstance(node, VariableReference)
        )

    def timer_references(self) -> frozenset[str]:
        """Timer names written as string literals in ``timeout("...")`` calls."""
        return frozenset(
            node.arguments[0].value
            for node in _walk(self.tree)
            if isinstance(node, Call)
            and node.function is Function.TIMEOUT
            and isinstance(node.arguments[0], Literal)
            and isinstance(node.arguments[0].value, str)
        )


def _walk(node: Node) -> list[Node]:
    nodes = [node]
    for child in node.children():
        nodes.extend(_walk(child))
    return nodes


def parse(text: str) -> Expression:
    """Parse ``text`` as an IoT Events expression.

    Raises ``ExpressionSyntaxError`` (an ``ExpressionError``, itself a ``ValueError``) naming the
    text and the position of the first problem.
    """
    return Expression(text, parse_tree(text))

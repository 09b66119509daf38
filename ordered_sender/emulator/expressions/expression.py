"""``Expression`` (a parsed expression) and ``parse``, the entry point of the language.

An ``Expression`` is parsed once when a detector model is stored and evaluated many times, once
per message or timer expiry; it also lists what it references (inputs, variables, timers) for
the checks a detector model must pass.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ordered_sender.emulator.expressions.context import (
    EvaluationContext,
    Value,
)
from ordered_sender.emulator.expressions.errors import (
    ExpressionEvaluationError,
)
from ordered_sender.emulator.expressions.functions import Call, Function
from ordered_sender.emulator.expressions.nodes import (
    Binary,
    InputReference,
    Literal,
    Logical,
    Node,
    Unary,
    VariableReference,
)
from ordered_sender.emulator.expressions.parser import parse_tree
from ordered_sender.emulator.expressions.values import BinaryOperator


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

    def input_paths(self) -> frozenset[tuple[str, tuple[str | int, ...]]]:
        """``(input name, path)`` of every ``$input.<name>.<path>`` reference."""
        return frozenset(
            (node.input_name, node.path)
            for node in _walk(self.tree)
            if isinstance(node, InputReference)
        )

    def variable_references(self) -> frozenset[str]:
        """Names of the variables the expression reads with ``$variable.<name>``."""
        return frozenset(
            node.name for node in _walk(self.tree) if isinstance(node, VariableReference)
        )

    def timer_references(self) -> frozenset[str]:
        """Timer names written as string literals in ``timeout("...")`` calls."""
        return self._literal_arguments(Function.TIMEOUT)

    def current_input_references(self) -> frozenset[str]:
        """Input names written as string literals in ``currentInput("...")`` calls."""
        return self._literal_arguments(Function.CURRENT_INPUT)

    def is_never_a_string(self) -> bool:
        """Whether the expression, whatever the data, evaluates to a number or a Boolean.

        Decided from the form alone, as AWS's analyser does for a JSON payload's content: a
        number or Boolean literal, a comparison, ``&&``/``||``, a prefix operator, or
        arithmetic with a number literal. References and function calls may be strings.
        """
        return _never_a_string(self.tree)

    def _literal_arguments(self, function: Function) -> frozenset[str]:
        return frozenset(
            node.arguments[0].value
            for node in _walk(self.tree)
            if isinstance(node, Call)
            and node.function is function
            and isinstance(node.arguments[0], Literal)
            and isinstance(node.arguments[0].value, str)
        )


_NOT_STRING_OPERATORS = frozenset(BinaryOperator) - {BinaryOperator.ADD}


def _never_a_string(node: Node) -> bool:
    if isinstance(node, Literal):
        return not isinstance(node.value, str)
    if isinstance(node, Logical | Unary):
        return True
    if isinstance(node, Binary):
        if node.operator in _NOT_STRING_OPERATORS:
            return True
        # '+' concatenates only two strings: a number on either side makes it arithmetic.
        return _never_a_string(node.left) or _never_a_string(node.right)
    return False


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

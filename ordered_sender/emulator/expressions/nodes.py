"""The syntax tree of an IoT Events expression; each node knows how to evaluate itself.

Nodes are frozen values built once by the parser and evaluated many times, so they hold no
per-evaluation state: everything an evaluation reads comes from the ``EvaluationContext``.
Function calls live in ``functions``, next to the functions themselves.

Where the documentation is silent we chose, and pin in tests:

- ``&&`` and ``||`` evaluate left to right and stop as soon as the result is known;
- a ``||`` operand that meets undefined data counts as ``false`` (documented), so
  ``isUndefined($input.In.a) || $input.In.a > 3`` works; ``&&`` has no such rule and the
  undefined data makes the whole expression invalid;
- ``$input.In.path`` is undefined when the path leads nowhere: a missing key, an index past the
  end, a key on a non-object or an index on a non-array.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Protocol

from ordered_sender.emulator.expressions.context import EvaluationContext, Value
from ordered_sender.emulator.expressions.errors import ExpressionUndefinedError
from ordered_sender.emulator.expressions.values import (
    BinaryOperator,
    apply_binary,
    bitwise_not,
    logical_not,
    negate,
    render,
    require_boolean,
)


class Node(Protocol):
    """Anything in the tree: it evaluates to a value and lists the nodes below it."""

    @property
    def position(self) -> int:
        """Offset in the expression text where this node starts (for error messages)."""
        ...

    def evaluate(self, context: EvaluationContext) -> Value:
        """The node's value in ``context``; raises ``ExpressionEvaluationError`` if it has none."""
        ...

    def children(self) -> tuple[Node, ...]:
        """The nodes directly below this one."""
        ...


@dataclass(frozen=True, slots=True)
class Literal:
    """An integer, decimal, string or Boolean written in the expression."""

    value: bool | int | float | str
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        return self.value

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, slots=True)
class Template:
    """``'text ${expression} text'``: the parts rendered as text and joined."""

    parts: tuple[Node, ...]
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        return "".join(render(part.evaluate(context)) for part in self.parts)

    def children(self) -> tuple[Node, ...]:
        return self.parts


@dataclass(frozen=True, slots=True)
class InputReference:
    """``$input.InputName.path.to[0].attribute``: a value from an input's JSON payload."""

    input_name: str
    path: tuple[str | int, ...]
    """Object keys (``str``) and array indexes (``int``), in order; never empty."""
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        found, payload = context.input_payload(self.input_name)
        current: Value = payload
        if not found:
            raise ExpressionUndefinedError(
                f"$input.{self.input_name} is undefined: no message of input "
                f"{self.input_name!r} is being evaluated",
                position=self.position,
            )
        walked = f"$input.{self.input_name}"
        for step in self.path:
            current, found = _step(current, step)
            walked += f"[{step}]" if isinstance(step, int) else f".{step}"
            if not found:
                raise ExpressionUndefinedError(
                    f"{walked} is undefined in the payload of input {self.input_name!r}",
                    position=self.position,
                )
        return current

    def children(self) -> tuple[Node, ...]:
        return ()


def _step(container: Any, step: str | int) -> tuple[Any, bool]:
    if isinstance(step, int):
        if isinstance(container, list) and step < len(container):
            return container[step], True
        return None, False
    if isinstance(container, dict) and step in container:
        return container[step], True
    return None, False


@dataclass(frozen=True, slots=True)
class VariableReference:
    """``$variable.name``: the value most recently set by a ``setVariable`` action."""

    name: str
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        if self.name not in context.variables:
            raise ExpressionUndefinedError(
                f"$variable.{self.name} is undefined: the variable was never set",
                position=self.position,
            )
        return context.variables[self.name]

    def children(self) -> tuple[Node, ...]:
        return ()


class UnaryOperator(Enum):
    """The prefix operators."""

    NOT = "!"
    BIT_NOT = "~"
    MINUS = "-"


@dataclass(frozen=True, slots=True)
class Unary:
    """``!operand``, ``~operand`` or ``-operand``."""

    operator: UnaryOperator
    operand: Node
    position: int

    def evaluate(self, context: EvaluationContext) -> Value:
        value = self.operand.evaluate(context)
        if self.operator is UnaryOperator.NOT:
            return logical_not(value, self.position)
        if self.operator is UnaryOperator.BIT_NOT:
            return bitwise_not(value, self.position)
        return negate(value, self.position)

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class Binary:
    """``left <operator> right`` for every operator that evaluates both sides."""

    operator: BinaryOperator
    left: Node
    right: Node
    position: int
    """Offset of the operator symbol."""

    def evaluate(self, context: EvaluationContext) -> Value:
        left = self.left.evaluate(context)
        right = self.right.evaluate(context)
        return apply_binary(self.operator, left, right, self.position)

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


class LogicalOperator(Enum):
    """The short-circuit operators."""

    AND = "&&"
    OR = "||"


@dataclass(frozen=True, slots=True)
class Logical:
    """``left && right`` or ``left || right``."""

    operator: LogicalOperator
    left: Node
    right: Node
    position: int
    """Offset of the operator symbol."""

    def evaluate(self, context: EvaluationContext) -> Value:
        left = self._operand(self.left, context)
        if left == (self.operator is LogicalOperator.OR):
            return left
        return self._operand(self.right, context)

    def _operand(self, operand: Node, context: EvaluationContext) -> bool:
        if self.operator is LogicalOperator.AND:
            return require_boolean(operand.evaluate(context), "&&", self.position)
        try:
            value = operand.evaluate(context)
        except ExpressionUndefinedError:
            # Documented: "When a subexpression of || contains undefined data, that
            # subexpression is treated as false."
            return False
        return require_boolean(value, "||", self.position)

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)

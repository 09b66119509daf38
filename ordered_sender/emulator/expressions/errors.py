"""The errors of the IoT Events expression language, raised by parsing and by evaluation.

::

    ValueError
     └── ExpressionError                 anything wrong with an expression; names text and position
          ├── ExpressionSyntaxError      the text is not an expression (raised by ``parse``)
          └── ExpressionEvaluationError  the expression has no valid value in this context
               ├── ExpressionTypeError       operands of incompatible types, failed ``convert``
               └── ExpressionUndefinedError  a reference names data that is not there

IoT Events treats an expression without a valid value as ``false`` when it is a condition and
skips the action otherwise, so the runtime catches ``ExpressionEvaluationError`` as a whole; the
subclasses exist because ``||`` and ``isUndefined`` treat undefined data differently from type
errors.
"""

from __future__ import annotations


class ExpressionError(ValueError):
    """Something is wrong with an expression: the message names the text and the position.

    ``text`` is the whole expression and ``position`` a 0-based offset into it. Evaluation code
    raises without ``text``; ``Expression.evaluate`` fills it in before the error leaves it.
    """

    def __init__(self, detail: str, *, position: int, text: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.position = position
        self.text = text

    def __str__(self) -> str:
        if self.text is None:
            return f"{self.detail} (at position {self.position})"
        return f"{self.detail} (at position {self.position} of expression {self.text!r})"


class ExpressionSyntaxError(ExpressionError):
    """The text is not a valid IoT Events expression; fix the text at ``position``."""


class ExpressionEvaluationError(ExpressionError):
    """The expression has no valid value for this message, variables and timers.

    Raised directly for failures that are neither a type error nor undefined data, such as a
    division by zero.
    """


class ExpressionTypeError(ExpressionEvaluationError):
    """An operator or function got operands of incompatible types, or ``convert`` failed."""


class ExpressionUndefinedError(ExpressionEvaluationError):
    """A reference names an input attribute, array element or variable that has no value."""

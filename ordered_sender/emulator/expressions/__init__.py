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
``1 == '1'`` are type errors; ``+`` of two strings concatenates; ``/`` of two integers gives a
rounded integer (``7 / 2`` is ``4``, halves away from zero); ``convert`` does only the four
documented conversions; a ``||`` operand with undefined data counts as ``false``; a condition
whose value is not a Boolean (including one with no valid value at all) counts as ``false``;
``timeout("t")`` is checked only when it is evaluated (``&&`` and ``||`` short-circuit).

Choices where the guide is silent (each pinned by a test):

- division by zero, integer or decimal, has no valid value (``ExpressionEvaluationError``);
- integers are unbounded, decimals are Python floats and render with ``repr`` (``50.018``);
- strings compare by code point; Booleans support only ``==`` and ``!=``;
- JSON ``null``, objects and arrays can be read and tested (``isNull``) but no operator takes them;
  a template renders them as compact JSON;
- in strings, ``\\'`` ``\\"`` ``\\\\`` and ``\\$`` escape that character; no other escapes;
- quoted literals: the guide contradicts itself. "Expression usage" lists ``'123'  # Integer``,
  ``'123.12'  # Decimal``, ``'true'  # Boolean``, while "Expressions" > Operators says string
  literals are in single quotes and shows ``'my' + 'string'`` -> ``'mystring'``, and its string
  functions take quoted text (``startsWith($input.MyInput.status, "off")``). Read as the table
  says, ``'1' + '2'`` would be ``3`` and no string could hold digits; so a quoted literal is a
  String and ``123``, ``123.12``, ``true`` unquoted are the Integer, Decimal and Boolean.

Modules: ``lexer`` (text to tokens), ``parser`` (tokens to a syntax tree), ``nodes`` (the tree,
each node evaluates itself), ``functions`` (the built-in functions), ``values`` (types,
operators, ``convert``), ``context`` (what an evaluation may read), ``errors`` (the exception
tree), ``expression`` (``Expression`` and ``parse``). All of them are pure: no I/O, no clock,
no threads. This package knows nothing of detectors, the HTTP endpoint or the sender.
"""

from ordered_sender.emulator.expressions.context import (
    EvaluationContext,
    TriggerType,
    Value,
    VariableValue,
)
from ordered_sender.emulator.expressions.errors import (
    ExpressionError,
    ExpressionEvaluationError,
    ExpressionSyntaxError,
    ExpressionTypeError,
    ExpressionUndefinedError,
)
from ordered_sender.emulator.expressions.expression import Expression, parse

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

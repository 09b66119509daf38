"""Recursive-descent parser from IoT Events expression text to a syntax tree.

The guide lists the operators but not their precedence; we use Java's (the service's language,
and C's), loosest first::

    ||   &&   |   ^   &   == !=   < <= > >=   + -   * /   prefix ! ~ -

All binary operators group left to right. The guide shows array indexes as integer literals
(``temperatures[2]``), so an index must be one; a reference needs at least one path element
after the input name, and a variable reference is just ``$variable.name``.

Parsing and evaluation recurse, so nesting is bounded (``MAX_NESTING``, ``MAX_DEPTH``): a
model with a pathological expression is refused with a syntax error instead of crashing the
emulator with ``RecursionError``. Real detector conditions are far below both limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ordered_sender.emulator.expressions.errors import ExpressionSyntaxError
from ordered_sender.emulator.expressions.functions import Call, Function
from ordered_sender.emulator.expressions.lexer import Scanner, Token, TokenKind
from ordered_sender.emulator.expressions.nodes import (
    Binary,
    InputReference,
    Literal,
    Logical,
    LogicalOperator,
    Node,
    Template,
    Unary,
    UnaryOperator,
    VariableReference,
)
from ordered_sender.emulator.expressions.values import BinaryOperator, ConversionType

# Binary precedence levels, loosest first.
_LEVELS: tuple[frozenset[str], ...] = (
    frozenset({"||"}),
    frozenset({"&&"}),
    frozenset({"|"}),
    frozenset({"^"}),
    frozenset({"&"}),
    frozenset({"==", "!="}),
    frozenset({"<", "<=", ">", ">="}),
    frozenset({"+", "-"}),
    frozenset({"*", "/"}),
)
_LOGICAL = {operator.value: operator for operator in LogicalOperator}
_BINARY = {operator.value: operator for operator in BinaryOperator}
_UNARY = {operator.value: operator for operator in UnaryOperator}
_FUNCTIONS = {function.value: function for function in Function}
_CONVERSION_KEYWORDS = frozenset(target.value.lower() for target in ConversionType)
_BOOLEANS = {"true": True, "false": False}

MAX_NESTING = 32
"""Most parentheses, prefix operators, calls and templates that may enclose one another."""
MAX_DEPTH = 200
"""Most levels of the syntax tree, which long operator chains (``1 + 1 + ...``) also build."""


def parse_tree(text: str) -> Node:
    """The syntax tree of ``text``; raises ``ExpressionSyntaxError`` naming the position."""
    tree = _Parser(text).parse()
    depth = _depth(tree)
    if depth > MAX_DEPTH:
        raise ExpressionSyntaxError(
            f"the expression is {depth} levels deep, more than the {MAX_DEPTH} supported; "
            "group long chains of operators with parentheses",
            position=0,
            text=text,
        )
    return tree


def _depth(tree: Node) -> int:
    deepest = 0
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        deepest = max(deepest, depth)
        pending.extend((child, depth + 1) for child in node.children())
    return deepest


class _Parser:
    def __init__(self, text: str) -> None:
        self._text = text
        self._scanner = Scanner(text)
        self._token = self._scanner.token_at(0)
        self._nesting_level = 0

    def parse(self) -> Node:
        if self._at_end():
            raise self._error("the expression is empty", self._token)
        tree = self._binary(0)
        if not self._at_end():
            raise self._error(
                f"unexpected {self._token.describe()} after a complete expression", self._token
            )
        return tree

    def _error(self, detail: str, token: Token) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(detail, position=token.position, text=self._text)

    def _advance(self) -> Token:
        token = self._token
        self._token = self._scanner.token_at(token.end)
        return token

    def _at_end(self) -> bool:
        return self._token.kind is TokenKind.END

    def _at_symbol(self, *symbols: str) -> bool:
        return self._token.kind is TokenKind.SYMBOL and self._token.value in symbols

    def _expect_symbol(self, symbol: str, context: str) -> Token:
        if not self._at_symbol(symbol):
            raise self._error(
                f"expected {symbol!r} {context}, found {self._token.describe()}", self._token
            )
        return self._advance()

    @contextmanager
    def _nested(self, opener: Token) -> Iterator[None]:
        self._nesting_level += 1
        if self._nesting_level > MAX_NESTING:
            raise self._error(
                f"the expression nests more than {MAX_NESTING} levels deep here", opener
            )
        try:
            yield
        finally:
            self._nesting_level -= 1

    def _binary(self, level: int) -> Node:
        if level == len(_LEVELS):
            return self._unary()
        left = self._binary(level + 1)
        while self._token.kind is TokenKind.SYMBOL and self._token.value in _LEVELS[level]:
            operator = self._advance()
            right = self._binary(level + 1)
            if operator.value in _LOGICAL:
                left = Logical(_LOGICAL[operator.value], left, right, operator.position)
            else:
                left = Binary(_BINARY[operator.value], left, right, operator.position)
        return left

    def _unary(self) -> Node:
        if self._token.kind is TokenKind.SYMBOL and self._token.value in _UNARY:
            operator = self._advance()
            with self._nested(operator):
                return Unary(_UNARY[operator.value], self._unary(), operator.position)
        return self._primary()

    def _primary(self) -> Node:
        token = self._token
        if token.kind is TokenKind.INTEGER:
            self._advance()
            return Literal(int(token.value), token.position)
        if token.kind is TokenKind.DECIMAL:
            self._advance()
            return Literal(float(token.value), token.position)
        if token.kind is TokenKind.STRING:
            self._advance()
            return Literal(token.value, token.position)
        if token.kind is TokenKind.TEMPLATE_HEAD:
            return self._template()
        if token.kind is TokenKind.REFERENCE:
            return self._reference()
        if token.kind is TokenKind.IDENTIFIER:
            return self._name()
        if self._at_symbol("("):
            self._advance()
            with self._nested(token):
                inner = self._binary(0)
            self._expect_symbol(")", f"to close the '(' at position {token.position}")
            return inner
        raise self._error(f"expected a value, found {token.describe()}", token)

    def _name(self) -> Node:
        token = self._advance()
        if token.value in _BOOLEANS:
            return Literal(_BOOLEANS[token.value], token.position)
        if token.value in _FUNCTIONS and self._at_symbol("("):
            return self._call(_FUNCTIONS[token.value], token)
        if self._at_symbol("("):
            known = ", ".join(sorted(_FUNCTIONS))
            raise self._error(f"unknown function {token.value!r}; the functions are {known}", token)
        raise self._error(
            f"unknown name {token.value!r}: references start with $input. or $variable., "
            "strings are quoted and the Booleans are true and false",
            token,
        )

    def _call(self, function: Function, name: Token) -> Node:
        self._advance()  # the '('
        arguments: list[Node] = []
        while not self._at_symbol(")"):
            if arguments:
                self._expect_symbol(",", f"between the arguments of {function.value}()")
            with self._nested(name):
                arguments.append(self._argument(function, len(arguments)))
        self._advance()  # the ')'
        if len(arguments) != function.arity:
            raise self._error(
                f"{function.value}() takes {function.arity} argument(s), got {len(arguments)}",
                name,
            )
        return Call(function, tuple(arguments), name.position)

    def _argument(self, function: Function, index: int) -> Node:
        token = self._token
        is_keyword = token.kind is TokenKind.IDENTIFIER and token.value.lower() in (
            _CONVERSION_KEYWORDS
        )
        if function is Function.CONVERT and index == 0 and is_keyword:
            # convert(Decimal, ...) names its type with a bare keyword.
            self._advance()
            return Literal(token.value, token.position)
        return self._binary(0)

    def _reference(self) -> Node:
        root = self._advance()
        self._expect_symbol(".", f"after ${root.value}")
        name = self._path_name(f"a name after ${root.value}.")
        if root.value == "variable":
            return VariableReference(name, root.position)
        path: list[str | int] = []
        while self._at_symbol(".", "["):
            if self._advance().value == ".":
                path.append(self._path_name("a name after '.'"))
                continue
            index = self._token
            if index.kind is not TokenKind.INTEGER:
                raise self._error(
                    f"an array index must be an integer such as [0], found {index.describe()}",
                    index,
                )
            self._advance()
            self._expect_symbol("]", "to close the array index")
            path.append(int(index.value))
        if not path:
            raise self._error(
                f"$input.{name} needs a path to an attribute, e.g. $input.{name}.temperature",
                self._token,
            )
        return InputReference(name, tuple(path), root.position)

    def _path_name(self, expected: str) -> str:
        token = self._token
        if token.kind not in (TokenKind.IDENTIFIER, TokenKind.QUOTED_IDENTIFIER):
            raise self._error(f"expected {expected}, found {token.describe()}", token)
        self._advance()
        return token.value

    def _template(self) -> Node:
        head = self._token
        quote = self._text[head.position]
        parts: list[Node] = [Literal(head.value, head.position)] if head.value else []
        segment = head
        while segment.kind is not TokenKind.TEMPLATE_TAIL:
            self._token = self._scanner.token_at(segment.end)
            if self._at_symbol("}"):
                raise self._error("a '${}' substitution needs an expression", self._token)
            with self._nested(head):
                parts.append(self._binary(0))
            if not self._at_symbol("}"):
                raise self._error(
                    f"expected '}}' to close the '${{' substitution, found "
                    f"{self._token.describe()}",
                    self._token,
                )
            # The text after the '}' is string text again, not tokens.
            segment = self._scanner.template_continuation(self._token.end, quote)
            if segment.value:
                parts.append(Literal(segment.value, segment.position))
        self._token = self._scanner.token_at(segment.end)
        return Template(tuple(parts), head.position)

"""Turns IoT Events expression text into tokens, one at a time, for the parser.

The scanner is driven by position rather than producing a token list up front because a
substitution template (``'text ${expression} text'``) nests a whole expression inside a string
literal: the parser parses the expression after a ``TEMPLATE_HEAD`` token and then asks the
scanner to resume the string after the closing ``}``.

Lexical rules, from the IoT Events developer guide where it has them:

- identifiers match ``[a-zA-Z][a-zA-Z0-9_]*``; any other name goes in backticks (`` `_value` ``);
- ``$input`` and ``$variable`` start references;
- integers are digits; decimals have a fractional part or an exponent (``1.5``, ``2e3``);
- strings are in single quotes (which may hold ``${...}`` templates) or double quotes (which are
  plain, as in ``timeout("timer-name")``); the docs give no escapes, so we choose the least
  surprising ones: a backslash before a quote, a backslash or ``$`` stands for that character
  and any other backslash is kept as written.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from ordered_sender.emulator.expressions.errors import ExpressionSyntaxError


class TokenKind(Enum):
    """What a token is; punctuation and operators are all ``SYMBOL`` with the symbol as value."""

    INTEGER = "integer"
    DECIMAL = "decimal"
    STRING = "string"
    TEMPLATE_HEAD = "template start"
    """Text of a single-quoted string up to its first ``${``."""
    TEMPLATE_MIDDLE = "template text"
    """Text between a template's ``}`` and its next ``${``."""
    TEMPLATE_TAIL = "template end"
    """Text between a template's last ``}`` and the closing quote."""
    IDENTIFIER = "name"
    QUOTED_IDENTIFIER = "backticked name"
    REFERENCE = "reference"
    """``$input`` or ``$variable``; the value is ``input`` or ``variable``."""
    SYMBOL = "symbol"
    END = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    """One token: its kind, its value (unescaped for strings) and where it is in the text."""

    kind: TokenKind
    value: str
    position: int
    """Offset of the token's first character."""
    end: int
    """Offset just after the token's last character."""

    def describe(self) -> str:
        """The token as an error message shows it."""
        if self.kind is TokenKind.END:
            return "the end of the expression"
        if self.kind is TokenKind.SYMBOL:
            return repr(self.value)
        return f"{self.kind.value} {self.value!r}"


REFERENCE_ROOTS = frozenset({"input", "variable"})

_WHITESPACE = re.compile(r"\s*")
_NUMBER = re.compile(r"\d+(\.\d+)?([eE][+-]?\d+)?")
_IDENTIFIER = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_NAME_CHARACTER = re.compile(r"[a-zA-Z0-9_]")
# Longest first, so that '||' is not read as two '|'.
_SYMBOLS = (
    "||", "&&", "==", "!=", "<=", ">=",
    "<", ">", "+", "-", "*", "/", "|", "&", "^", "!", "~", "(", ")", "[", "]", ",", ".", "}",
)  # fmt: skip
_MISTAKES = {
    "%": "'%' is not an IoT Events operator; the arithmetic operators are + - * /",
    "=": "'=' is not an IoT Events operator; compare with '=='",
    "_": "names that do not match [a-zA-Z][a-zA-Z0-9_]* must be in backticks, e.g. `_value`",
    "{": "'{' is only allowed inside a string, as part of a '${...}' substitution template",
}
_ESCAPABLE = frozenset("'\"\\$")


class Scanner:
    """Reads tokens from expression text at the positions the parser asks for."""

    def __init__(self, text: str) -> None:
        self._text = text

    def _error(self, detail: str, position: int) -> ExpressionSyntaxError:
        return ExpressionSyntaxError(detail, position=position, text=self._text)

    def token_at(self, position: int) -> Token:
        """The token starting at ``position``, after any whitespace."""
        text = self._text
        whitespace = _WHITESPACE.match(text, position)
        start = whitespace.end() if whitespace else position
        if start >= len(text):
            return Token(TokenKind.END, "", start, start)
        character = text[start]
        if character in "'\"":
            return self._string(start + 1, character, head=True)
        if character == "`":
            return self._quoted_identifier(start)
        if character == "$":
            return self._reference(start)
        if character.isdigit():
            return self._number(start)
        identifier = _IDENTIFIER.match(text, start)
        if identifier:
            return Token(TokenKind.IDENTIFIER, identifier.group(), start, identifier.end())
        for symbol in _SYMBOLS:
            if text.startswith(symbol, start):
                return Token(TokenKind.SYMBOL, symbol, start, start + len(symbol))
        raise self._error(_MISTAKES.get(character, f"unexpected character {character!r}"), start)

    def template_continuation(self, position: int, quote: str) -> Token:
        """The rest of a template string after the ``}`` that closes one substitution."""
        return self._string(position, quote, head=False)

    def _string(self, position: int, quote: str, *, head: bool) -> Token:
        text = self._text
        start = position - 1 if head else position
        characters: list[str] = []
        index = position
        while index < len(text):
            character = text[index]
            if character == "\\" and index + 1 < len(text) and text[index + 1] in _ESCAPABLE:
                characters.append(text[index + 1])
                index += 2
                continue
            if character == quote:
                kind = TokenKind.STRING if head else TokenKind.TEMPLATE_TAIL
                return Token(kind, "".join(characters), start, index + 1)
            if quote == "'" and text.startswith("${", index):
                kind = TokenKind.TEMPLATE_HEAD if head else TokenKind.TEMPLATE_MIDDLE
                return Token(kind, "".join(characters), start, index + 2)
            characters.append(character)
            index += 1
        raise self._error(f"string starting with {quote} is never closed", start)

    def _quoted_identifier(self, start: int) -> Token:
        close = self._text.find("`", start + 1)
        if close == -1:
            raise self._error("backticked name is never closed", start)
        if close == start + 1:
            raise self._error("backticked name is empty", start)
        return Token(TokenKind.QUOTED_IDENTIFIER, self._text[start + 1 : close], start, close + 1)

    def _reference(self, start: int) -> Token:
        identifier = _IDENTIFIER.match(self._text, start + 1)
        root = identifier.group() if identifier else ""
        if root not in REFERENCE_ROOTS:
            raise self._error(
                f"'${root}' is not a reference; references start with $input. or $variable.",
                start,
            )
        return Token(TokenKind.REFERENCE, root, start, start + 1 + len(root))

    def _number(self, start: int) -> Token:
        number = _NUMBER.match(self._text, start)
        assert number is not None  # the caller saw a digit at start
        end = number.end()
        if end < len(self._text) and _NAME_CHARACTER.match(self._text, end):
            raise self._error(
                f"malformed number {self._text[start : end + 1]!r}: a number must not run into "
                "a name",
                start,
            )
        is_decimal = number.group(1) is not None or number.group(2) is not None
        kind = TokenKind.DECIMAL if is_decimal else TokenKind.INTEGER
        return Token(kind, number.group(), start, end)

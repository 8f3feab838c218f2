"""Safe arithmetic: a tokenizer and a precedence-climbing parser, no eval.

Grammar: numbers (``12``, ``3.5``, ``1e3``, ``0x1f``), ``+ - * / // % **``
(``^`` is accepted as power), unary ``+``/``-``, parentheses, the constants
``pi``, ``e``, ``tau`` and the functions ``sqrt abs round floor ceil exp
log ln log10 log2 sin cos tan asin acos atan min max``. Integers stay exact.
Anything else, an expression longer than :data:`MAX_LENGTH`, a power whose
result would exceed about 10**1000, a division by zero or a math domain
error raises :class:`CalcError` with a message fit to show.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_LENGTH", "CalcError", "evaluate"]

MAX_LENGTH = 500
MAX_DIGITS = 1000
Number = int | float

_TOKEN = re.compile(
    r"\s*(?:(?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z_0-9]*)|(?P<op>\*\*|//|[-+*/%^(),]))"
)
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": math.sqrt, "abs": abs, "round": round, "floor": math.floor, "ceil": math.ceil,
    "exp": math.exp, "log": math.log, "ln": math.log, "log10": math.log10, "log2": math.log2,
    "sin": math.sin, "cos": math.cos, "tan": math.tan, "asin": math.asin, "acos": math.acos,
    "atan": math.atan, "min": min, "max": max,
}  # fmt: skip
_BINARY = {"+": 1, "-": 1, "*": 2, "/": 2, "//": 2, "%": 2, "**": 4, "^": 4}


class CalcError(ValueError):
    """The expression cannot be evaluated; the message says why."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise CalcError(f"unexpected character {text[position:].strip()[:1]!r}")
        kind = match.lastgroup or "op"
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _power(base: Number, exponent: Number) -> Number:
    if base != 0 and abs(base) != 1 and abs(exponent) * math.log10(abs(base)) > MAX_DIGITS:
        raise CalcError("the result is too large")
    try:
        result: Number = base**exponent
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    if isinstance(result, complex):
        raise CalcError("the result is not a real number")
    return result


def _apply(op: str, left: Number, right: Number) -> Number:
    try:
        if op == "+":
            return left + right
        if op == "-":
            return left - right
        if op == "*":
            big = (
                isinstance(left, int)
                and isinstance(right, int)
                and (left.bit_length() + right.bit_length() > MAX_DIGITS * 4)
            )
            if big:
                raise CalcError("the result is too large")
            return left * right
        if op == "/":
            result = left / right
            return (
                int(result)
                if isinstance(left, int) and isinstance(right, int) and (left % right == 0)
                else result
            )
        if op == "//":
            return left // right
        if op == "%":
            return left % right
        return _power(left, right)
    except ZeroDivisionError:
        raise CalcError("division by zero") from None
    except OverflowError:
        raise CalcError("the result is too large") from None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise CalcError("the expression ends too early")
        self.index += 1
        return token

    def expect(self, op: str) -> None:
        token = self.take()
        if token != ("op", op):
            raise CalcError(f"expected {op!r}, got {token[1]!r}")

    def expression(self, min_precedence: int = 1) -> Number:
        left = self.unary()
        while True:
            token = self.peek()
            if token is None or token[0] != "op" or token[1] not in _BINARY:
                return left
            precedence = _BINARY[token[1]]
            if precedence < min_precedence:
                return left
            self.index += 1
            # ** is right-associative; the others associate to the left.
            right = self.expression(precedence if precedence == 4 else precedence + 1)
            left = _apply(token[1], left, right)

    def unary(self) -> Number:
        token = self.peek()
        if token in (("op", "-"), ("op", "+")):
            self.index += 1
            value = self.expression(3)  # binds tighter than * but looser than **
            return -value if token == ("op", "-") else value
        return self.atom()

    def atom(self) -> Number:
        kind, text = self.take()
        if kind == "num":
            if text[:2].lower() == "0x":
                return int(text, 16)
            return float(text) if any(c in text for c in ".eE") else int(text)
        if kind == "name":
            return self.name(text)
        if text == "(":
            value = self.expression()
            self.expect(")")
            return value
        raise CalcError(f"unexpected {text!r}")

    def name(self, name: str) -> Number:
        lowered = name.lower()
        if lowered in _CONSTANTS:
            return _CONSTANTS[lowered]
        function = _FUNCTIONS.get(lowered)
        if function is None:
            raise CalcError(f"unknown name {name!r}")
        self.expect("(")
        arguments = [self.expression()]
        while self.peek() == ("op", ","):
            self.index += 1
            arguments.append(self.expression())
        self.expect(")")
        try:
            result: Number = function(*arguments)
        except (ValueError, TypeError) as exc:
            raise CalcError(f"{lowered}: {exc}") from None
        except OverflowError:
            raise CalcError("the result is too large") from None
        return result


def evaluate(expression: str) -> Number:
    """The value of `expression`; CalcError if it is not safe arithmetic."""
    if len(expression) > MAX_LENGTH:
        raise CalcError(f"the expression is longer than {MAX_LENGTH} characters")
    tokens = _tokens(expression)
    if not tokens:
        raise CalcError("the expression is empty")
    parser = _Parser(tokens)
    value = parser.expression()
    if parser.peek() is not None:
        raise CalcError(f"unexpected {parser.peek()[1]!r}")  # type: ignore[index]
    if isinstance(value, float) and not math.isfinite(value):
        raise CalcError("the result is not a finite number")
    return value

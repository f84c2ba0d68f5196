"""Formula text to syntax tree, with a LALR(1) grammar run by lark.

Precedence follows Excel, from loosest to tightest: comparison, ``&``,
``+ -``, ``* /``, unary minus. Comparisons do not chain (``a < b < c`` is an
error, not Excel's surprising ``(a < b) < c``). Function names and the
keywords TRUE, FALSE and NULL are case-insensitive; field names are
snake_case ASCII, as Qiao's metadata requires.
"""

from __future__ import annotations

import decimal
import functools
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from qiao.core.formula.errors import FormulaSyntaxError, Position
from qiao.core.formula.nodes import Binary, Call, Field, Literal, Node, Unary

#: The longest formula accepted: far beyond any real one, small enough to parse instantly.
MAX_FORMULA_LENGTH = 10_000
#: The deepest nesting of operators and calls accepted; real formulas stay far below.
MAX_DEPTH = 100

GRAMMAR = r"""
?start: expr

?expr: concat
     | concat COMPARE concat          -> binary

?concat: sum
       | concat AMP sum               -> binary

?sum: product
    | sum ADD product                 -> binary

?product: unary
        | product MUL unary           -> binary

?unary: atom
      | MINUS unary                   -> negate
      | PLUS unary                    -> identity

?atom: NUMBER                         -> number
     | STRING                         -> string
     | TRUE                           -> true
     | FALSE                          -> false
     | NULL                           -> null
     | FUNCTION "(" [expr ("," expr)*] ")" -> call
     | NAME ("." NAME)*               -> field
     | "(" expr ")"

COMPARE: "<>" | "!=" | "<=" | ">=" | "=" | "<" | ">"
AMP: "&"
ADD: "+" | "-"
MUL: "*" | "/"
MINUS.2: "-"
PLUS.2: "+"
NUMBER: /\d+(\.\d+)?/ | /\.\d+/
STRING: /"([^"]|"")*"/
TRUE.3: /true\b/i
FALSE.3: /false\b/i
NULL.3: /null\b/i
FUNCTION.2: /[A-Za-z_][A-Za-z0-9_]*(?=\s*\()/
NAME: /[A-Za-z_][A-Za-z0-9_]*/

%import common.WS
%ignore WS
"""

#: Terminal names as a person would say them, for "expected ..." messages.
_TERMINAL_WORDS = {
    "NUMBER": "a number",
    "STRING": 'text in "double quotes"',
    "NAME": "a field name",
    "FUNCTION": "a function",
    "TRUE": "TRUE",
    "FALSE": "FALSE",
    "NULL": "NULL",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "DOT": "'.'",
    "COMPARE": "a comparison",
    "AMP": "'&'",
    "ADD": "'+' or '-'",
    "MUL": "'*' or '/'",
    "MINUS": "'-'",
    "PLUS": "'+'",
    "$END": "the end of the formula",
}


@functools.cache
def _lark() -> Lark:
    # The contextual lexer lets '-' be unary or binary depending on what the parser expects.
    return Lark(GRAMMAR, parser="lalr", lexer="contextual", propagate_positions=True)


def parse(text: str) -> Node:
    """The syntax tree of ``text``; raises :class:`FormulaSyntaxError` with a position."""
    if len(text) > MAX_FORMULA_LENGTH:
        raise FormulaSyntaxError(f"a formula has at most {MAX_FORMULA_LENGTH} characters")
    if not text.strip():
        raise FormulaSyntaxError("the formula is empty")
    try:
        tree = _lark().parse(text)
        node: Node = _Build().transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text) from None
    except RecursionError:
        raise _too_deep() from None
    if _height(node) > MAX_DEPTH:
        raise _too_deep()
    return node


def _too_deep() -> FormulaSyntaxError:
    # Checking, evaluating and compiling all recurse over the tree.
    return FormulaSyntaxError(f"the formula nests more than {MAX_DEPTH} levels deep")


def _height(root: Node) -> int:
    """The depth of the tree, counted without recursion."""
    height, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        height = max(height, depth)
        if isinstance(node, Unary):
            stack.append((node.operand, depth + 1))
        elif isinstance(node, Binary):
            stack += [(node.left, depth + 1), (node.right, depth + 1)]
        elif isinstance(node, Call):
            stack += [(arg, depth + 1) for arg in node.args]
    return height


def _syntax_error(exc: UnexpectedInput, text: str) -> FormulaSyntaxError:
    position = Position(exc.line, exc.column) if exc.line > 0 else _end(text)
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
        if char == '"':
            message = 'this text has no closing "'
        elif not char.isascii():
            message = (
                f"unexpected character {char!r}; field names are snake_case ASCII "
                'and text goes in "double quotes"'
            )
        else:
            message = f"unexpected character {char!r}"
        return FormulaSyntaxError(message, position, text)
    if isinstance(exc, UnexpectedEOF):
        return FormulaSyntaxError("the formula ends too early", _end(text), text)
    assert isinstance(exc, UnexpectedToken)
    token = exc.token
    if token.type == "$END":
        expected = _expected(exc.expected)
        return FormulaSyntaxError(
            f"the formula ends too early; expected {expected}", _end(text), text
        )
    if token.type == "COMPARE" and "COMPARE" not in exc.expected:
        return FormulaSyntaxError(
            "comparisons do not chain; combine them with AND(...)", position, text
        )
    depth = _depth(text[: token.start_pos])
    return FormulaSyntaxError(
        f"unexpected {str(token)!r}; expected {_expected(exc.expected, depth)}", position, text
    )


def _depth(text: str) -> int:
    """How many parentheses are open at the end of ``text``, ignoring quoted text."""
    depth, quoted = 0, False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif not quoted:
            depth += {"(": 1, ")": -1}.get(char, 0)
    return depth


_VALUE_STARTS = frozenset(
    {"NUMBER", "STRING", "TRUE", "FALSE", "NULL", "FUNCTION", "NAME", "LPAR", "MINUS", "PLUS"}
)
_OPERATORS = frozenset({"COMPARE", "AMP", "ADD", "MUL"})


def _expected(terminals: set[str], depth: int = 1) -> str:
    if terminals == {"NAME"}:
        return "a field name"
    if depth == 0:
        # LALR reports what a call's argument list would allow even outside one.
        terminals = terminals - {"COMMA", "RPAR"}
    words = []
    if terminals & _VALUE_STARTS:
        words.append("a value")
    operators = terminals & _OPERATORS
    if len(operators) > 1:
        words.append("an operator")
    words += [_TERMINAL_WORDS.get(t, t) for t in sorted(operators) if len(operators) == 1]
    words += [_TERMINAL_WORDS[t] for t in ("COMMA", "DOT", "RPAR") if t in terminals]
    if not words:
        return "something else"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _end(text: str) -> Position:
    lines = text.splitlines() or [""]
    return Position(len(lines), len(lines[-1]) + 1)


def _pos(item: Token | Any) -> Position:
    if isinstance(item, Token):
        return Position(item.line or 1, item.column or 1)
    return Position(item.meta.line, item.meta.column)


@v_args(meta=True)
class _Build(Transformer[Token, Node]):
    """lark's parse tree to :mod:`qiao.core.formula.nodes`."""

    def number(self, meta: Any, items: list[Token]) -> Node:
        (token,) = items
        text = str(token)
        value: int | decimal.Decimal = decimal.Decimal(text) if "." in text else int(text)
        return Literal(_pos(token), None, value)

    def string(self, meta: Any, items: list[Token]) -> Node:
        (token,) = items
        return Literal(_pos(token), None, str(token)[1:-1].replace('""', '"'))

    def true(self, meta: Any, items: list[Token]) -> Node:
        return Literal(_pos(items[0]), None, True)

    def false(self, meta: Any, items: list[Token]) -> Node:
        return Literal(_pos(items[0]), None, False)

    def null(self, meta: Any, items: list[Token]) -> Node:
        return Literal(_pos(items[0]), None, None)

    def field(self, meta: Any, items: list[Token]) -> Node:
        return Field(_pos(items[0]), None, tuple(str(t) for t in items))

    def call(self, meta: Any, items: list[Any]) -> Node:
        name, *args = items
        # ``f()`` yields [name, None]: lark's placeholder for the empty optional.
        arguments = tuple(a for a in args if a is not None)
        return Call(_pos(name), None, str(name).upper(), arguments)

    def negate(self, meta: Any, items: list[Any]) -> Node:
        minus, operand = items
        value = operand.value if isinstance(operand, Literal) else None
        if isinstance(value, int | decimal.Decimal) and not isinstance(value, bool):
            # -5 is a number, not an operation: the checker bounds it as the number it is.
            return Literal(_pos(minus), None, -value)
        return Unary(_pos(minus), None, operand)

    def identity(self, meta: Any, items: list[Any]) -> Node:
        node: Node = items[1]
        return node

    def binary(self, meta: Any, items: list[Any]) -> Node:
        left, op, right = items
        symbol = "<>" if str(op) == "!=" else str(op)
        return Binary(_pos(op), None, symbol, left, right)

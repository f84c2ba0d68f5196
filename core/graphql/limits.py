"""A cheap gate on GraphQL documents, run before graphql-core validates them.

graphql-core's rule for overlapping fields compares every pair of fields that
share a response name, so ``{ me { username } me { username } ... }`` 1,200
times costs seconds of CPU inside validation. This gate walks the parsed
document once, in linear time (each fragment measured once), and refuses a
document that is too large, too deep, too aliased or repeats one response name
too often, before any rule runs. It also refuses string literals that no
database stores (NUL, lone surrogates), so they are input errors, not crashes.

Page sizes and the overall row budget are checked by the compiler, which
knows argument values.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
)

from qiao.core.errors import BadUserInput
from qiao.core.text import unstorable

#: Parsing is the costliest step before the gate (about 15 ms per 1,000 tokens), so
#: documents are kept small; GraphiQL's introspection query has under 200 tokens.
MAX_TOKENS = 2_000
MAX_QUERY_BYTES = 100_000
MAX_DEPTH = 12
MAX_ALIASES = 30
#: Fields in a document once its fragments are expanded.
MAX_FIELDS = 1_000
#: Fields that share one response name in one selection set.
MAX_SAME_NAME = 10


@dataclass(frozen=True)
class Size:
    """What a selection set weighs: fields (fragments expanded), aliases and depth."""

    fields: int = 0
    aliases: int = 0
    depth: int = 0

    def __add__(self, other: Size) -> Size:
        return Size(
            self.fields + other.fields,
            self.aliases + other.aliases,
            max(self.depth, other.depth),
        )


class TooComplex(BadUserInput):
    """The document is over one of the gate's limits."""


#: GraphQL's tokens, roughly (comments count too): enough to weigh a document at
#: the speed of the regular-expression engine, before the parser sees it.
_TOKEN = re.compile(
    r'"""(?:[^"\\]|\\.|"(?!""))*"""|"(?:[^"\\\n]|\\.)*"|#[^\n]*|\.\.\.'
    r"|[!$&()\[\]{}:=@|]|-?[0-9][0-9.eE+-]*|[_A-Za-z][_0-9A-Za-z]*"
)
#: Tokens after which a name is not a field's response name.
_NOT_A_FIELD = {"...", "on", "@", "$", ":"}


def check_source(query: str) -> None:
    """Weigh the document's text before it is parsed (parsing costs ~15 ms per 1,000 tokens).

    One pass over its tokens counts them, the aliases and the nesting of
    selections, and the response names repeated in one selection, outside
    arguments; fragments are expanded later, by :func:`check_document`.
    """
    tokens = _TOKEN.findall(query)
    if len(tokens) > MAX_TOKENS:
        raise TooComplex(f"the query has more than {MAX_TOKENS} tokens")
    parens = aliases = 0
    levels: list[Counter[str]] = []
    previous = ""
    for index, token in enumerate(tokens):
        if token == "(":
            parens += 1
        elif token == ")":
            parens -= 1
        elif parens:
            pass  # arguments, variables and their values
        elif token == "{":
            levels.append(Counter())
            if len(levels) > MAX_DEPTH:
                raise _too_deep(len(levels))
        elif token == "}":
            if levels:
                levels.pop()
        elif levels and previous not in _NOT_A_FIELD and (token[0].isalpha() or token[0] == "_"):
            if index + 1 < len(tokens) and tokens[index + 1] == ":":
                aliases += 1
                if aliases > MAX_ALIASES:
                    raise _too_many_aliases()
            _count_name(levels[-1], token)
        previous = token


def _count_name(names: Counter[str], name: str) -> None:
    names[name] += 1
    if names[name] > MAX_SAME_NAME:
        raise TooComplex(f"the query selects {name!r} more than {MAX_SAME_NAME} times in one place")


def _too_deep(depth: int) -> TooComplex:
    return TooComplex(f"the query is nested {depth} levels deep; the limit is {MAX_DEPTH}")


def _too_many_aliases() -> TooComplex:
    return TooComplex(f"the query uses more than {MAX_ALIASES} aliases")


def check_document(document: DocumentNode) -> None:
    """Refuse a document over the limits; linear in its size, fragments counted once."""
    gate = _Gate(
        {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    )
    total = Size()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            total = total + gate.measure(definition.selection_set, ())
            for variable in definition.variable_definitions or ():
                if variable.default_value is not None:
                    _check_value(variable.default_value)
    if total.depth > MAX_DEPTH:
        raise _too_deep(total.depth)
    if total.aliases > MAX_ALIASES:
        raise _too_many_aliases()
    if total.fields > MAX_FIELDS:
        raise _too_many_fields()


def _too_many_fields() -> TooComplex:
    return TooComplex(f"the query selects more than {MAX_FIELDS} fields (fragments expanded)")


class _Gate:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments
        self.measured: dict[str, Size] = {}

    def measure(self, selection_set: SelectionSetNode | None, inside: tuple[str, ...]) -> Size:
        """The size of ``selection_set``; ``inside`` names the fragments being expanded."""
        if selection_set is None:
            return Size()
        size = Size()
        names: Counter[str] = Counter()
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                _count_name(names, (selection.alias or selection.name).value)
                for argument in selection.arguments or ():
                    _check_value(argument.value)
                inner = self.measure(selection.selection_set, inside)
                # Introspection nests by the schema's type wrappers, not by data: its
                # depth is not the caller's to choose, so it is not counted.
                introspection = selection.name.value.startswith("__")
                size = size + Size(
                    inner.fields + 1,
                    inner.aliases + (selection.alias is not None),
                    0 if introspection else inner.depth + 1,
                )
            elif isinstance(selection, InlineFragmentNode):
                size = size + self.measure(selection.selection_set, inside)
            elif isinstance(selection, FragmentSpreadNode):
                size = size + self._fragment(selection.name.value, inside)
            if size.fields > MAX_FIELDS:
                raise _too_many_fields()
        return size

    def _fragment(self, name: str, inside: tuple[str, ...]) -> Size:
        if name in inside or name not in self.fragments:
            return Size()  # a cycle or an unknown fragment: validation names it
        if name not in self.measured:
            self.measured[name] = self.measure(self.fragments[name].selection_set, (*inside, name))
        return self.measured[name]


def _check_value(value: ValueNode) -> None:
    if isinstance(value, StringValueNode):
        problem = unstorable(value.value)
        if problem is not None:
            raise BadUserInput(f"a string in the query contains {problem}")
    elif isinstance(value, ListValueNode):
        for item in value.values:
            _check_value(item)
    elif isinstance(value, ObjectValueNode):
        for field in value.fields:
            _check_value(field.value)

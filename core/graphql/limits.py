"""Static limits on GraphQL documents, checked during (cached) validation.

The rules are built once (a rule made per request would defeat the validation
cache). Page sizes and the overall row budget are checked by the compiler,
which knows argument values.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    ValidationContext,
    ValidationRule,
)

MAX_DEPTH = 12
MAX_ALIASES = 30
MAX_TOKENS = 5_000
MAX_QUERY_BYTES = 100_000


class DepthLimit(ValidationRule):
    """Refuse selections nested deeper than :data:`MAX_DEPTH` (fragments included)."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_: Any) -> None:
        depth = self._depth(node.selection_set, 0, set())
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(
                    f"the query is nested {depth} levels deep; the limit is {MAX_DEPTH}",
                    node,
                    extensions={"code": "BAD_USER_INPUT"},
                )
            )

    def _depth(self, selection_set: Any, level: int, seen: set[str]) -> int:
        if selection_set is None:
            return level
        deepest = level
        for sel in selection_set.selections:
            if isinstance(sel, FieldNode):
                if sel.name.value.startswith("__"):
                    continue
                deepest = max(deepest, self._depth(sel.selection_set, level + 1, seen))
            elif isinstance(sel, InlineFragmentNode):
                deepest = max(deepest, self._depth(sel.selection_set, level, seen))
            elif isinstance(sel, FragmentSpreadNode) and sel.name.value not in seen:
                fragment = self.context.get_fragment(sel.name.value)
                if fragment is not None:
                    inner = self._depth(fragment.selection_set, level, seen | {sel.name.value})
                    deepest = max(deepest, inner)
        return deepest


class AliasLimit(ValidationRule):
    """Refuse documents with more than :data:`MAX_ALIASES` aliases (a batching amplifier)."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self.count = 0

    def enter_field(self, node: FieldNode, *_: Any) -> None:
        if node.alias is not None:
            self.count += 1
            if self.count == MAX_ALIASES + 1:
                self.report_error(
                    GraphQLError(
                        f"the query uses more than {MAX_ALIASES} aliases",
                        node,
                        extensions={"code": "BAD_USER_INPUT"},
                    )
                )


LIMIT_RULES: tuple[type[ValidationRule], ...] = (DepthLimit, AliasLimit)

"""The parts generated types are made of, shared by the schema builder and the aggregates.

The builder (:mod:`qiao.core.graphql.builder`) makes every entity's types and the
aggregates (:mod:`qiao.core.graphql.aggregates`) make ``<entity>Aggregate`` beside
them; both make classes at run time, give them resolvers whose signatures carry
the field's arguments, and word descriptions the same way. Kept here, below both,
so the builder can import the aggregates without either reaching into the other.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from qiao.core.graphql.withheld import Refusal
from qiao.core.metadata.model import FieldDef, Label


@strawberry.enum(description="Sort direction.")
class OrderDirection(enum.Enum):
    ASC = strawberry.enum_value("ASC", description="Smallest first; empty values last.")
    DESC = strawberry.enum_value("DESC", description="Largest first; empty values first.")


@strawberry.type(description="Relay page information.")
class PageInfo:
    has_next_page: bool = strawberry.field(
        description="Whether rows remain past this page in its direction."
    )
    has_previous_page: bool = strawberry.field(
        description="Whether rows lie on the other side of the cursor the page started from."
    )
    start_cursor: str | None = strawberry.field(
        description="The cursor of the page's first edge; null on an empty page."
    )
    end_cursor: str | None = strawberry.field(
        description="The cursor of the page's last edge; null on an empty page."
    )


def describe(label: Label | None, fallback: str = "") -> str:
    """A label as a description: the English text, with the Chinese one when it differs."""
    if label is None:
        return fallback
    english, chinese = label.text("en"), label.text("zh-CN")
    if chinese and chinese != english:
        return f"{english} ({chinese})"
    return english or fallback


def field_label(column: str, field: FieldDef) -> str:
    """How a filter or sort key names its field (the id column of a relation says so)."""
    text = describe(field.label, column)
    return f"the id of {text}" if column != field.name and column.endswith("_id") else text


def from_key(root: Any, info: Info, **_arguments: Any) -> Any:
    """Generated fields read their value from compiled results, by response key.

    The compiler already applied the field's arguments (filter, order, page) in
    SQL, so they are accepted here and not looked at again. A field the caller
    may not read holds its refusal, raised here so the error has its path.
    """
    value = root[info.path.key]
    if isinstance(value, Refusal):
        raise value.error
    return value


def make_class(
    name: str, annotations: dict[str, Any], namespace: dict[str, Any], bases: tuple[type, ...] = ()
) -> type:
    """A class for strawberry to turn into a type: its fields' annotations and values."""
    return type(name, bases, {"__annotations__": annotations, **namespace})


def field_resolver(
    body: Callable[..., Any], arguments: dict[str, Any], returns: Any, *, root: bool = False
) -> Callable[..., Any]:
    """A resolver whose signature strawberry reads to derive the field's arguments.

    ``arguments`` maps each argument's name to its annotation, default and description.
    """

    def resolve(*args: Any, **kwargs: Any) -> Any:
        return body(*args, **kwargs)

    params = []
    if root:
        params.append(inspect.Parameter("root", inspect.Parameter.POSITIONAL_OR_KEYWORD))
    params.append(inspect.Parameter("info", inspect.Parameter.KEYWORD_ONLY, annotation=Info))
    annotated = {
        arg_name: Annotated[annotation, strawberry.argument(description=text)]
        for arg_name, (annotation, _, text) in arguments.items()
    }
    for arg_name, (_, default, _) in arguments.items():
        params.append(
            inspect.Parameter(
                arg_name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=annotated[arg_name],
                default=default,
            )
        )
    resolve.__signature__ = inspect.Signature(params, return_annotation=returns)  # type: ignore[attr-defined]
    resolve.__annotations__ = {**annotated, "info": Info, "return": returns}
    return resolve

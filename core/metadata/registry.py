"""An immutable snapshot of every entity the deployment knows, checked as a whole.

Plugins contribute entities and extend each other's; admins add custom ones at
run time. The registry merges these, resolves relations in both directions and
refuses anything ambiguous (two entities with one plural, a reverse name that
clashes with a field), so the GraphQL schema and the tables built from it are
always consistent. A new snapshot is built for every metadata version.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from qiao.core.errors import MetadataError
from qiao.core.metadata.model import (
    EntityDef,
    FieldDef,
    Label,
    ValidationRule,
    describe_validation_error,
)

_T = TypeVar("_T")


def type_name(entity_name: str) -> str:
    """The GraphQL type name of an entity: ``sales_order`` -> ``SalesOrder``."""
    return "".join(part.capitalize() for part in entity_name.split("_"))


def camel(name: str) -> str:
    """The GraphQL field name of a snake_case name: ``occurred_at`` -> ``occurredAt``."""
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


@dataclass(frozen=True)
class Reverse:
    """The one-to-many side of a relation, exposed on the relation's target."""

    name: str
    label: Label
    entity: str
    field: FieldDef


@dataclass(frozen=True)
class Extension:
    """Fields (and validation rules) one plugin, or admins, add to an entity declared by another."""

    entity: str
    fields: tuple[FieldDef, ...]
    source: str
    validation_rules: tuple[ValidationRule, ...] = ()


@dataclass(frozen=True)
class Registry:
    """All entities of one metadata version, with their relations resolved."""

    entities: Mapping[str, EntityDef]
    version: int = 0
    reverses: Mapping[str, tuple[Reverse, ...]] = field(default_factory=dict)
    _derived: dict[str, Any] = field(default_factory=dict, init=False, compare=False, repr=False)

    @classmethod
    def build(
        cls,
        entities: Iterable[EntityDef],
        extensions: Iterable[Extension] = (),
        version: int = 0,
    ) -> Registry:
        """Merge declarations into a structurally sound registry, or raise :class:`MetadataError`.

        Formulas, rollups and validation rules are checked by the formula layer above
        (``qiao.core.formula.computed.check_computed``), which whoever defines metadata
        runs on the result.
        """
        merged: dict[str, EntityDef] = {}
        for entity in entities:
            if entity.name in merged:
                raise MetadataError(
                    f"entity {entity.name!r} is declared by both "
                    f"{merged[entity.name].source!r} and {entity.source!r}"
                )
            merged[entity.name] = entity
        for ext in extensions:
            base = merged.get(ext.entity)
            if base is None:
                raise MetadataError(f"{ext.source!r} extends unknown entity {ext.entity!r}")
            for f in ext.fields:
                if base.field(f.name) is not None:
                    raise MetadataError(
                        f"{ext.source!r} adds field {ext.entity}.{f.name}, which already exists"
                    )
                try:
                    base = base.with_field(f)
                except ValidationError as exc:
                    raise MetadataError(
                        f"{ext.source!r} extending {ext.entity!r}: "
                        + describe_validation_error(exc)
                    ) from None
            if ext.validation_rules:
                base = _with_rules(base, ext)
            merged[ext.entity] = base
        registry = cls(entities=merged, version=version, reverses=_reverses(merged))
        registry._check_api_names()
        return registry

    def derived(self, key: str, make: Callable[[], _T]) -> _T:
        """An analysis of this snapshot, made by ``make`` the first time ``key`` is asked.

        A registry never changes, so the layers above keep what they derive from it
        (the checked computed fields, say) here, for as long as the snapshot lives.
        """
        try:
            return self._derived[key]  # type: ignore[no-any-return]
        except KeyError:
            return self._derived.setdefault(key, make())  # type: ignore[no-any-return]

    @property
    def declarations(self) -> tuple[tuple[str, str], ...]:
        """Every entity's declaration as JSON, by name: what tables and GraphQL schemas are
        built from, so snapshots declaring the same entities share them (a key)."""
        return self.derived(
            "declarations",
            lambda: tuple((n, self.entities[n].model_dump_json()) for n in sorted(self.entities)),
        )

    def entity(self, name: str) -> EntityDef:
        try:
            return self.entities[name]
        except KeyError:
            raise MetadataError(f"unknown entity {name!r}") from None

    def by_plural(self, plural: str) -> EntityDef | None:
        for entity in self.entities.values():
            if entity.plural == plural:
                return entity
        return None

    def reverse(self, entity: str, name: str) -> Reverse | None:
        for rev in self.reverses.get(entity, ()):
            if rev.name == name:
                return rev
        return None

    def referencing(self, target: str) -> tuple[Reverse, ...]:
        """Every relation pointing at ``target``: what deleting one of its records touches."""
        return self.reverses.get(target, ())

    def _check_api_names(self) -> None:
        roots: dict[str, str] = {}
        for entity in self.entities.values():
            for root in (entity.name, entity.plural, type_name(entity.name)):
                other = roots.get(root)
                if other is not None and other != entity.name:
                    raise MetadataError(
                        f"API name {root!r} of entity {entity.name!r} clashes with {other!r}"
                    )
                roots[root] = entity.name
            graphql_names = {camel(f.name) for f in entity.fields} | {
                camel(f.column) for f in entity.fields
            }
            for rev in self.reverses.get(entity.name, ()):
                if camel(rev.name) in graphql_names:
                    raise MetadataError(
                        f"reverse relation {entity.name}.{rev.name} (from "
                        f"{rev.entity}.{rev.field.name}) clashes with a field; declare "
                        f"another 'inverse' name on {rev.entity}.{rev.field.name}"
                    )
                graphql_names.add(camel(rev.name))


def _with_rules(base: EntityDef, ext: Extension) -> EntityDef:
    taken = {r.name for r in base.validation_rules}
    for rule in ext.validation_rules:
        if rule.name in taken:
            raise MetadataError(
                f"{ext.source!r} adds validation rule {ext.entity}.{rule.name}, which already "
                "exists"
            )
        taken.add(rule.name)
    rules = (*base.validation_rules, *ext.validation_rules)
    return base.model_copy(update={"validation_rules": rules})


def _reverses(entities: Mapping[str, EntityDef]) -> dict[str, tuple[Reverse, ...]]:
    found: dict[str, list[Reverse]] = {}
    for entity in entities.values():
        for f in entity.relations:
            assert f.target is not None
            target = entities.get(f.target)
            if target is None:
                raise MetadataError(f"{entity.name}.{f.name} points at unknown entity {f.target!r}")
            name = f.inverse or entity.plural
            label = f.inverse_label or entity.plural_label or entity.label
            rev = Reverse(name=name, label=label, entity=entity.name, field=f)
            clash = [r for r in found.get(target.name, []) if r.name == name]
            if clash:
                raise MetadataError(
                    f"{entity.name}.{f.name} and {clash[0].entity}.{clash[0].field.name} both "
                    f"expose {target.name}.{name}; give one of them an 'inverse' name"
                )
            found.setdefault(target.name, []).append(rev)
    return {k: tuple(v) for k, v in found.items()}

"""The formula fields, rollup fields and validation rules of a registry, checked as a whole.

A formula may read fields of related entities, rollups and other formula
fields, so a computed field can only be checked once every entity is known.
:class:`ComputedFields` does that for one registry snapshot: it types every
formula against the declared field type, checks every rollup spec, refuses
cycles between formula fields and encrypted fields in formulas, and keeps the
results for the records service, the GraphQL layer and rule engines to share:
:func:`computed_fields` keeps them with the registry snapshot.
"""

from __future__ import annotations

import dataclasses
import decimal
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qiao.core.errors import MetadataError
from qiao.core.formula import rollup
from qiao.core.formula.checker import Formula, check, walk
from qiao.core.formula.errors import FormulaError, FormulaTypeError
from qiao.core.formula.metadata import MAX_PATH_DEPTH, field_info
from qiao.core.formula.nodes import Binary, Call, Field, Literal, Node, Unary
from qiao.core.formula.types import FieldInfo, FormulaType, Kind, Resolver, decimal_type
from qiao.core.formula.validation import CheckedRule, check_rules
from qiao.core.metadata.model import EntityDef, FieldDef, FieldType
from qiao.core.metadata.registry import Registry
from qiao.core.metadata.rollup import RollupSpec

#: The formula kind each computed field type holds.
_KINDS = {
    FieldType.STRING: Kind.STRING,
    FieldType.TEXT: Kind.STRING,
    FieldType.INTEGER: Kind.INTEGER,
    FieldType.DECIMAL: Kind.DECIMAL,
    FieldType.BOOLEAN: Kind.BOOLEAN,
    FieldType.DATE: Kind.DATE,
    FieldType.DATETIME: Kind.DATETIME,
}

#: A stored field some computed value is derived from, as (entity, field name).
Dependency = tuple[str, str]


class ComputedFieldError(ValueError):
    """A computed field or validation rule that does not check; the message names it."""

    def __init__(self, message: str, entity: str, name: str, error: FormulaError | None = None):
        super().__init__(message)
        self.entity = entity
        self.name = name
        #: The formula error underneath, with its position, when there is one.
        self.error = error

    def as_metadata_error(self) -> MetadataError:
        """BAD_USER_INPUT naming the field (or rule) and, when known, the formula position."""
        details: dict[str, int] = {}
        if self.error is not None and self.error.position is not None:
            details = {"line": self.error.position.line, "column": self.error.position.column}
        return MetadataError(str(self), field=self.name or None, **details)


def computed_fields(registry: Registry) -> ComputedFields:
    """The checked computed fields and validation rules of ``registry``, analysed once.

    Raises :class:`MetadataError` naming the field or rule that does not check.
    """
    return registry.derived("computed_fields", lambda: _checked(registry.entities))


def check_computed(registry: Registry) -> Registry:
    """``registry`` once its formulas, rollups and validation rules check.

    The metadata layer checks a registry's structure as it builds it; whoever
    defines metadata (the runtime, an admin's change) calls this on the result.
    """
    computed_fields(registry)
    return registry


def _checked(entities: Mapping[str, EntityDef]) -> ComputedFields:
    computed = ComputedFields(entities)
    try:
        computed.check_all()
    except ComputedFieldError as exc:
        raise exc.as_metadata_error() from None
    return computed


@dataclass(frozen=True)
class Computed:
    """One checked computed field: a formula (typed as the field) or a rollup."""

    entity: str
    field: FieldDef
    formula: Formula | None = None
    rollup: RollupSpec | None = None
    #: Every stored field the value is derived from, through formulas and rollups.
    depends_on: frozenset[Dependency] = frozenset()


@dataclass
class ComputedFields:
    """The checked computed fields and validation rules of one set of entities."""

    entities: Mapping[str, EntityDef]
    _done: dict[Dependency, Computed] = field(default_factory=dict)
    _rules: dict[str, tuple[CheckedRule, ...]] = field(default_factory=dict)
    _checking: list[Dependency] = field(default_factory=list)

    def check_all(self) -> None:
        """Check every computed field and rule; raises :class:`ComputedFieldError`."""
        for entity in self.entities.values():
            for f in entity.computed_fields:
                self.field(entity.name, f.name)
            self.rules(entity.name)

    def of(self, entity: str) -> dict[str, Computed]:
        """The computed fields of ``entity`` by name, in declaration order."""
        return {f.name: self.field(entity, f.name) for f in self.entities[entity].computed_fields}

    def field(self, entity: str, name: str) -> Computed:
        key = (entity, name)
        done = self._done.get(key)
        if done is not None:
            return done
        definition = self.entities[entity].field(name)
        assert definition is not None and definition.computed
        if key in self._checking:
            cycle = [*self._checking[self._checking.index(key) :], key]
            raise LookupError(
                "formula fields read each other in a cycle: "
                + " -> ".join(f"{e}.{n}" for e, n in cycle)
            )
        self._checking.append(key)
        try:
            if definition.rollup is not None:
                computed = self._rollup(entity, definition)
            else:
                computed = self._formula(entity, definition)
        finally:
            self._checking.pop()
        self._done[key] = computed
        return computed

    def rules(self, entity: str) -> tuple[CheckedRule, ...]:
        """The validation rules of ``entity``, typed as TRUE/FALSE formulas."""
        rules = self._rules.get(entity)
        if rules is None:
            try:
                rules = check_rules(self.entities[entity].validation_rules, self.resolver(entity))
            except FormulaError as exc:
                raise ComputedFieldError(f"{entity}: {exc}", entity, "", exc) from None
            self._rules[entity] = rules
        return rules

    def depends_on(self, entity: str, formula: Formula) -> frozenset[Dependency]:
        """The stored fields a formula on ``entity`` reads, through relations and rollups."""
        found: set[Dependency] = set()
        for path in formula.fields:
            found |= self._path_dependencies(entity, tuple(path.split(".")))
        return frozenset(found)

    # Checking -------------------------------------------------------------------------

    def _formula(self, entity: str, definition: FieldDef) -> Computed:
        assert definition.formula is not None
        try:
            formula = check(definition.formula, self.resolver(entity))
            formula = _as_field_type(formula, definition)
        except FormulaError as exc:
            raise ComputedFieldError(
                f"{entity}.{definition.name}: {exc}", entity, definition.name, exc
            ) from None
        return Computed(
            entity, definition, formula=formula, depends_on=self.depends_on(entity, formula)
        )

    def _rollup(self, entity: str, definition: FieldDef) -> Computed:
        where = f"{entity}.{definition.name}"
        spec = RollupSpec.model_validate(definition.rollup)
        child = self.entities.get(spec.entity)
        if child is None:
            raise ComputedFieldError(
                f"{where}: the rollup is over unknown entity {spec.entity!r}",
                entity,
                definition.name,
            )
        try:
            rollup.check_spec(spec, child, self.entities[entity])
        except ValueError as exc:
            raise ComputedFieldError(f"{where}: rollup: {exc}", entity, definition.name) from None
        info = rollup.spec_info(spec, child)
        declared = _declared_type(definition)
        if declared != info.type:
            raise ComputedFieldError(
                f"{where}: {spec.function} of {spec.entity}.{spec.field or 'records'} gives "
                f"{info.type}; declare the field as {_field_type_words(info.type)}",
                entity,
                definition.name,
            )
        depends = {(spec.entity, spec.link)}
        if spec.field is not None:
            depends.add((spec.entity, spec.field))
        if spec.via is not None:
            depends.add((entity, spec.via))
        by_column = {f.column: f.name for f in child.fields}
        filtered = _filter_fields(spec.filter)
        depends |= {(spec.entity, by_column[c]) for c in filtered if c in by_column}
        for child_field, conditions in (spec.parent_filter or {}).items():
            depends.add((spec.entity, child_field))
            depends |= {(entity, parent_field) for parent_field in conditions.values()}
        return Computed(entity, definition, rollup=spec, depends_on=frozenset(depends))

    def resolver(self, entity: str) -> Resolver:
        """What formulas on ``entity`` read: stored fields, rollups and formula fields."""

        def resolve(path: tuple[str, ...]) -> FieldInfo | Formula | None:
            if len(path) > MAX_PATH_DEPTH + 1:
                raise LookupError(f"a path follows at most {MAX_PATH_DEPTH} relations")
            current = self._walk(entity, path[:-1])
            found = current.field(path[-1])
            if found is None:
                return None
            if found.computed:
                try:
                    computed = self.field(current.name, found.name)
                except ComputedFieldError as exc:
                    raise LookupError(f"{path[-1]} cannot be read: {exc}") from None
                if computed.formula is not None:
                    return _prefixed(computed.formula, path[:-1])
                assert computed.rollup is not None
                return rollup.spec_info(computed.rollup, self.entities[computed.rollup.entity])
            if found.type is FieldType.RELATION:
                raise LookupError(
                    f"{path[-1]} is a relation; read one of its fields, such as {path[-1]}.name"
                )
            if found.encrypted:
                raise LookupError(
                    f"{current.name}.{found.name} is encrypted; formulas cannot read "
                    "encrypted fields"
                )
            info = field_info(found)
            if info is None:
                raise LookupError(
                    f"{found.type.value} field {path[-1]} cannot be used in a formula"
                )
            return info

        return resolve

    def _walk(self, entity: str, relations: tuple[str, ...]) -> EntityDef:
        current = self.entities[entity]
        for step in relations:
            relation = current.field(step)
            if relation is None or relation.type is not FieldType.RELATION:
                raise LookupError(f"{current.name} has no relation {step}")
            assert relation.target is not None
            current = self.entities[relation.target]
        return current

    def _path_dependencies(self, entity: str, path: tuple[str, ...]) -> set[Dependency]:
        found: set[Dependency] = set()
        current = self.entities[entity]
        for step in path[:-1]:
            found.add((current.name, step))
            relation = current.field(step)
            assert relation is not None and relation.target is not None
            current = self.entities[relation.target]
        last = current.field(path[-1])
        assert last is not None
        if last.computed:
            found |= self.field(current.name, last.name).depends_on
        else:
            found.add((current.name, last.name))
        return found


def _filter_fields(spec: Any) -> set[str]:
    """The columns a list-query filter tests, through and/or/not."""
    names: set[str] = set()
    if isinstance(spec, Mapping):
        for key, value in spec.items():
            if key in {"and", "or"} and isinstance(value, list):
                for item in value:
                    names |= _filter_fields(item)
            elif key == "not":
                names |= _filter_fields(value)
            else:
                names.add(key)
    return names


def _declared_type(definition: FieldDef) -> FormulaType:
    kind = _KINDS[definition.type]
    if kind is Kind.DECIMAL:
        return decimal_type(definition.effective_scale)
    return FormulaType(kind)


def _field_type_words(t: FormulaType) -> str:
    if t.kind is Kind.DECIMAL:
        return f"decimal with scale {t.scale}"
    return {Kind.STRING: "string"}.get(t.kind, t.kind.value)


def _as_field_type(formula: Formula, definition: FieldDef) -> Formula:
    """``formula`` giving values of the field's declared type, or a FormulaTypeError.

    A decimal field keeps its declared places: a formula with fewer (or an integer)
    is widened exactly; one with more must say how to round (``ROUND(x, 2)``).
    """
    declared = _declared_type(definition)
    actual = formula.type
    if actual == declared:
        return formula
    if declared.kind is Kind.DECIMAL and actual.kind in {Kind.INTEGER, Kind.DECIMAL}:
        if actual.kind is Kind.DECIMAL and actual.scale > declared.scale:
            raise FormulaTypeError(
                f"the formula gives {actual} but {definition.name} keeps {declared.scale} "
                f"decimal places; round it with ROUND(..., {declared.scale})",
                formula.tree.position,
                formula.source,
            )
        zero = Literal(formula.tree.position, declared, decimal.Decimal(0).scaleb(-declared.scale))
        tree = Binary(formula.tree.position, declared, "+", formula.tree, zero)
        return dataclasses.replace(formula, tree=tree, type=declared)
    raise FormulaTypeError(
        f"the formula gives {actual.name} but {definition.name} is a {definition.type.value} field",
        formula.tree.position,
        formula.source,
    )


def _prefixed(formula: Formula, prefix: tuple[str, ...]) -> Formula:
    """A formula of a related entity, read from here through the relations ``prefix``."""
    if not prefix:
        return formula
    tree = _prefix_node(formula.tree, prefix)
    fields = tuple(n.dotted for n in walk(tree) if isinstance(n, Field))
    return dataclasses.replace(formula, tree=tree, fields=tuple(dict.fromkeys(fields)))


def _prefix_node(node: Node, prefix: tuple[str, ...]) -> Node:
    if isinstance(node, Field):
        return dataclasses.replace(node, path=(*prefix, *node.path))
    if isinstance(node, Unary):
        return dataclasses.replace(node, operand=_prefix_node(node.operand, prefix))
    if isinstance(node, Binary):
        return dataclasses.replace(
            node, left=_prefix_node(node.left, prefix), right=_prefix_node(node.right, prefix)
        )
    if isinstance(node, Call):
        return dataclasses.replace(node, args=tuple(_prefix_node(a, prefix) for a in node.args))
    return node

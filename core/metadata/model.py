"""The declaration model of entities and fields.

A manifest file, a plugin hook and an admin mutation all produce the same
:class:`EntityDef` and :class:`FieldDef` objects, so one set of checks guards
every way metadata can enter the system. Checks that need more than one entity
(relation targets, reverse names) live in :mod:`qiao.core.metadata.registry`.
"""

from __future__ import annotations

import decimal
import re
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from qiao.core.metadata.fieldtypes import MAX_DECIMAL_PRECISION as MAX_DECIMAL_PRECISION
from qiao.core.metadata.fieldtypes import FieldType as FieldType
from qiao.core.metadata.rollup import RollupSpec
from qiao.core.metadata.values import coerce_default, coerce_for_query

NAME_RE = re.compile(r"^[a-z][a-z0-9]*(_[a-z][a-z0-9]*)*$")
ENUM_VALUE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
MAX_NAME_LENGTH = 48
#: Picklist values are stored in a VARCHAR(64) column.
MAX_ENUM_VALUE_LENGTH = 64

#: Columns every entity table has; fields may not use these names.
SYSTEM_FIELDS = frozenset(
    {"id", "created_at", "updated_at", "created_by_id", "updated_by_id", "version"}
)
#: Names that would clash with GraphQL plumbing or SQL internals.
RESERVED_NAMES = SYSTEM_FIELDS | {"edges", "node", "cursor", "page_info", "total_count", "typename"}
#: Root query fields that are not an entity's: no entity may be named or pluralised so.
RESERVED_ENTITY_NAMES = frozenset({"nodes"})

#: Types whose values are strings with a length limit.
STRING_TYPES = frozenset(
    {FieldType.STRING, FieldType.TEXT, FieldType.EMAIL, FieldType.PHONE, FieldType.URL}
)
#: Types with a numeric range.
NUMERIC_TYPES = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
#: Default maximum lengths of the bounded string types.
DEFAULT_MAX_LENGTH = {
    FieldType.STRING: 255,
    FieldType.EMAIL: 254,
    FieldType.PHONE: 32,
    FieldType.URL: 2048,
}


class OnDelete(StrEnum):
    """What deleting a related record does to the records pointing at it."""

    SET_NULL = "set_null"
    RESTRICT = "restrict"
    CASCADE = "cascade"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Label(_Strict):
    """A human label in English and Simplified Chinese; either may stand for both."""

    en: str | None = Field(default=None, min_length=1, max_length=200)
    zh_cn: str | None = Field(default=None, alias="zh-CN", min_length=1, max_length=200)

    @model_validator(mode="after")
    def _one_language_at_least(self) -> Self:
        if self.en is None and self.zh_cn is None:
            raise ValueError("a label needs 'en' or 'zh-CN'")
        return self

    def text(self, locale: str = "en") -> str:
        """The label in ``locale`` ('en' or 'zh-CN'), falling back to the other."""
        if locale.lower().startswith("zh"):
            return self.zh_cn or self.en or ""
        return self.en or self.zh_cn or ""

    def as_data(self) -> dict[str, str]:
        return self.model_dump(by_alias=True, exclude_none=True)


class EnumValue(_Strict):
    """One value of a picklist: a stable identifier plus its labels."""

    value: str
    label: Label | None = None
    color: str | None = Field(default=None, pattern=r"^#[0-9a-fA-F]{6}$")

    @field_validator("value")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if (
            not ENUM_VALUE_RE.match(value)
            or value in {"true", "false", "null"}
            or len(value) > MAX_ENUM_VALUE_LENGTH
        ):
            raise ValueError(
                f"picklist value {value!r} must be an identifier (letters, digits, '_') of at "
                f"most {MAX_ENUM_VALUE_LENGTH} characters, such as CLOSED_WON"
            )
        return value


class FieldDef(_Strict):
    """One field of an entity: a column, its constraints and its labels."""

    name: str
    type: FieldType
    label: Label
    description: str | None = Field(default=None, max_length=2000)
    required: bool = False
    unique: bool = False
    indexed: bool = False
    default: Any = None
    # Strings
    max_length: int | None = Field(default=None, ge=1, le=1_000_000)
    min_length: int | None = Field(default=None, ge=0)
    # Numbers
    min: decimal.Decimal | None = None
    max: decimal.Decimal | None = None
    precision: int | None = Field(default=None, ge=1, le=MAX_DECIMAL_PRECISION)
    scale: int | None = Field(default=None, ge=0, le=MAX_DECIMAL_PRECISION)
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    # Picklists
    values: tuple[EnumValue, ...] = ()
    # Relations (many-to-one; the reverse one-to-many is exposed on the target)
    target: str | None = None
    inverse: str | None = None
    inverse_label: Label | None = None
    on_delete: OnDelete = OnDelete.SET_NULL
    # Computed fields (docs/formulas.md): no column; the value is derived when read.
    formula: str | None = Field(default=None, min_length=1, max_length=10_000)
    rollup: dict[str, Any] | None = None
    #: A computed field read over every record, whatever its reader may see. By default a
    #: formula over relations and a rollup read related records under the reader's row
    #: rules (docs/formulas.md#permissions); an admin declares a total that must count
    #: everything (a dealer's whole purchases for grading) with this, knowingly.
    system_computed: bool = False
    # Protected fields (docs/encryption.md)
    encrypted: bool = False
    searchable: Literal["exact"] | None = None
    #: Another system's key for the record (an ERP number, an import's row key): unique,
    #: and what ``upsert`` finds a record by. Record ids themselves are made by Qiao.
    external_id: bool = False
    #: How a role granted a masked read sees the value (docs/privacy.md): phone, name,
    #: id_number, email or full; phones and e-mail addresses have one by default.
    mask: Literal["phone", "name", "id_number", "email", "full"] | None = None
    #: A secret that can be set and never read back through the API: left out of the GraphQL
    #: types, filters and orders, refused in formulas; plugins read it with the records
    #: service. Requires ``encrypted`` (docs/encryption.md#write-only-fields).
    write_only: bool = False

    @field_validator("name")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        return check_name(name, "field")

    @field_validator("inverse")
    @classmethod
    def _valid_inverse(cls, name: str | None) -> str | None:
        # The inverse becomes a field of the target's GraphQL type, so it obeys field rules.
        return None if name is None else check_name(name, "inverse")

    @model_validator(mode="after")
    def _options_fit_type(self) -> Self:
        problems = list(_option_problems(self))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # Derived properties -------------------------------------------------------------

    @property
    def computed(self) -> bool:
        """A formula or rollup field: derived when read, with no column of its own."""
        return self.formula is not None or self.rollup is not None

    @property
    def column(self) -> str:
        """The SQL column holding this field (relations store the target's id).

        A computed field has none; its name stands for its SQL expression in filters
        and orders, and for its value in returned records.
        """
        return f"{self.name}_id" if self.type is FieldType.RELATION else self.name

    @property
    def effective_max_length(self) -> int | None:
        return self.max_length or DEFAULT_MAX_LENGTH.get(self.type)

    @property
    def effective_precision(self) -> int:
        return self.precision or MAX_DECIMAL_PRECISION

    @property
    def effective_scale(self) -> int:
        return 2 if self.scale is None else self.scale

    @property
    def enum_values(self) -> tuple[str, ...]:
        return tuple(v.value for v in self.values)

    def as_data(self) -> dict[str, Any]:
        """The declaration as plain data, as a manifest would write it."""
        return self.model_dump(mode="json", by_alias=True, exclude_defaults=True) | {
            "name": self.name,
            "type": self.type.value,
        }


def _picklist_clashes(values: tuple[EnumValue, ...]) -> list[str]:
    """Picklist values that repeat, or differ only in case.

    GraphQL names every value in capitals (``won`` and ``WON`` both become ``WON``),
    so two values that differ only in case could not be told apart by a client.
    """
    seen: dict[str, str] = {}
    problems: list[str] = []
    for value in (v.value for v in values):
        first = seen.get(value.upper())
        if first is None:
            seen[value.upper()] = value
        elif first == value:
            problems.append(f"picklist value {value!r} repeats")
        else:
            problems.append(
                f"picklist values {first!r} and {value!r} differ only in case; "
                f"both would be named {value.upper()!r} in GraphQL"
            )
    return problems


def _option_problems(f: FieldDef) -> list[str]:
    """What is wrong with the combination of options declared on ``f``."""
    problems: list[str] = []
    t = f.type
    if (f.max_length is not None or f.min_length is not None) and t not in STRING_TYPES:
        problems.append("max_length/min_length apply to string, text, email, phone and url")
    if f.max_length is not None and f.min_length is not None and f.min_length > f.max_length:
        problems.append("min_length is greater than max_length")
    if (f.min is not None or f.max is not None) and t not in NUMERIC_TYPES:
        problems.append("min/max apply to integer and decimal fields")
    if f.min is not None and f.max is not None and f.min > f.max:
        problems.append("min is greater than max")
    if t in NUMERIC_TYPES and f.effective_scale <= f.effective_precision:
        # A bound the field could never hold (1.5 on an integer, beyond GraphQL's Int,
        # more places than the scale) is a mistake in the declaration.
        for key, bound in (("min", f.min), ("max", f.max)):
            try:
                coerce_for_query(f, bound)
            except ValueError as exc:
                problems.append(f"{key}: {exc}")
    if (
        f.precision is not None or f.scale is not None or f.currency
    ) and t is not FieldType.DECIMAL:
        problems.append("precision, scale and currency apply to decimal fields")
    if t is FieldType.DECIMAL and f.effective_scale > f.effective_precision:
        problems.append("scale is greater than precision")
    if f.mask is not None and (t not in STRING_TYPES or f.computed):
        problems.append("a mask applies to stored string, text, email, phone and url fields")
    if t is FieldType.ENUM:
        if not f.values:
            problems.append("an enum field needs 'values'")
        problems += _picklist_clashes(f.values)
    elif f.values:
        problems.append("'values' apply to enum fields")
    if t is FieldType.RELATION:
        if not f.target:
            problems.append("a relation needs a 'target' entity")
        if f.unique:
            problems.append("a many-to-one relation cannot be unique")
        if f.on_delete is OnDelete.SET_NULL and f.required:
            problems.append("a required relation cannot use on_delete: set_null")
    elif f.target or f.inverse or f.inverse_label:
        problems.append("target, inverse and inverse_label apply to relation fields")
    if t in {FieldType.JSON, FieldType.TEXT} and (f.unique or f.indexed):
        problems.append(f"{t.value} fields cannot be unique or indexed")
    problems += _computed_problems(f)
    problems += _encryption_problems(f)
    problems += _external_id_problems(f)
    if f.default is not None:
        try:
            coerce_default(f)
        except ValueError as exc:
            problems.append(f"default: {exc}")
    return problems


#: The types a formula or rollup field may declare: those a formula's value can have.
COMPUTED_TYPES = frozenset(
    {
        FieldType.STRING,
        FieldType.TEXT,
        FieldType.INTEGER,
        FieldType.DECIMAL,
        FieldType.BOOLEAN,
        FieldType.DATE,
        FieldType.DATETIME,
    }
)


def _computed_problems(f: FieldDef) -> list[str]:
    """What a computed field may not declare; its formula is checked with the registry."""
    if not f.computed:
        return ["system_computed is for formula and rollup fields"] if f.system_computed else []
    problems: list[str] = []
    if f.formula is not None and f.rollup is not None:
        problems.append("a field has a formula or a rollup, not both")
    if f.type not in COMPUTED_TYPES:
        kinds = ", ".join(sorted(t.value for t in COMPUTED_TYPES))
        problems.append(f"a computed field is of type {kinds}; not {f.type.value}")
    taken = [
        option
        for option, value in (
            ("required", f.required),
            ("unique", f.unique),
            ("indexed", f.indexed),
            ("default", f.default is not None),
            ("encrypted", f.encrypted),
            ("min", f.min is not None),
            ("max", f.max is not None),
            ("min_length", f.min_length is not None),
        )
        if value
    ]
    if taken:
        problems.append(
            f"a computed field cannot be {', '.join(taken)}: its value is derived, not written"
        )
    if f.rollup is not None:
        try:
            RollupSpec.model_validate(f.rollup)
        except ValidationError as exc:
            problems.append(f"rollup: {describe_validation_error(exc)}")
    return problems


def _external_id_problems(f: FieldDef) -> list[str]:
    if f.external_id and (f.type is not FieldType.STRING or not f.unique):
        return ["an external-id field is a string field with unique: true"]
    return []


def _encryption_problems(f: FieldDef) -> list[str]:
    """``encrypted`` and ``searchable`` (docs/encryption.md): sealed text, exact search only."""
    problems: list[str] = []
    if f.encrypted and f.type not in STRING_TYPES:
        problems.append("encrypted applies to string, text, email, phone and url fields")
    if f.encrypted and (f.unique or f.indexed):
        problems.append(
            "an encrypted field cannot be unique or indexed (its stored values are random); "
            "use searchable: exact for equality lookups"
        )
    if f.searchable and not f.encrypted:
        problems.append("searchable: exact applies to encrypted fields")
    if f.write_only and (not f.encrypted or f.searchable or f.required):
        problems.append(
            "a write-only field is encrypted, not searchable and not required "
            "(it is set after the record exists)"
        )
    return problems


class ValidationRule(BaseModel):
    """A formula a record must satisfy: ``{name: discount_cap, formula: "discount <= 0.3"}``.

    Declared with the entity, so it is part of the model; :mod:`qiao.core.formula.validation`
    types and enforces it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$", max_length=48)
    formula: str = Field(min_length=1, max_length=10_000)
    message: str = Field(min_length=1, max_length=500)
    #: The field the message is about, shown next to it in forms; None for the whole record.
    field: str | None = None


class EntityDef(_Strict):
    """An entity (object): a table, a GraphQL type and its API names."""

    name: str
    plural: str
    label: Label
    plural_label: Label | None = None
    description: str | None = Field(default=None, max_length=2000)
    display_field: str | None = None
    fields: tuple[FieldDef, ...] = ()
    indexes: tuple[tuple[str, ...], ...] = ()
    #: Formulas every record must satisfy when written (docs/formulas.md).
    validation_rules: tuple[ValidationRule, ...] = ()
    #: Who declared it: a plugin name, or "custom" for admins' run-time entities.
    source: str = "custom"

    @field_validator("name", "plural")
    @classmethod
    def _valid_name(cls, name: str) -> str:
        if name in RESERVED_ENTITY_NAMES:
            raise ValueError(f"entity name {name!r} is reserved")
        return check_name(name, "entity")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.plural == self.name:
            raise ValueError("plural must differ from the entity name")
        seen: set[str] = set()
        for f in self.fields:
            # A searchable encrypted field also stores its blind index in <column>_bidx.
            bidx = {f"{f.column}_bidx"} if f.encrypted and f.searchable else set()
            for n in {f.name, f.column} | bidx:
                if n in seen:
                    raise ValueError(f"field name {n!r} is used twice")
                seen.add(n)
        if self.display_field is not None and self.display_field not in seen:
            raise ValueError(f"display_field {self.display_field!r} is not a field")
        for index in self.indexes:
            unknown = [n for n in index if n not in seen]
            if unknown or not index:
                raise ValueError(f"index {list(index)} names unknown fields {unknown}")
            computed = [n for n in index if (f := self.field(n)) is not None and f.computed]
            if computed:
                raise ValueError(f"index {list(index)} names computed fields {computed}")
        rule_names = [r.name for r in self.validation_rules]
        if len(set(rule_names)) != len(rule_names):
            raise ValueError("validation rule names repeat")
        return self

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name``, by a map made once per ``fields`` (writes ask per value).

        The map is kept beside the fields it was made from, so a copy with other
        fields (``model_copy(update=...)`` copies it too) makes its own.
        """
        made = self.__dict__.get("_field_map")
        if made is None or made[0] is not self.fields:
            made = (self.fields, {f.name: f for f in reversed(self.fields)})
            self.__dict__["_field_map"] = made
        return made[1].get(name)

    def field_at_column(self, column: str) -> FieldDef | None:
        """The field stored in ``column`` (``account_id`` for the relation ``account``), by a
        map kept as :meth:`field` keeps its own."""
        made = self.__dict__.get("_column_map")
        if made is None or made[0] is not self.fields:
            made = (self.fields, {f.column: f for f in self.fields})
            self.__dict__["_column_map"] = made
        return made[1].get(column)

    @property
    def stored_fields(self) -> tuple[FieldDef, ...]:
        """The fields with a column: all but formula and rollup fields."""
        return tuple(f for f in self.fields if not f.computed)

    @property
    def computed_fields(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.computed)

    @property
    def relations(self) -> tuple[FieldDef, ...]:
        return tuple(f for f in self.fields if f.type is FieldType.RELATION)

    def with_field(self, field: FieldDef) -> EntityDef:
        """A copy with ``field`` added, or replaced when one of that name exists."""
        kept = tuple(f for f in self.fields if f.name != field.name)
        return self.model_copy(update={"fields": (*kept, field)}).revalidated()

    def without_field(self, name: str) -> EntityDef:
        return self.model_copy(
            update={"fields": tuple(f for f in self.fields if f.name != name)}
        ).revalidated()

    def revalidated(self) -> EntityDef:
        return EntityDef.model_validate(self.as_data() | {"source": self.source})

    def as_data(self) -> dict[str, Any]:
        data = self.model_dump(mode="json", by_alias=True, exclude_defaults=True)
        data["fields"] = [f.as_data() for f in self.fields]
        data.update(name=self.name, plural=self.plural)
        return data


def check_name(name: str, what: str) -> str:
    """Refuse names that are not snake_case identifiers or that Qiao reserves."""
    if not NAME_RE.match(name) or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{what} name {name!r} must be snake_case: words of lower-case letters and digits, "
            f"each starting with a letter, joined by single '_', at most {MAX_NAME_LENGTH} long"
        )
    if name in RESERVED_NAMES or name.startswith("qiao"):
        raise ValueError(f"{what} name {name!r} is reserved")
    return name


def describe_validation_error(exc: ValidationError, data: Any = None) -> str:
    """One line per problem, each with the path of the offending item.

    Pydantic's own text adds input dumps and documentation links, which are
    noise to someone fixing a manifest or an admin form. A problem with the
    whole object (no path) is its message alone. Given the validated
    ``data``, list items are also named (``entities.2 (lead).fields.5 (source)``),
    so a person finds the entry without counting.
    """
    lines = []
    for err in exc.errors():
        parts = []
        node = data
        for step in err["loc"]:
            part = str(step)
            node = _child(node, step)
            if isinstance(step, int) and isinstance(node, dict):
                name = node.get("name") or node.get("entity")
                if isinstance(name, str):
                    part = f"{part} ({name})"
            parts.append(part)
        message = err["msg"].removeprefix("Value error, ").replace("a valid tuple", "a list")
        lines.append(f"{'.'.join(parts)}: {message}" if parts else message)
    return "; ".join(lines)


def _child(node: Any, step: int | str) -> Any:
    if isinstance(node, dict):
        return node.get(step)
    if isinstance(node, list | tuple) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return None

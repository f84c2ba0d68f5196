"""The rights a role grants, as data (the ``rights`` JSON of a ``role`` record).

Example::

    {"entities": {"account": {"read": "team", "create": "own", "update": "own"},
                  "opportunity": {"read": "subtree", "create": "own", "update": "own",
                                  "export": "own"},
                  "product": {"read": "all"}},
     "fields": {"account": {"annual_revenue": "read", "unified_credit_code": "none"}},
     "audit": false}

Every right takes a *scope*: ``none``, ``own``, ``team``, ``subtree``,
``region``, ``all``, or ``{"filter": {...}}`` in the GraphQL filter language
(snake_case field names; ``"$me"`` and ``"$team"`` stand for the caller's user
and team ids, ``"$me.<relation>"`` for the id the caller's user record points at
through that relation, such as a dealer portal user's ``"$me.dealer"``). Rights
left out are ``none``; the entity ``"*"`` sets defaults for entities not named.
Field access is ``write`` (the default), ``read``, ``masked`` (read as
``138****5678``, see docs/privacy.md) or ``none``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from qiao.core.errors import BadUserInput
from qiao.core.metadata.model import describe_validation_error

RIGHTS = ("read", "create", "update", "delete", "export")
Right = Literal["read", "create", "update", "delete", "export"]


class Scope(StrEnum):
    """Which records a right reaches, relative to the caller."""

    NONE = "none"
    OWN = "own"
    TEAM = "team"
    SUBTREE = "subtree"
    REGION = "region"
    ALL = "all"


class FilterScope(BaseModel):
    """Records matching a filter (same language as GraphQL's, snake_case names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    filter: dict[str, Any]


ScopeValue = Scope | FilterScope


class FieldAccess(StrEnum):
    """What a role may do with a field; ``masked`` reads it masked (docs/privacy.md)."""

    WRITE = "write"
    READ = "read"
    MASKED = "masked"
    NONE = "none"


class EntityRights(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    read: ScopeValue = Scope.NONE
    create: ScopeValue = Scope.NONE
    update: ScopeValue = Scope.NONE
    delete: ScopeValue = Scope.NONE
    export: ScopeValue = Scope.NONE

    def scope(self, right: Right) -> ScopeValue:
        value: ScopeValue = getattr(self, right)
        return value


class Rights(BaseModel):
    """A role's rights: per entity, per field, and whether it reads the audit trail."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entities: dict[str, EntityRights] = Field(default_factory=dict)
    fields: dict[str, dict[str, FieldAccess]] = Field(default_factory=dict)
    audit: bool = False

    @field_validator("entities", "fields")
    @classmethod
    def _names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not isinstance(name, str) or not name:
                raise ValueError("entity names must be non-empty strings")
        return value

    def for_entity(self, entity: str) -> EntityRights:
        return self.entities.get(entity) or self.entities.get("*") or EntityRights()

    @classmethod
    def parse(cls, data: Any, field: str = "rights") -> Rights:
        """Rights from JSON data, or BAD_USER_INPUT saying what is wrong and where."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            reason = describe_validation_error(exc, data)
            raise BadUserInput(f"{field}: {reason}", field=field) from None

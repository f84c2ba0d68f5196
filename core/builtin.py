"""The built-in plugin every deployment has: users and teams, their sign-in, and metadata changes.

Identity, ownership and permissions refer to these two entities, so they ship
with the kernel, declared through the same hook any plugin uses. The mutation
that lifts a user's sign-in lockouts and admins' changes to the metadata
(:mod:`qiao.core.customisation`) join the GraphQL schema the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.core.hookmarkers import hookimpl
from qiao.core.permissions.rights import Rights

MANIFEST = Path(__file__).with_name("identity.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]


@hookimpl
def qiao_graphql_types() -> list[type]:
    """Sign-in lockouts are lifted, and the metadata changed, through the API as well as the CLI."""
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.auth import graphql
    from qiao.core.customisation.mutations import CustomisationMutation

    return [CustomisationMutation, *graphql.TYPES]


@hookimpl(entities=["role"])
def qiao_before_record_write(values: dict[str, Any]) -> None:
    """A role's rights are data every later request depends on: refuse malformed ones."""
    if values.get("rights") is not None:
        Rights.parse(values["rights"])

"""The built-in ``clock`` plugin: the replay clock's GraphQL fields (docs/clock.md).

Always enabled (``BUILTIN_PLUGINS``), so every deployment answers ``clock``;
setting it is refused unless qiao.toml says ``[clock] controllable = true``.
"""

from __future__ import annotations

from qiao.core.hookspecs import hookimpl
from qiao.core.replay import graphql


@hookimpl
def qiao_graphql_types() -> list[type]:
    return graphql.TYPES

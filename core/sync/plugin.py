"""The built-in ``sync`` plugin: offline sync's GraphQL fields (docs/sync.md).

Always enabled (``BUILTIN_PLUGINS``); on a deployment without an audit key
its fields refuse with CONFIGURATION_ERROR, since such a deployment records no
changes to sync.
"""

from __future__ import annotations

from qiao.core.hookmarkers import hookimpl


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.sync import graphql

    return graphql.TYPES

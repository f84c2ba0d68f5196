"""The built-in ``sync`` plugin: offline sync's GraphQL fields (docs/sync.md).

Always enabled (``BUILTIN_PLUGINS``); on a deployment without an audit key
its fields refuse with CONFIGURATION_ERROR, since such a deployment records no
changes to sync.
"""

from __future__ import annotations

from qiao.core.hookmarkers import hookimpl
from qiao.core.sync import graphql


@hookimpl
def qiao_graphql_types() -> list[type]:
    return graphql.TYPES

"""The built-in ``clock`` plugin: the replay clock's GraphQL fields (docs/clock.md).

Always enabled (``BUILTIN_PLUGINS``), so every deployment answers ``clock``;
setting it is refused unless qiao.toml says ``[clock] controllable = true``.
"""

from __future__ import annotations

from qiao.core.hookmarkers import hookimpl
from qiao.core.replay.clock import ReplayClock
from qiao.core.runtime import register_controllable_clock

# A runtime whose qiao.toml allows it makes its clock a replay clock.
register_controllable_clock(ReplayClock)


@hookimpl
def qiao_graphql_types() -> list[type]:
    # Imported when the schema is built: a command that serves no GraphQL skips strawberry.
    from qiao.core.replay import graphql

    return graphql.TYPES

"""The runtime as plugins are handed it: by hooks, by event deliveries, by the plugin manager.

Hook specifications, the event model and the plugin manager pass the runtime to
plugins, but :class:`qiao.core.runtime.Runtime` builds on all three, so they name
it through :class:`PluginHost` instead, and the runtime is one. It is what
:class:`qiao.api.Runtime` promises plugins (configuration, database, metadata,
plugins, records service, access, per-runtime state), on top of what writes and
their hooks reach (:class:`~qiao.core.records.host.RecordsHost`). Core features
above the runtime keep naming the concrete class.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from qiao.core.records.host import RecordsHost

if TYPE_CHECKING:
    from qiao.core.actor import Actor
    from qiao.core.config import Config
    from qiao.core.permissions.access import Access


class PluginHost(RecordsHost, Protocol):
    """One deployment in one process, as the hooks and event handlers of plugins use it."""

    @property
    def config(self) -> Config: ...

    @property
    def started(self) -> bool: ...

    def access_for(self, actor: Actor) -> Access: ...

"""Which runtime a connection belongs to, for write hooks that must read or write more records.

The write hooks receive the transaction's connection, not the runtime whose
catalog, clock and records service a plugin needs to write related records
(history rows, notifications, run records). :meth:`Runtime.start` binds each
runtime before the plugins' ``qiao_startup`` hooks run; a hook finds it again
by the connection's engine. Only weak references are kept, so a closed runtime
is not held alive.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine

from qiao.core.errors import ConfigurationError

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

_runtimes: weakref.WeakKeyDictionary[Engine, weakref.ref[Runtime]] = weakref.WeakKeyDictionary()


def bind(runtime: Runtime) -> None:
    _runtimes[runtime.db.engine] = weakref.ref(runtime)


def bound(connection: Connection) -> Runtime | None:
    """The started runtime of this connection's database, if any."""
    ref = _runtimes.get(connection.engine)
    return ref() if ref is not None else None


def runtime_for(connection: Connection) -> Runtime:
    """The started runtime of this connection's database; a ConfigurationError if none."""
    runtime = bound(connection)
    if runtime is None:
        raise ConfigurationError(
            "Qiao was not started for this database: call runtime.start() before writing "
            "(the app, 'qiao' commands and test fixtures do)"
        )
    return runtime

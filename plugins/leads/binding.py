"""Which runtime a write belongs to, for hooks that must read or write more records.

The write hooks receive the transaction's connection but not the records
service. The plugin learns each runtime in ``qiao_startup`` (which the app
calls, and which the plugin's own commands and every embedding program call
before serving) and finds it again by the connection's engine. Only weak
references are kept, so a closed runtime is not held alive.
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


def runtime_for(connection: Connection) -> Runtime:
    ref = _runtimes.get(connection.engine)
    runtime = ref() if ref is not None else None
    if runtime is None:
        raise ConfigurationError(
            "the leads plugin was not started for this database: call "
            "runtime.start() before writing (the app, 'qiao' commands and test fixtures do)"
        )
    return runtime

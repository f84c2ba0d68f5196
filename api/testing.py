"""What a plugin's tests use, beside the fixtures Qiao's pytest plugin provides.

Qiao installs a pytest plugin (entry point ``pytest11``), so a plugin's tests
get these fixtures without configuration (docs/testing.md): override
``qiao_enabled_plugins`` (and ``qiao_extra_plugins``) in a ``conftest.py``,
then use ``qiao_backend``, ``qiao_database_url``, ``qiao_clock``,
``qiao_runtime``, ``qiao_worker``, ``qiao_admin_token``, ``qiao_app``,
``qiao_server``, ``qiao_client`` and ``qiao_anonymous_client``. Every test
that touches storage runs on SQLite and on PostgreSQL. ``plaintext_hits``
tells where values that should be encrypted can still be read in clear.
"""

from __future__ import annotations

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.plaintext import plaintext_hits
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain

__all__ = ["GraphQLClient", "LiveServer", "TestClock", "drain", "plaintext_hits"]

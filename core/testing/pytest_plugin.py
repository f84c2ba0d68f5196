"""Qiao's pytest plugin: an app, a database and a GraphQL client for any test.

Installed with Qiao (entry point ``pytest11``), so plugin and template authors
get these fixtures without configuration. Every fixture that touches storage
runs its test twice, on SQLite and on PostgreSQL, each time on a fresh
database of its own.

Fixtures (override the first two in a ``conftest.py`` to test a plugin):

``qiao_enabled_plugins``
    plugin names to enable, as in qiao.toml (default: ``("crm",)``).
``qiao_extra_plugins``
    plugin objects that are not installed as entry points (default: none).
``qiao_backend``
    ``"sqlite"`` or ``"postgresql"``.
``qiao_database_url``
    a fresh, migrated database with an administrator ``admin``.
``qiao_clock``
    a :class:`~qiao.core.testing.clock.TestClock` the runtime, its worker and
    timers read: it follows the wall clock until a test calls ``set`` or
    ``advance``.
``qiao_runtime``
    a :class:`~qiao.core.runtime.Runtime` on that database, on ``qiao_clock``.
``qiao_worker``
    an events worker on that runtime, run by hand:
    ``qiao.core.testing.worker.drain(qiao_worker)`` runs passes until nothing is left.
``qiao_admin_token``
    a bearer token of the administrator.
``qiao_app`` / ``qiao_server``
    the ASGI app, and the same app served by uvicorn on 127.0.0.1.
``qiao_client`` / ``qiao_anonymous_client``
    :class:`~qiao.core.testing.client.GraphQLClient` with and without the token.

PostgreSQL is found at ``QIAO_TEST_POSTGRES_URL`` (default
``postgresql://postgres@127.0.0.1:5432/postgres``). When it is unreachable the
PostgreSQL half is skipped with a notice in the summary, except under
``CI=true``, where it fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from starlette.applications import Starlette

from qiao.core.app import create_app
from qiao.core.auth.tokens import create_token
from qiao.core.config import Config
from qiao.core.events.worker import Worker
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.databases import (
    PostgresDatabases,
    SqliteDatabases,
    postgres_admin_url,
    postgres_unreachable_reason,
)
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import TEST_SETTINGS

BACKENDS = ("sqlite", "postgresql")
ADMIN = "admin"
_postgres_notice: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _config(url: str, plugins: Sequence[str]) -> Config:
    # Every process re-reads the metadata version on each request in tests, so a
    # change made through one runtime is seen at once by the others.
    return Config(database_url=url, plugins=tuple(plugins), metadata_check_interval=0)


def _seed_template(url: str, plugins: Sequence[str], extra: Sequence[Any]) -> str:
    """Migrate a template database and give it an administrator; returns its token."""
    runtime = Runtime(_config(url, plugins), extra_plugins=extra)
    try:
        runtime.migrate()
        records = runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            records.create(
                ctx, "user", {"username": ADMIN, "display_name": "管理员", "is_admin": True}
            )
            return create_token(ctx.connection, runtime.current(), ADMIN, name="tests")
    finally:
        runtime.close()


@pytest.fixture(scope="session")
def _qiao_sqlite(tmp_path_factory: pytest.TempPathFactory) -> SqliteDatabases:
    return SqliteDatabases(tmp_path_factory.mktemp("qiao-sqlite"))


@pytest.fixture(scope="session")
def _qiao_postgresql() -> Iterator[PostgresDatabases]:
    url = postgres_admin_url()
    reason = postgres_unreachable_reason(url)
    if reason is not None:
        message = f"PostgreSQL at {url} is unreachable ({reason})"
        if _in_ci():
            pytest.fail(f"{message}; CI=true requires it", pytrace=False)
        if not _postgres_notice:
            _postgres_notice.append(f"{message}: the PostgreSQL half of the suite was SKIPPED")
        pytest.skip(message)
    databases = PostgresDatabases(url)
    yield databases
    databases.cleanup()


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm",)


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return ()


@pytest.fixture(params=BACKENDS)
def qiao_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def _qiao_fresh(
    request: pytest.FixtureRequest,
    qiao_backend: str,
    qiao_enabled_plugins: Sequence[str],
    qiao_extra_plugins: Sequence[Any],
) -> tuple[str, str]:
    """A fresh database URL and the administrator's token in it."""
    databases = request.getfixturevalue(f"_qiao_{qiao_backend}")
    key = repr(
        (tuple(qiao_enabled_plugins), [getattr(p, "__name__", repr(p)) for p in qiao_extra_plugins])
    )
    url, token = databases.fresh(
        key, lambda u: _seed_template(u, qiao_enabled_plugins, qiao_extra_plugins)
    )
    return url, str(token)


@pytest.fixture
def qiao_database_url(_qiao_fresh: tuple[str, str]) -> str:
    return _qiao_fresh[0]


@pytest.fixture
def qiao_admin_token(_qiao_fresh: tuple[str, str]) -> str:
    return _qiao_fresh[1]


@pytest.fixture
def qiao_config(qiao_database_url: str, qiao_enabled_plugins: Sequence[str]) -> Config:
    return _config(qiao_database_url, qiao_enabled_plugins)


@pytest.fixture
def qiao_clock() -> TestClock:
    return TestClock()


@pytest.fixture
def qiao_runtime(
    qiao_config: Config, qiao_extra_plugins: Sequence[Any], qiao_clock: TestClock
) -> Iterator[Runtime]:
    runtime = Runtime(qiao_config, extra_plugins=qiao_extra_plugins, clock=qiao_clock)
    runtime.current()
    runtime.start()
    yield runtime
    runtime.close()


@pytest.fixture
def qiao_worker(qiao_runtime: Runtime) -> Iterator[Worker]:
    """An events worker on ``qiao_runtime``, run by hand with ``drain`` (core/testing/worker.py)."""
    worker = Worker(qiao_runtime, TEST_SETTINGS)
    yield worker
    worker.close()


@pytest.fixture
def qiao_app(qiao_runtime: Runtime) -> Starlette:
    return create_app(qiao_runtime)


@pytest.fixture
def qiao_server(qiao_app: Starlette) -> Iterator[LiveServer]:
    with LiveServer(qiao_app) as server:
        yield server


@pytest.fixture
def qiao_client(qiao_server: LiveServer, qiao_admin_token: str) -> Iterator[GraphQLClient]:
    client = GraphQLClient(qiao_server.url, qiao_admin_token)
    yield client
    client.close()


@pytest.fixture
def qiao_anonymous_client(qiao_server: LiveServer) -> Iterator[GraphQLClient]:
    client = GraphQLClient(qiao_server.url)
    yield client
    client.close()


def pytest_report_header(config: pytest.Config) -> str:
    """Say at the top of every run whether the PostgreSQL half will run."""
    url = postgres_admin_url()
    reason = postgres_unreachable_reason(url)
    if reason is None:
        return f"qiao: storage tests run on SQLite and on PostgreSQL at {url}"
    consequence = "they FAIL (CI=true)" if _in_ci() else "they are SKIPPED"
    return f"qiao: PostgreSQL at {url} is UNREACHABLE ({reason}); {consequence}"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _postgres_notice:
        terminalreporter.write_sep("!", line, yellow=True, bold=True)

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
``qiao_key_file``
    the session's key file; the deployments of the fixtures use it for their
    encrypted fields and their audit key, as ``qiao init`` sets them up.
``qiao_database_url``
    a fresh, migrated database with an administrator ``admin``.
``qiao_config``
    a qiao.toml in a folder of the test's own naming that database and the key file.
``qiao_empty_database_url`` / ``qiao_deployment``
    a new empty database, and a deployment ``qiao init`` made on it (in a
    subprocess), driven through ``qiao`` processes (``.run``, ``.serve``).
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
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from starlette.applications import Starlette

from qiao.core import audit
from qiao.core.app import create_app
from qiao.core.auth.tokens import create_token
from qiao.core.config import CONFIG_FILE, Config
from qiao.core.crypto import generate_key_file
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
from qiao.core.testing.deployment import Deployment
from qiao.core.testing.deployment import init as init_deployment
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import TEST_SETTINGS
from qiao.core.worker import Worker

BACKENDS = ("sqlite", "postgresql")
ADMIN = "admin"
_postgres_notice: list[str] = []


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _config(
    url: str, plugins: Sequence[str], folder: Path, key_file: Path, *, audited: bool = True
) -> Config:
    """A deployment as ``qiao init`` makes it: a qiao.toml naming the key file (which
    also wraps the audit key), in a folder of its own.

    Every process re-reads the metadata version on each request in tests, so a
    change made through one runtime is seen at once by the others.
    """
    folder.mkdir(parents=True, exist_ok=True)
    settings = {
        "database": {"url": url},
        "plugins": {"enabled": list(plugins)},
        "metadata": {"check_interval": 0},
        "keys": {"provider": "file", "file": str(key_file)},
    }
    if audited:
        settings["audit"] = {"key_file": str(key_file)}
    path = folder / CONFIG_FILE
    path.write_text(tomli_w.dumps(settings), encoding="utf-8")
    return Config.load(path, env={})


def _seed_template(
    url: str,
    plugins: Sequence[str],
    extra: Sequence[Any],
    folder: Path,
    key_file: Path,
    audited: bool,
) -> str:
    """Migrate a template database and give it an administrator; returns its token."""
    config = _config(url, plugins, folder, key_file, audited=audited)
    runtime = Runtime(config, extra_plugins=extra)
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
def qiao_key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's key file (0600), as ``qiao init`` writes one: it wraps the data
    keys and the audit key of every test database of the session."""
    path = tmp_path_factory.mktemp("qiao-keys") / "qiao-kek.json"
    generate_key_file(path)
    return path


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


@pytest.fixture
def qiao_audited_setup() -> bool:
    """Whether the test database's setup is audited, as ``qiao init``'s is (the default).

    Tests of the audit log's own mechanics override it to False, to start from
    an empty log that their first write keys.
    """
    return True


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
) -> Iterator[tuple[str, str]]:
    """A fresh database URL and the administrator's token in it, released after the test."""
    databases = request.getfixturevalue(f"_qiao_{qiao_backend}")
    key_file: Path = request.getfixturevalue("qiao_key_file")
    audited: bool = request.getfixturevalue("qiao_audited_setup")
    folders: pytest.TempPathFactory = request.getfixturevalue("tmp_path_factory")
    names = [getattr(p, "__name__", repr(p)) for p in qiao_extra_plugins]
    key = repr((tuple(qiao_enabled_plugins), names, audited))

    def seed(url: str) -> str:
        folder = folders.mktemp("qiao-template")
        return _seed_template(
            url, qiao_enabled_plugins, qiao_extra_plugins, folder, key_file, audited
        )

    url, token = databases.fresh(key, seed)
    yield url, str(token)
    databases.release(url)


@pytest.fixture
def qiao_database_url(_qiao_fresh: tuple[str, str]) -> str:
    return _qiao_fresh[0]


@pytest.fixture
def qiao_admin_token(_qiao_fresh: tuple[str, str]) -> str:
    return _qiao_fresh[1]


@pytest.fixture
def qiao_config(
    qiao_database_url: str,
    qiao_enabled_plugins: Sequence[str],
    qiao_key_file: Path,
    tmp_path: Path,
) -> Config:
    return _config(qiao_database_url, qiao_enabled_plugins, tmp_path / "deployment", qiao_key_file)


@pytest.fixture
def qiao_empty_database_url(request: pytest.FixtureRequest, qiao_backend: str) -> Iterator[str]:
    """A new, empty database on the test's backend, for ``qiao init`` to set up."""
    databases = request.getfixturevalue(f"_qiao_{qiao_backend}")
    url: str = databases.empty()
    yield url
    databases.release(url)


@pytest.fixture
def qiao_deployment(qiao_empty_database_url: str, tmp_path: Path) -> Deployment:
    """A deployment made by ``qiao init`` (as a subprocess) on a new database of the
    test's backend; drive it with ``.run(...)`` and ``.serve()`` (core/testing/deployment.py)."""
    return init_deployment(tmp_path / "deployment", qiao_empty_database_url)


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
    if audit.bound(runtime) is not None:  # the audit key made, as 'qiao init' does
        audit.initialize(runtime, existing_ok=True)
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

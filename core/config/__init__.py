"""A deployment's settings: qiao.toml, overridden by environment variables.

A deployment is a folder (see docs/deploy.md). Commands run inside it find its
qiao.toml; ``--config PATH`` or ``QIAO_CONFIG`` names another. Environment
variables override the file, so containers can be configured without editing
it: QIAO_DATABASE_URL, QIAO_PLUGINS (comma-separated), QIAO_HOST, QIAO_PORT,
QIAO_AUDIT_KEY_FILE. The ``[audit]`` table is read by :mod:`.audit`, here rather
than in the audit package, because the configuration sits below the features.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from qiao.core.config.audit import KEY_FILE_ENV, AuditSettings
from qiao.core.errors import ConfigurationError
from qiao.core.storage.database import PoolSettings

CONFIG_FILE = "qiao.toml"
CONFIG_ENV = "QIAO_CONFIG"


@dataclass(frozen=True)
class GraphQLSettings:
    """``[graphql]``: what the /graphql endpoint accepts (docs/graphql.md)."""

    #: ``trusted_documents``: the clients' manifest of documents by SHA-256, if any.
    trusted_documents: Path | None = None
    #: ``require_trusted_documents``: refuse every query not in that manifest.
    require_trusted_documents: bool = False
    #: ``max_batch``: operations one batched request (a JSON array) may carry.
    max_batch: int = 10

    @classmethod
    def from_table(cls, table: dict[str, Any], root: Path, path: Path) -> GraphQLSettings:
        manifest = table.get("trusted_documents")
        if manifest is not None and not isinstance(manifest, str):
            raise ConfigurationError(f"{path}: [graphql] trusted_documents must be a file path")
        required = table.get("require_trusted_documents", cls.require_trusted_documents)
        if not isinstance(required, bool):
            raise ConfigurationError(
                f"{path}: [graphql] require_trusted_documents must be true or false"
            )
        if required and manifest is None:
            raise ConfigurationError(
                f"{path}: [graphql] require_trusted_documents needs trusted_documents, the "
                "manifest of the documents to allow"
            )
        max_batch = _whole(table.get("max_batch", cls.max_batch), "[graphql] max_batch")
        if max_batch < 1:
            raise ConfigurationError(f"{path}: [graphql] max_batch must be at least 1")
        return cls(
            trusted_documents=(root / manifest).resolve() if manifest is not None else None,
            require_trusted_documents=required,
            max_batch=max_batch,
        )


@dataclass(frozen=True)
class Config:
    """Everything a Qiao process needs to know about its deployment."""

    database_url: str = "sqlite:///qiao.db"
    plugins: tuple[str, ...] = ("crm",)
    host: str = "127.0.0.1"
    port: int = 8000
    #: Whether ``qiao serve`` logs every request ([server] access_log); off costs less CPU.
    access_log: bool = False
    #: Connections each process keeps ([database] pool_size, max_overflow, read_pool_size;
    #: docs/deploy.md).
    pool: PoolSettings = field(default_factory=PoolSettings)
    #: Seconds between checks of the metadata version by each process (0: every request).
    metadata_check_interval: float = 1.0
    root: Path = field(default_factory=Path.cwd)
    path: Path | None = None
    audit: AuditSettings = field(default_factory=AuditSettings)
    #: ``[server] production``: a deployment serving real users (introspection off by default).
    production: bool = False
    #: ``[server] introspection``: None follows ``production`` (on in development only).
    introspection: bool | None = None
    #: ``[server] cors_origins``: browser origins allowed to call the API (none by default).
    cors_origins: tuple[str, ...] = ()
    #: ``[server] max_body_bytes``: larger request bodies are refused while they stream in.
    max_body_bytes: int = 1_000_000
    #: ``[clock] controllable``: admins may set and advance the clock (acceptance runs;
    #: docs/clock.md). Refused at start-up together with ``production``.
    clock_controllable: bool = False
    #: ``[graphql]``: batches and trusted documents.
    graphql: GraphQLSettings = field(default_factory=GraphQLSettings)

    @property
    def introspection_enabled(self) -> bool:
        return (not self.production) if self.introspection is None else self.introspection

    @classmethod
    def load(cls, path: Path | None = None, env: dict[str, str] | None = None) -> Config:
        """Read qiao.toml (``path``, ``$QIAO_CONFIG`` or ./qiao.toml) and apply overrides."""
        env = dict(os.environ if env is None else env)
        if path is None and env.get(CONFIG_ENV):
            path = Path(env[CONFIG_ENV])
        if path is None and Path(CONFIG_FILE).is_file():
            path = Path(CONFIG_FILE)
        config = cls.from_file(path) if path is not None else cls()
        return config.with_env(env)

    @classmethod
    def from_file(cls, path: Path) -> Config:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"no configuration file at {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
        root = path.resolve().parent
        db = _table(data, "database", path)
        plugins = _table(data, "plugins", path)
        server = _table(data, "server", path)
        metadata = _table(data, "metadata", path)
        audit = _table(data, "audit", path)
        clock = _table(data, "clock", path)
        graphql = _table(data, "graphql", path)
        try:
            return cls(
                database_url=_absolute_sqlite(str(db.get("url", cls.database_url)), root),
                plugins=tuple(plugins.get("enabled", cls.plugins)),
                host=str(server.get("host", cls.host)),
                port=int(server.get("port", cls.port)),
                production=_flag(server, "production", cls.production, path),
                introspection=(
                    _flag(server, "introspection", False, path)
                    if "introspection" in server
                    else None
                ),
                cors_origins=_origins(server.get("cors_origins", []), path),
                max_body_bytes=int(server.get("max_body_bytes", cls.max_body_bytes)),
                access_log=_flag(server, "access_log", cls.access_log, path),
                pool=PoolSettings(
                    size=_whole(db.get("pool_size", PoolSettings.size), "[database] pool_size"),
                    overflow=_whole(
                        db.get("max_overflow", PoolSettings.overflow), "[database] max_overflow"
                    ),
                    reads=_whole(
                        db.get("read_pool_size", PoolSettings.reads), "[database] read_pool_size"
                    ),
                ),
                metadata_check_interval=float(
                    metadata.get("check_interval", cls.metadata_check_interval)
                ),
                root=root,
                path=path.resolve(),
                audit=AuditSettings.from_table(audit, root),
                clock_controllable=_flag(clock, "controllable", False, path, "clock"),
                graphql=GraphQLSettings.from_table(graphql, root, path),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{path}: {exc}") from None

    def with_env(self, env: dict[str, str]) -> Config:
        changes: dict[str, Any] = {}
        if env.get("QIAO_DATABASE_URL"):
            changes["database_url"] = _absolute_sqlite(env["QIAO_DATABASE_URL"], self.root)
        if env.get("QIAO_PLUGINS") is not None and "QIAO_PLUGINS" in env:
            changes["plugins"] = tuple(p.strip() for p in env["QIAO_PLUGINS"].split(",") if p)
        if env.get("QIAO_HOST"):
            changes["host"] = env["QIAO_HOST"]
        if env.get(KEY_FILE_ENV):
            key_file = (self.root / env[KEY_FILE_ENV]).resolve()
            changes["audit"] = replace(self.audit, key_file=key_file)
        if env.get("QIAO_PORT"):
            try:
                changes["port"] = int(env["QIAO_PORT"])
            except ValueError:
                raise ConfigurationError("QIAO_PORT must be a number") from None
        return replace(self, **changes)


def _whole(value: Any, name: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigurationError(f"{name} must be a whole number")
    return value


def _table(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name, {})
    if not isinstance(value, dict):
        raise ConfigurationError(f"{path}: [{name}] must be a table")
    return value


def _flag(
    table: dict[str, Any], name: str, default: bool, path: Path, section: str = "server"
) -> bool:
    value = table.get(name, default)
    if not isinstance(value, bool):
        raise ConfigurationError(f"{path}: [{section}] {name} must be true or false")
    return value


def _origins(value: Any, path: Path) -> tuple[str, ...]:
    """``cors_origins``: full origins such as "https://crm.example.cn" (no paths, no "*")."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{path}: [server] cors_origins must be a list of origins")
    for origin in value:
        scheme, _, rest = origin.partition("://")
        if scheme not in {"http", "https"} or not rest or "/" in rest:
            raise ConfigurationError(
                f"{path}: [server] cors_origins: {origin!r} is not an origin like "
                "'https://crm.example.cn'"
            )
    return tuple(value)


def _absolute_sqlite(url: str, root: Path) -> str:
    """``sqlite:///qiao.db`` is relative to the deployment folder, not the working directory."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/") and url != "sqlite://":
        rest = url.removeprefix(prefix)
        if rest and rest != ":memory:":
            return prefix + str((root / rest).resolve())
    return url

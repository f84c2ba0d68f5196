"""A connector's settings as the plugin's code reads them: the record, secrets opened.

Secrets are write-only fields of ``connector``: set through GraphQL or the CLI, sealed
with SM4 at rest, and readable only here, through the records service as the system.
Each vendor names the settings it needs; a missing one is a clear error naming it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qiao.api import Actor, BadUserInput, ConfigurationError, NotFound, Runtime

SYSTEM = Actor.system()

#: Per vendor, the ``settings`` keys a connector needs, and which secrets.
REQUIRED: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "wecom": (("corp_id", "agent_id"), ("app_secret",)),
    "dingtalk": (("app_key", "agent_id"), ("app_secret",)),
    "kingdee": (("acct_id", "username"), ("app_secret",)),
    "yonyou": (("app_key", "tenant_id"), ("app_secret",)),
    "sap": (("username",), ("app_secret",)),
    "email": (("host", "port", "sender"), ()),
    "imap": (("host", "port", "username"), ("app_secret",)),
    "objectstore": (("kind",), ()),
}

SECRETS = ("app_secret", "callback_token", "callback_aes_key")


@dataclass(frozen=True)
class Connector:
    """One connector record, with its secrets in plaintext (never to leave the process)."""

    id: str
    name: str
    vendor: str
    active: bool
    base_url: str | None
    settings: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False)
    sync_minutes: int | None = None

    @classmethod
    def of(cls, record: Mapping[str, Any]) -> Connector:
        return cls(
            id=str(record["id"]),
            name=str(record["name"]),
            vendor=str(record["vendor"]),
            active=bool(record.get("active")),
            base_url=record.get("base_url") or None,
            settings=dict(record.get("settings") or {}),
            secrets={k: str(record[k]) for k in SECRETS if record.get(k)},
            sync_minutes=record.get("sync_minutes"),
        )

    def setting(self, key: str) -> Any:
        value = self.settings.get(key)
        if value in (None, ""):
            raise ConfigurationError(f"connector {self.name!r} needs the setting {key!r}")
        return value

    def secret(self, key: str) -> str:
        value = self.secrets.get(key)
        if not value:
            raise ConfigurationError(f"connector {self.name!r} has no {key} set")
        return value


def check(vendor: str, settings: Mapping[str, Any] | None) -> None:
    """Refuse settings that lack what the vendor needs (BadUserInput on ``settings``)."""
    needed, _ = REQUIRED.get(vendor, ((), ()))
    if settings is not None and not isinstance(settings, Mapping):
        raise BadUserInput("settings is a JSON object", field="settings")
    missing = [k for k in needed if (settings or {}).get(k) in (None, "")]
    if missing:
        raise BadUserInput(
            f"a {vendor} connector needs the settings {', '.join(missing)}", field="settings"
        )


def by_name(runtime: Runtime, name: str) -> Connector:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, "connector", filter={"name": {"eq": name}}, first=1, actor=SYSTEM
        )
    if not page.records:
        raise NotFound(f"no connector named {name!r}")
    return Connector.of(page.records[0])


def by_id(runtime: Runtime, connector_id: str) -> Connector:
    with runtime.db.read() as conn:
        return Connector.of(runtime.records.require(conn, "connector", connector_id, actor=SYSTEM))


def active_of(runtime: Runtime, vendor: str) -> list[Connector]:
    """The active connectors of a vendor, by name."""
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn,
            "connector",
            filter={"vendor": {"eq": vendor}, "active": {"eq": True}},
            order_by=[{"field": "name", "direction": "ASC"}],
            first=100,
            actor=SYSTEM,
        )
    return [Connector.of(r) for r in page.records]


def first_flagged(runtime: Runtime, vendors: tuple[str, ...], flag: str) -> Connector | None:
    """The first by name of the active connectors of ``vendors`` whose ``settings.<flag>``
    is set: where a push goes when several could take it."""
    found = [c for vendor in vendors for c in active_of(runtime, vendor) if c.settings.get(flag)]
    return min(found, key=lambda c: c.name) if found else None

"""Channel records: keys and secrets made when a channel is created, lookups by key."""

from __future__ import annotations

import base64
import secrets
from typing import Any

from qiao.api import Actor, Record, Runtime

SECRET_PREFIX = "whsec_"


def complete(values: dict[str, Any]) -> None:
    """Give a new channel a URL key and, for webhooks, a Standard Webhooks secret."""
    if not values.get("key"):
        values["key"] = secrets.token_urlsafe(12)
    if values.get("kind") == "WEBHOOK" and not values.get("secret"):
        values["secret"] = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def channel_actor(channel: Record) -> Actor:
    """Who writes what a channel receives: the channel itself, named in the audit trail
    and in each lead's history as ``channel:<key>``, with every right, as a public form or
    webhook has no user behind it."""
    return Actor(user_id=None, username=f"channel:{channel['key']}", is_admin=True)


def find(runtime: Runtime, key: str, kind: str) -> Record | None:
    """The active channel of this kind with this key (one statement: every form post and
    webhook call asks, so it takes no transaction of its own)."""
    page = runtime.db.run_read(
        lambda conn: runtime.records.list(
            conn,
            "lead_channel",
            filter={"key": {"eq": key}, "kind": {"eq": kind}, "is_active": {"eq": True}},
            first=1,
            actor=Actor.system(),
        )
    )
    return page.records[0] if page.records else None

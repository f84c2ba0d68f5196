"""Channel records: keys and secrets made when a channel is created, lookups by key."""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from qiao.api import Actor, Record, Runtime, WriteContext

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


class ChannelChanged(Exception):
    """A channel was changed or deactivated after this process looked it up: what it
    received must be judged again against the channel as it is now."""

    def __init__(self, channel: Record) -> None:
        super().__init__(f"lead channel {channel['key']} changed since it was looked up")
        self.channel = channel


@dataclass
class KnownChannels:
    """The channels this process has found, by key and kind, so that a busy webhook does not
    look its channel up on every call.

    A channel found here may be out of date: disabled, or given a new secret. So the
    transaction storing what it received checks first that it is unchanged
    (:func:`require_unchanged`, one statement a batch); when it is not, nothing is stored,
    the channel is forgotten here, and the call is judged again against a fresh lookup.
    Unknown keys are not remembered.
    """

    runtime: Runtime
    _known: dict[tuple[str, str], Record] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def find(self, key: str, kind: str) -> Record | None:
        """The channel :func:`find` gave for this key and kind, or a new lookup."""
        with self._lock:
            known = self._known.get((key, kind))
        if known is None:
            known = find(self.runtime, key, kind)
            if known is not None:
                with self._lock:
                    self._known[(key, kind)] = known
        return known

    def forget(self, channel: Record) -> None:
        with self._lock:
            self._known.pop((channel["key"], channel["kind"]), None)


def require_unchanged(ctx: WriteContext, seen: Sequence[Record]) -> None:
    """Raise :class:`ChannelChanged` unless the channel of ``seen`` (records of one channel,
    as calls were judged against them) is still active and at the version of each; within
    the transaction that stores what the calls brought."""
    current = ctx.records.list(
        ctx.connection,
        "lead_channel",
        filter={"id": {"eq": seen[0]["id"]}, "is_active": {"eq": True}},
        first=1,
        actor=Actor.system(),
    ).records
    for channel in seen:
        if not current or current[0]["version"] != channel["version"]:
            raise ChannelChanged(channel)

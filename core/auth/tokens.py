"""API tokens: random secrets shown once, stored only as SHA-256 hashes.

A token is ``qiao_`` plus 32 random bytes (URL-safe base64). Being
high-entropy, it needs no slow hash: SHA-256 lets the server look it up by
index. Tokens expire and can be revoked; a revoked token stops working within
:data:`CACHE_SECONDS` on every process.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from sqlalchemy import Connection, insert, select, update

from qiao.core.audit.log import record_security
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput, NotFound, Unauthenticated
from qiao.core.ids import new_id
from qiao.core.records.context import Actor
from qiao.core.storage import system
from qiao.core.storage.database import Database

PREFIX = "qiao_"
SCOPES = ("write", "read")
CACHE_SECONDS = 5.0
TOKEN_CREATED = "token.create"
TOKEN_REVOKED = "token.revoke"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(
    conn: Connection,
    catalog: Catalog,
    username: str,
    name: str = "api",
    expires_in: dt.timedelta | None = dt.timedelta(days=90),
    scope: str = "write",
) -> str:
    """Issue a token for ``username``; returns the secret, which is never stored.

    ``scope`` is ``"write"`` (everything the user may do) or ``"read"`` (queries only).
    """
    if scope not in SCOPES:
        raise BadUserInput(f"a token's scope is one of {', '.join(SCOPES)}", field="scope")
    users = catalog.table("user")
    user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if user_id is None:
        raise NotFound(f"no user named {username!r}", field="user")
    token = PREFIX + secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    token_id = new_id()
    conn.execute(
        insert(system.api_token).values(
            id=token_id,
            user_id=user_id,
            name=name,
            token_hash=hash_token(token),
            created_at=now,
            expires_at=now + expires_in if expires_in else None,
            scope=scope,
        )
    )
    details = {"token_id": token_id, "name": name, "scope": scope}
    record_security(conn, TOKEN_CREATED, user_id=user_id, details=details)
    return token


def revoke_token(conn: Connection, token_id: str) -> bool:
    t = system.api_token
    user_id = conn.execute(
        update(t)
        .where(t.c.id == token_id, t.c.revoked_at.is_(None))
        .values(revoked_at=dt.datetime.now(dt.UTC))
        .returning(t.c.user_id)
    ).scalar()
    if user_id is None:
        return False
    record_security(conn, TOKEN_REVOKED, user_id=user_id, details={"token_id": token_id})
    return True


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: everything but the secret (which is not stored)."""

    id: str
    username: str
    name: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    revoked_at: dt.datetime | None


def list_tokens(conn: Connection, catalog: Catalog, username: str | None = None) -> list[TokenInfo]:
    """Every token (of ``username`` if given), oldest first."""
    t = system.api_token
    users = catalog.table("user")
    stmt = (
        select(t.c.id, users.c.username, t.c.name, t.c.created_at, t.c.expires_at, t.c.revoked_at)
        .select_from(t.join(users, users.c.id == t.c.user_id))
        .order_by(t.c.created_at, t.c.id)
    )
    if username is not None:
        stmt = stmt.where(users.c.username == username)
    return [TokenInfo(**row._mapping) for row in conn.execute(stmt)]


class Authenticator:
    """Resolves bearer tokens to actors, caching answers briefly per process."""

    def __init__(self, db: Database, catalog: callable) -> None:  # type: ignore[valid-type]
        self.db = db
        self.catalog = catalog
        self._cache: dict[str, tuple[float, Actor]] = {}
        self._lock = threading.Lock()

    def cached(self, authorization: str) -> Actor | None:
        """The actor of a bearer header answered within :data:`CACHE_SECONDS`, if any."""
        _, _, token = authorization.partition(" ")
        hit = self._cache.get(hash_token(token.strip()))
        if hit is not None and time.monotonic() - hit[0] < CACHE_SECONDS:
            return hit[1]
        return None

    def actor_for(self, authorization: str | None) -> Actor:
        if not authorization:
            raise Unauthenticated("send 'Authorization: Bearer <token>'; see 'qiao token create'")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <token>'")
        digest = hash_token(token.strip())
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            return cached[1]
        actor = self._lookup(digest)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now, actor)
        return actor

    def _lookup(self, digest: str) -> Actor:
        t = system.api_token
        users = self.catalog().table("user")
        row = self.db.run_read(
            lambda conn: conn.execute(
                select(
                    users.c.id,
                    users.c.username,
                    users.c.is_admin,
                    users.c.is_active,
                    t.c.expires_at,
                    t.c.revoked_at,
                    t.c.scope,
                )
                .select_from(t.join(users, users.c.id == t.c.user_id))
                .where(t.c.token_hash == digest)
            ).first()
        )
        if row is None or row.revoked_at is not None:
            raise Unauthenticated("the token is unknown or revoked")
        if row.expires_at is not None and row.expires_at <= dt.datetime.now(dt.UTC):
            raise Unauthenticated("the token has expired; create a new one")
        if not row.is_active:
            raise Unauthenticated("the user is deactivated")
        return Actor(
            user_id=row.id,
            username=row.username,
            is_admin=bool(row.is_admin),
            read_only=row.scope == "read",
        )

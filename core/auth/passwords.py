"""Password sign-in: argon2 hashes, failures slowed, limited and locked out per address.

A sign-in issues an ordinary API token with a short life (:data:`SESSION`),
so every request afterwards is authenticated one way. Failures are counted
per client address and name typed (:mod:`.throttle`), so a stranger who knows
a user name can lock only their own address out of it, never its owner.
Every checked attempt, good or bad, goes to the audit log and the application
log; refusals by the limits go to the application log.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from qiao.core.audit.log import record_login, record_security
from qiao.core.auth import throttle
from qiao.core.auth.tokens import create_token
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput, NotFound, QiaoError, Unauthenticated
from qiao.core.records.context import Actor, Source
from qiao.core.storage import system
from qiao.core.storage.database import Database

log = logging.getLogger("qiao.auth")
_hasher = PasswordHasher()

MIN_LENGTH = 10
SESSION = dt.timedelta(hours=12)
PASSWORD_SET = "password.set"
UNLOCKED = "password.unlock"
#: Seconds to wait before answering the n-th failure for a name: 0.2, 0.4, 0.8 ... at most 3.
MAX_DELAY = 3.0


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password, verified for unknown users so they cost what real ones do.

    Made once per process as the app starts (so the first unknown name costs no more than
    later ones), not on import: most commands never check a password.
    """
    return _hasher.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Session:
    token: str
    expires_at: dt.datetime


def set_password(conn: Connection, catalog: Catalog, username: str, password: str) -> None:
    """Store an argon2 hash of ``password`` for ``username`` (and unlock the account)."""
    if len(password) < MIN_LENGTH:
        raise BadUserInput(f"a password needs at least {MIN_LENGTH} characters", field="password")
    users = catalog.table("user")
    user_id = conn.execute(select(users.c.id).where(users.c.username == username)).scalar()
    if user_id is None:
        raise NotFound(f"no user named {username!r}", field="user")
    c = system.credential
    values = {
        "password_hash": _hasher.hash(password),
        "failed_attempts": 0,
        "locked_until": None,
        "changed_at": dt.datetime.now(dt.UTC),
    }
    if conn.execute(select(c.c.user_id).where(c.c.user_id == user_id)).first() is None:
        conn.execute(insert(c).values(user_id=user_id, **values))
    else:
        conn.execute(update(c).where(c.c.user_id == user_id).values(**values))
    record_security(conn, PASSWORD_SET, user_id=user_id, details={"username": username})


@dataclass(frozen=True)
class Attempt:
    """What a sign-in comes to: a session or an error, answered after ``delay`` seconds.

    The caller waits the delay without holding a thread (``asyncio.sleep``),
    so failed sign-ins cannot fill the request thread pool.
    """

    session: Session | None
    error: QiaoError | None
    delay: float = 0.0


def sign_in(
    db: Database,
    catalog: Catalog,
    username: str,
    password: str,
    request_id: str,
    address: str,
    now: dt.datetime | None = None,
) -> Attempt:
    """Check a user name and password tried from ``address``.

    Unknown, inactive and password-less users cost one argon2 verification as
    real ones do, and get the same answer after the same delay. Limits, keyed
    by the name typed (never by whether it exists): an address with
    :data:`.throttle.ADDRESS_LIMIT` failures within :data:`.throttle.WINDOW` is refused; an address
    with :data:`.throttle.LOCK_AFTER` failures for one name is locked out of that name for
    :data:`.throttle.LOCK_FOR` (others, the owner included, are not); and failures against
    one name from anywhere slow its answers down, up to :data:`MAX_DELAY`.
    """
    now = now or dt.datetime.now(dt.UTC)
    key = (address[:64], username[:255])
    with db.read() as conn:
        refusal = throttle.refusal(conn, key, now)
        row = _account(conn, catalog, username) if refusal is None else None
    if refusal is not None:
        log.warning("sign-in refused for %r from %s: %s", username, address, refusal.message)
        return Attempt(None, refusal)
    # argon2 runs outside any transaction: it is slow on purpose, and must not hold
    # SQLite's write lock while it works.
    usable = row is not None and row.password_hash is not None and row.is_active
    matches = _verify(row.password_hash if usable else dummy_hash(), password) and usable
    user_id = row.id if row is not None else None
    c = system.credential
    with db.write() as conn:
        if matches:
            throttle.forget(conn, key)
            conn.execute(update(c).where(c.c.user_id == user_id).values(failed_attempts=0))
            record_login(
                conn,
                username=username,
                user_id=user_id,
                succeeded=True,
                source=Source.GRAPHQL,
                request_id=request_id,
            )
            token = create_token(conn, catalog, username, name="sign-in", expires_in=SESSION)
            log.info("sign-in: %s from %s", username, address)
            return Attempt(Session(token=token, expires_at=now + SESSION), None)
        failures = throttle.fail(conn, key, now)
        if usable:
            conn.execute(
                update(c)
                .where(c.c.user_id == user_id)
                .values(failed_attempts=c.c.failed_attempts + 1)
            )
        reason = "wrong password" if usable else "unknown or inactive"
        _fail(conn, username, user_id, request_id, reason)
    delay = min(0.1 * 2**failures, MAX_DELAY)
    return Attempt(None, Unauthenticated("the user name or password is wrong"), delay)


def unlock(
    conn: Connection,
    catalog: Catalog,
    username: str,
    actor: Actor | None = None,
    source: Source = Source.CLI,
) -> int:
    """Lift every lockout of ``username`` and reset its failure counts (an administrator's).

    Returns how many addresses were locked out of it or had failures counted.
    """
    row = _account(conn, catalog, username)
    if row is None:
        raise NotFound(f"no user named {username!r}", field="user")
    c = system.credential
    conn.execute(
        update(c).where(c.c.user_id == row.id).values(failed_attempts=0, locked_until=None)
    )
    cleared = throttle.forget_name(conn, username[:255])
    details = {"addresses": cleared}
    record_security(conn, UNLOCKED, user_id=row.id, details=details, actor=actor, source=source)
    return cleared


def _account(conn: Connection, catalog: Catalog, username: str) -> Any:
    users = catalog.table("user")
    c = system.credential
    return conn.execute(
        select(users.c.id, users.c.is_active, c.c.password_hash)
        .select_from(users.outerjoin(c, c.c.user_id == users.c.id))
        .where(users.c.username == username)
    ).first()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _fail(
    conn: Connection, username: str, user_id: str | None, request_id: str, reason: str
) -> None:
    log.warning("failed sign-in for %r: %s", username, reason)
    record_login(
        conn,
        username=username,
        user_id=user_id,
        succeeded=False,
        source=Source.GRAPHQL,
        request_id=request_id,
        reason=reason,
    )

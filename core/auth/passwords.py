"""Password sign-in: argon2 hashes, slowed and locked out after repeated failures.

A sign-in issues an ordinary API token with a short life (:data:`SESSION`),
so every request afterwards is authenticated one way. Failures are counted per
account: each one waits a little longer before answering, and
:data:`LOCK_AFTER` failures in a row lock the account for :data:`LOCK_FOR`.
Every attempt, good or bad, goes to the audit log and the application log.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, insert, select, update

from qiao.core.audit.log import record_login, record_security
from qiao.core.auth.tokens import create_token
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput, NotFound, Unauthenticated
from qiao.core.records.context import Source
from qiao.core.storage import system
from qiao.core.storage.database import Database

log = logging.getLogger("qiao.auth")
_hasher = PasswordHasher()

MIN_LENGTH = 10
LOCK_AFTER = 5
LOCK_FOR = dt.timedelta(minutes=15)
SESSION = dt.timedelta(hours=12)
PASSWORD_SET = "password.set"
#: Seconds to wait before answering the n-th failure in a row: 0.2, 0.4, 0.8 ... at most 3.
MAX_DELAY = 3.0


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


def sign_in(
    db: Database, catalog: Catalog, username: str, password: str, request_id: str
) -> Session:
    """A session token for good credentials; UNAUTHENTICATED (after a delay) otherwise.

    The message never says whether the name or the password was wrong.
    """
    now = dt.datetime.now(dt.UTC)
    users = catalog.table("user")
    c = system.credential
    with db.write() as conn:
        row = conn.execute(
            select(
                users.c.id,
                users.c.is_active,
                c.c.password_hash,
                c.c.failed_attempts,
                c.c.locked_until,
            )
            .select_from(users.outerjoin(c, c.c.user_id == users.c.id))
            .where(users.c.username == username)
        ).first()
        user_id = row.id if row is not None else None
        locked_until = row.locked_until if row is not None else None
        if locked_until is not None and locked_until > now:
            # Refused outside the transaction, so the attempt's audit entry is kept.
            _fail(conn, username, user_id, request_id, "locked")
            failures = LOCK_AFTER
        elif row is None or row.password_hash is None or not row.is_active:
            _fail(conn, username, user_id, request_id, "unknown or inactive")
            failures = 1
        elif not _verify(row.password_hash, password):
            failures = row.failed_attempts + 1
            locked_until = now + LOCK_FOR if failures >= LOCK_AFTER else None
            conn.execute(
                update(c)
                .where(c.c.user_id == user_id)
                .values(failed_attempts=failures, locked_until=locked_until)
            )
            reason = "locked" if locked_until else "wrong password"
            _fail(conn, username, user_id, request_id, reason)
        else:
            conn.execute(
                update(c).where(c.c.user_id == user_id).values(failed_attempts=0, locked_until=None)
            )
            record_login(
                conn,
                username=username,
                user_id=user_id,
                succeeded=True,
                source=Source.GRAPHQL,
                request_id=request_id,
            )
            token = create_token(conn, catalog, username, name="sign-in", expires_in=SESSION)
            log.info("sign-in: %s", username)
            return Session(token=token, expires_at=now + SESSION)
    time.sleep(min(0.1 * 2**failures, MAX_DELAY))
    if locked_until is not None and locked_until > now:
        raise Unauthenticated(
            f"too many failed sign-ins; the account is locked until {locked_until:%H:%M} UTC"
        )
    raise Unauthenticated("the user name or password is wrong")


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

"""Commands for people and credentials: users and API tokens.

Users are records of the ``user`` entity and are written through the records
service, like any record, so the same validation and hooks apply as through
GraphQL. ``token create`` prints the secret alone on stdout, so that scripts
can capture it (``TOKEN=$(qiao token create --user ci)``).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Sequence

import click

from qiao.cli.state import CliState, pass_state
from qiao.core.auth.passwords import set_password, unlock
from qiao.core.auth.tokens import create_token, list_tokens, revoke_token
from qiao.core.errors import NotFound
from qiao.core.ids import is_record_id
from qiao.core.records.context import Actor, Source, WriteContext
from qiao.core.runtime import Runtime

ADMIN_ROLE = "admin"
MEMBER_ROLE = "member"
DEFAULT_TOKEN_DAYS = 90


def create_user(
    runtime: Runtime, username: str, display_name: str, email: str | None, role: str
) -> str:
    """Store a user; returns its id. A taken username or e-mail raises CONFLICT.

    ``role`` is ``admin``, ``member`` (no rights until granted) or the name of a
    role record, which is granted in the same transaction.
    """
    values = {"username": username, "display_name": display_name, "is_admin": role == ADMIN_ROLE}
    if email:
        values["email"] = email
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        record = runtime.records.create(ctx, "user", values)
        if role not in {ADMIN_ROLE, MEMBER_ROLE}:
            _grant(runtime, ctx, record["id"], role)
    return str(record["id"])


def _grant(runtime: Runtime, ctx: WriteContext, user_id: str, role: str) -> None:
    roles = runtime.records.list(
        ctx.connection, "role", filter={"name": {"eq": role}}, first=1, actor=Actor.system()
    )
    if not roles.records:
        with runtime.db.read() as conn:
            names = [
                r["name"]
                for r in runtime.records.list(conn, "role", first=500, actor=Actor.system()).records
            ]
        raise NotFound(
            f"no role named {role!r} (roles: {', '.join(names) or 'none'}; or admin, member)",
            field="role",
        )
    runtime.records.create(
        ctx, "role_assignment", {"user": user_id, "role": roles.records[0]["id"]}
    )


def _user_id(runtime: Runtime, username: str) -> str:
    with runtime.db.read() as conn:
        found = runtime.records.list(
            conn, "user", filter={"username": {"eq": username}}, first=1, actor=Actor.system()
        )
    if not found.records:
        raise NotFound(f"no user named {username!r}", field="user")
    return str(found.records[0]["id"])


def _ask_password() -> str:
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Left-aligned columns, as wide as their widest cell on a terminal.

    Chinese characters take two terminal cells, so widths count cells, not characters.
    """
    widths = [max(map(_cells, column)) for column in zip(headers, *rows, strict=True)]
    for row in (headers, *rows):
        cells = (c + " " * (w - _cells(c)) for c, w in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def _cells(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _when(value: dt.datetime | None, empty: str = "-") -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else empty


@click.group()
def user() -> None:
    """People who sign in and own records."""


@user.command("create")
@click.argument("username")
@click.option("--display-name", help="The name people see (default: USERNAME).")
@click.option("--email", help="E-mail address (unique).")
@click.option(
    "--role",
    default=MEMBER_ROLE,
    show_default=True,
    help="'admin' may do everything; a role's name (e.g. sales_rep) grants that role; "
    "'member' grants nothing yet.",
)
@click.option("--password", "ask_password", is_flag=True, help="Set a password (asked for).")
@pass_state
def create_user_command(
    state: CliState,
    username: str,
    display_name: str | None,
    email: str | None,
    role: str,
    ask_password: bool,
) -> None:
    """Create the user USERNAME."""
    password = _ask_password() if ask_password else None
    runtime = state.runtime()
    user_id = create_user(runtime, username, display_name or username, email, role)
    if password is not None:
        with runtime.db.write() as conn:
            set_password(conn, runtime.current(), username, password)
    click.echo(f"Created {role} '{username}' ({user_id}).")
    click.echo(f"Give them an API token with: qiao token create --user {username}")


@user.command("grant")
@click.argument("username")
@click.argument("role")
@pass_state
def grant_command(state: CliState, username: str, role: str) -> None:
    """Give USERNAME the role ROLE (see docs/permissions.md)."""
    runtime = state.runtime()
    user_id = _user_id(runtime, username)
    with runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        _grant(runtime, ctx, user_id, role)
    click.echo(f"'{username}' now holds the role '{role}'.")


@user.command("set-password")
@click.argument("username")
@pass_state
def set_password_command(state: CliState, username: str) -> None:
    """Set USERNAME's password (asked for) and lift any lockout."""
    password = _ask_password()
    runtime = state.runtime()
    with runtime.db.write() as conn:
        set_password(conn, runtime.current(), username, password)
    click.echo(f"Password set for '{username}'.")


@user.command("unlock")
@click.argument("username")
@pass_state
def unlock_command(state: CliState, username: str) -> None:
    """Lift every sign-in lockout of USERNAME, from every client address.

    A lockout only keeps out the address that failed too often for that name;
    this is for the case where that address is the user's own (a shared office
    address, say).
    """
    runtime = state.runtime()
    with runtime.db.write() as conn:
        cleared = unlock(conn, runtime.current(), username)
    click.echo(f"'{username}' is unlocked (failure counts cleared for {cleared} addresses).")


@user.command("list")
@pass_state
def list_users(state: CliState) -> None:
    """List users by username."""
    runtime = state.runtime()
    rows: list[list[str]] = []
    after: str | None = None
    with runtime.db.read() as conn:
        while True:
            page = runtime.records.list(
                conn,
                "user",
                order_by=[{"field": "username", "direction": "ASC"}],
                first=500,
                after=after,
                actor=Actor.system(),
            )
            rows += [
                [
                    r["username"],
                    r["display_name"],
                    r["email"] or "-",
                    ADMIN_ROLE if r["is_admin"] else MEMBER_ROLE,
                    "yes" if r["is_active"] else "no",
                ]
                for r in page.records
            ]
            if not page.has_next_page:
                break
            after = page.cursors[-1]
    print_table(["USERNAME", "NAME", "EMAIL", "ROLE", "ACTIVE"], rows)


@click.group()
def token() -> None:
    """API tokens: 'Authorization: Bearer <token>'."""


@token.command("create", short_help="Issue a token and print it (shown once).")
@click.option("--user", "username", required=True, help="The user the token acts as.")
@click.option("--name", default="cli", show_default=True, help="A label to recognise it by.")
@click.option(
    "--days",
    type=click.IntRange(min=1),
    help=f"Days until it expires (default: {DEFAULT_TOKEN_DAYS}).",
)
@click.option("--no-expiry", is_flag=True, help="Never expires (revoke it when done).")
@click.option(
    "--scope",
    type=click.Choice(["write", "read"]),
    default="write",
    show_default=True,
    help="'read' tokens may only query.",
)
@pass_state
def create_token_command(
    state: CliState, username: str, name: str, days: int | None, no_expiry: bool, scope: str
) -> None:
    """Issue a token for a user and print it (only the token, shown once)."""
    if days is not None and no_expiry:
        raise click.UsageError("--days and --no-expiry exclude each other")
    expires_in = None if no_expiry else dt.timedelta(days=days or DEFAULT_TOKEN_DAYS)
    runtime = state.runtime()
    with runtime.db.write() as conn:
        secret = create_token(
            conn, runtime.current(), username, name=name, expires_in=expires_in, scope=scope
        )
    click.echo(secret)


@token.command("revoke", short_help="Revoke a token by its id.")
@click.argument("token_id")
@pass_state
def revoke_token_command(state: CliState, token_id: str) -> None:
    """Stop the token TOKEN_ID from working (see 'qiao token list' for ids)."""
    missing = NotFound(f"no active token with id {token_id!r} (see 'qiao token list')")
    if not is_record_id(token_id):
        raise missing
    with state.runtime().db.write() as conn:
        if not revoke_token(conn, token_id):
            raise missing
    click.echo(f"Revoked token {token_id}.")


@token.command("list")
@click.option("--user", "username", help="Only this user's tokens.")
@pass_state
def list_tokens_command(state: CliState, username: str | None) -> None:
    """List tokens (never their secrets, which are not stored)."""
    runtime = state.runtime()
    with runtime.db.read() as conn:
        tokens = list_tokens(conn, runtime.current(), username)
    rows = [
        [
            t.id,
            t.username,
            t.name,
            _when(t.created_at),
            _when(t.expires_at, "never"),
            _when(t.revoked_at),
        ]
        for t in tokens
    ]
    print_table(["ID", "USER", "NAME", "CREATED", "EXPIRES", "REVOKED"], rows)


COMMANDS: list[click.Command] = [user, token]

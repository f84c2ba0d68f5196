"""Every route learns its caller the way GraphQL does: from the bearer token.

Starlette's ``AuthenticationMiddleware`` with this backend sets, for every
HTTP request, ``request.user`` (a :class:`QiaoUser` whose ``actor`` is the
records service's :class:`~qiao.core.records.context.Actor`, or Starlette's
``UnauthenticatedUser``) and ``request.auth`` (scopes ``authenticated`` and,
for tokens that may write, ``write``). A plugin route calls
:func:`actor_of` to require a signed-in caller. A request without a valid
bearer token passes through anonymous (webhooks sign their own way), with
the reason kept under the scope key :data:`AUTH_ERROR`: :func:`actor_of`
answers it as UNAUTHENTICATED (401), and GraphQL as its own error (200).
"""

from __future__ import annotations

from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection, Request

from qiao.core.auth.tokens import Authenticator
from qiao.core.edge.threads import in_thread
from qiao.core.errors import Unauthenticated
from qiao.core.records.context import Actor

#: The scope key holding why a bearer token was not accepted.
AUTH_ERROR = "qiao.auth_error"


class QiaoUser(BaseUser):
    """A caller authenticated by an API or session token."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.actor.username

    @property
    def identity(self) -> str:
        return self.actor.user_id or self.actor.username


class TokenBackend(AuthenticationBackend):
    """Resolves ``Authorization: Bearer`` through the same :class:`Authenticator` as GraphQL."""

    def __init__(self, authenticator: Authenticator) -> None:
        self.authenticator = authenticator

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        header = conn.headers.get("authorization")
        if not header or header.partition(" ")[0].lower() != "bearer":
            return None
        actor = self.authenticator.cached(header)
        if actor is None:
            try:
                actor = await in_thread(self.authenticator.actor_for, header)
            except Unauthenticated as exc:
                conn.scope[AUTH_ERROR] = exc.message
                return None
        scopes = ["authenticated"] if actor.read_only else ["authenticated", "write"]
        return AuthCredentials(scopes), QiaoUser(actor)


def actor_of(request: Request) -> Actor:
    """The signed-in caller of a route; UNAUTHENTICATED (401 through the handlers) if none."""
    user = request.user
    if not isinstance(user, QiaoUser):
        raise Unauthenticated(
            request.scope.get(AUTH_ERROR)
            or "send 'Authorization: Bearer <token>'; see 'qiao token create'"
        )
    return user.actor

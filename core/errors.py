"""The errors Qiao shows to people.

Every error a caller can act on is a :class:`QiaoError` with a stable ``code``
(the GraphQL ``extensions.code`` of ../docs/graphql.md) and, for input errors,
the ``field`` it concerns. Anything else reaching a user boundary is a bug: the
boundary logs it and shows a generic message, never a traceback.
"""

from __future__ import annotations

from typing import Any, ClassVar


class QiaoError(Exception):
    """Base of the errors that carry a message a person can act on."""

    code: ClassVar[str] = "INTERNAL_SERVER_ERROR"

    def __init__(self, message: str, *, field: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.details = details

    def extensions(self) -> dict[str, Any]:
        """The GraphQL ``extensions`` object for this error."""
        ext: dict[str, Any] = {"code": self.code}
        if self.field is not None:
            ext["field"] = self.field
        ext.update(self.details)
        return ext


class BadUserInput(QiaoError):
    """The request itself is wrong: unknown field, wrong type, limit exceeded."""

    code = "BAD_USER_INPUT"


class NotFound(QiaoError):
    """The record or entity does not exist (or the caller may not know it does)."""

    code = "NOT_FOUND"


class Conflict(QiaoError):
    """The request clashes with the current state: stale version, unique value taken."""

    code = "CONFLICT"


class Contended(QiaoError):
    """The database ended the transaction to break a deadlock or a serialization conflict
    with a concurrent one. Nothing of it was written; the same request may succeed when
    sent again (``extensions.retry`` says so).

    A ``CONFLICT`` to callers, but not a :class:`Conflict`: code that takes a Conflict for
    a unique value already stored (a replayed callback) must not take a deadlock for one.
    """

    code = "CONFLICT"

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "retry": True}


class Forbidden(QiaoError):
    """The caller is known but may not do this."""

    code = "FORBIDDEN"


class Unauthenticated(QiaoError):
    """No valid credentials came with the request."""

    code = "UNAUTHENTICATED"


class ConfigurationError(QiaoError):
    """The deployment's configuration, plugins or metadata are unusable."""

    code = "CONFIGURATION_ERROR"


class MetadataError(BadUserInput):
    """An entity or field declaration is invalid."""


class TooManyRequests(QiaoError):
    """The caller is over a rate limit; trying again later may succeed (HTTP 429)."""

    code = "TOO_MANY_REQUESTS"


class MethodNotAllowed(QiaoError):
    """The HTTP method cannot do this (a mutation over GET, say; HTTP 405)."""

    code = "METHOD_NOT_ALLOWED"


class PayloadTooLarge(QiaoError):
    """The request body is larger than the deployment accepts (HTTP 413)."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(QiaoError):
    """The request body is not of a type the endpoint reads (HTTP 415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"

"""HTTP statuses for Qiao's errors, and handlers so no exception leaves as a traceback."""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from qiao.core import errors
from qiao.core.edge.headers import SECURITY_HEADERS
from qiao.core.graphql.service import INTERNAL_ERROR, error_body

log = logging.getLogger("qiao.app")

STATUS: dict[type[errors.QiaoError], int] = {
    errors.BadUserInput: 400,
    errors.Unauthenticated: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.MethodNotAllowed: 405,
    errors.Conflict: 409,
    errors.Contended: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.TooManyRequests: 429,
}
#: Codes for the statuses Starlette itself answers (unknown path, wrong method ...).
_CODES = {
    400: "BAD_USER_INPUT",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
}


def status_of(error: errors.QiaoError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS:
            return STATUS[kind]
    return 500


def error_response(error: errors.QiaoError, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(error_body(error), status_code=status_of(error), headers=headers)


async def qiao_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, errors.QiaoError)
    if status_of(exc) == 500:
        log.error("%s: %s", exc.code, exc.message)
    return error_response(exc)


async def http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _CODES.get(exc.status_code, "BAD_REQUEST" if exc.status_code < 500 else "INTERNAL")
    body = {"data": None, "errors": [{"message": exc.detail, "extensions": {"code": code}}]}
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


async def unexpected(_: Request, exc: Exception) -> Response:
    """Qiao's fault: logged with its traceback, answered with none."""
    log.error("unexpected error answering a request", exc_info=exc)
    body = {"data": None, "errors": [INTERNAL_ERROR]}
    return JSONResponse(body, status_code=500, headers=SECURITY_HEADERS)


HANDLERS = {errors.QiaoError: qiao_error, HTTPException: http_error, Exception: unexpected}

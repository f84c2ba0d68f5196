"""Reading a request's JSON body or GraphQL GET parameters, refusing what cannot be used.

A body of another media type answers 415, invalid JSON or UTF-8 and values
nested too deep or carrying unstorable text answer 400, each with a code:
nothing malformed reaches the code behind as a crash.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from qiao.core.errors import BadUserInput, UnsupportedMediaType
from qiao.core.text import json_problem

JSON_TYPES = {"application/json", "application/graphql-response+json"}


async def json_body(request: Request) -> Any:
    """The request's JSON body (its size is bounded by :class:`~.limits.BodyLimit`)."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type not in JSON_TYPES:
        raise UnsupportedMediaType("send the body as JSON, with 'Content-Type: application/json'")
    raw = await request.body()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):  # ValueError covers invalid UTF-8 too
        raise BadUserInput("the request body is not valid JSON (UTF-8)") from None
    return usable(value)


def graphql_get_parameters(request: Request) -> dict[str, Any]:
    """``query``, ``variables`` and ``operationName`` of a GraphQL GET request."""
    params = request.query_params
    variables = params.get("variables")
    try:
        parsed = json.loads(variables) if variables else None
    except (ValueError, RecursionError):
        raise BadUserInput("'variables' is not valid JSON") from None
    return usable(
        {
            "query": params.get("query"),
            "variables": parsed,
            "operationName": params.get("operationName"),
        }
    )


def usable(value: Any) -> Any:
    problem = json_problem(value)
    if problem is not None:
        raise BadUserInput(problem)
    return value

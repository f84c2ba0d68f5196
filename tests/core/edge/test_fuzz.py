"""Property-based GraphQL requests over the live schema: never a 5xx, never INTERNAL.

Queries and mutations are drawn by hypothesis-graphql from the schema the
running server reports by introspection, valid ones and invalid ones, with
NUL and any Unicode in strings, and sent as the administrator (who may call
everything). Every answer must be the caller's error or data, never Qiao's
failure.
"""

from __future__ import annotations

import datetime as dt
import string

import httpx
import pytest
from graphql import build_client_schema, get_introspection_query
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

#: Qiao's scalars travel as strings (docs/graphql.md); any string tests their parsers too.
SCALARS = {
    "DateTime": st.one_of(
        st.datetimes(timezones=st.just(dt.UTC)).map(lambda d: d.isoformat()), st.text()
    ).map(nodes.String),
    "Date": st.one_of(st.dates().map(str), st.text()).map(nodes.String),
    "Decimal": st.one_of(
        st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str), st.text()
    ).map(nodes.String),
    "JSON": st.text(alphabet=string.printable).map(nodes.String),
}
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture
def schema(http, qiao_admin_token):
    response = http.post(
        "/graphql",
        json={"query": get_introspection_query()},
        headers={"authorization": f"Bearer {qiao_admin_token}"},
    )
    return build_client_schema(response.json()["data"])


def check(http, token, query: str) -> None:
    try:
        response = http.post(
            "/graphql", json={"query": query}, headers={"authorization": f"Bearer {token}"}
        )
    except httpx.HTTPError as exc:  # the server must answer, not drop the request
        pytest.fail(f"no answer to {query!r}: {exc}")
    assert response.status_code < 500, (query, response.text)
    codes = {e.get("extensions", {}).get("code") for e in response.json().get("errors", [])}
    assert "INTERNAL_SERVER_ERROR" not in codes, (query, response.text)


@pytest.mark.parametrize("mode", [Mode.POSITIVE, Mode.NEGATIVE], ids=["valid", "invalid"])
def test_drawn_queries_and_mutations_never_fail_on_the_server(http, qiao_admin_token, schema, mode):
    strategy = st.one_of(
        from_schema(schema, custom_scalars=SCALARS, mode=mode),
        from_schema(schema, custom_scalars=SCALARS, mode=mode).map(str),
    )

    @FUZZ
    @given(query=strategy)
    def run(query) -> None:
        check(http, qiao_admin_token, str(query))

    run()

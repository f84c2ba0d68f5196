"""A small GraphQL-over-HTTP client for tests: real requests to a real server."""

from __future__ import annotations

from typing import Any

from qiao.core import outbound


class GraphQLError(AssertionError):
    """A response carried errors where a test expected data."""


class GraphQLClient:
    """Posts GraphQL requests to ``{url}/graphql`` with a bearer token (or none)."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = outbound.client(base_url=url, headers=headers, timeout=timeout)

    def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        operation_name: str | None = None,
    ) -> dict[str, Any]:
        """The whole response body (data and errors); asserts HTTP 200 and JSON."""
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        if operation_name is not None:
            body["operationName"] = operation_name
        response = self.http.post("/graphql", json=body)
        assert response.status_code == 200, (response.status_code, response.text)
        result: dict[str, Any] = response.json()
        return result

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The ``data`` of a response that must have no errors."""
        result = self.post(query, variables)
        if result.get("errors"):
            raise GraphQLError(result["errors"])
        data: dict[str, Any] = result["data"]
        return data

    def errors(self, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The ``errors`` of a response that must have some."""
        result = self.post(query, variables)
        assert result.get("errors"), f"expected errors, got {result}"
        errors: list[dict[str, Any]] = result["errors"]
        return errors

    def nodes(self, query: str, variables: dict[str, Any] | None = None) -> list[Any]:
        """The nodes of the page of a query with one root field, a Relay connection."""
        (connection,) = self.data(query, variables).values()
        return [edge["node"] for edge in connection["edges"]]

    def close(self) -> None:
        self.http.close()

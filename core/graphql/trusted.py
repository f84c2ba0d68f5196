"""Trusted documents: the GraphQL operations a deployment's own clients were built with.

A frontend's build (graphql-codegen's persisted documents, Relay's persisted
queries, or any tool that writes the same file) produces a manifest: a JSON
object from each document's SHA-256 to its text. Served with that manifest, a
client sends ``{"documentId": "sha256:<hex>", "variables": ...}`` instead of
the query text (Apollo's ``extensions.persistedQuery.sha256Hash`` is read too),
which keeps requests small and lets a CDN cache GET requests. A production
deployment can go further and require trusted documents
(``[graphql] require_trusted_documents``): then any other query is refused
before it is parsed, so nobody can probe the API with hand-written queries,
whatever the schema allows (docs/graphql.md).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qiao.core.errors import BadUserInput, ConfigurationError, Forbidden

PREFIX = "sha256:"


def document_hash(query: str) -> str:
    """The hex SHA-256 of a document's UTF-8 text: its id in a manifest."""
    return hashlib.sha256(query.encode("utf-8")).hexdigest()


class TrustedDocuments:
    """A manifest of trusted documents, checked when it is loaded."""

    def __init__(self, documents: Mapping[str, str], *, required: bool) -> None:
        self.documents = dict(documents)
        self.required = required

    @classmethod
    def none(cls) -> TrustedDocuments:
        """No manifest: every query is sent as text and nothing is required."""
        return cls({}, required=False)

    @classmethod
    def load(cls, path: Path, *, required: bool) -> TrustedDocuments:
        """Read a manifest, refusing one whose ids are not the hashes of their documents."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"no trusted-documents manifest at {path}") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{path}: not a JSON manifest: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(f"{path}: the manifest must map document hashes to queries")
        documents: dict[str, str] = {}
        for key, query in data.items():
            if not isinstance(query, str):
                raise ConfigurationError(f"{path}: {key!r} must map to the document's text")
            digest = key.removeprefix(PREFIX).lower()
            if digest != document_hash(query):
                raise ConfigurationError(
                    f"{path}: {key!r} is not the SHA-256 of its document; rebuild the manifest"
                )
            documents[digest] = query
        return cls(documents, required=required)

    def resolve(self, body: Any) -> Any:
        """The request body with its query text, looked up when it names a document by id.

        With documents required, a query sent as text passes only when it is
        itself in the manifest.
        """
        if not isinstance(body, dict):
            return body
        document_id = _document_id(body)
        if document_id is None:
            query = body.get("query")
            if self.required and not (
                isinstance(query, str) and document_hash(query) in self.documents
            ):
                raise Forbidden(
                    "this deployment runs only its trusted documents; send a documentId "
                    "from its manifest"
                )
            return body
        query = self.documents.get(document_id.removeprefix(PREFIX).lower())
        if query is None:
            raise BadUserInput(
                f"unknown document {document_id!r}; it is not in this deployment's manifest",
                field="documentId",
            )
        if "query" in body and body["query"] not in (None, query):
            raise BadUserInput("send either a query or a documentId, not both", field="query")
        return {**body, "query": query}


def _document_id(body: Mapping[str, Any]) -> str | None:
    """``documentId``, or Apollo's ``extensions.persistedQuery.sha256Hash``."""
    document_id = body.get("documentId")
    if document_id is None:
        extensions = body.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        if isinstance(persisted, dict):
            document_id = persisted.get("sha256Hash")
    if document_id is not None and not isinstance(document_id, str):
        raise BadUserInput("'documentId' must be a string like 'sha256:<hex>'", field="documentId")
    return document_id

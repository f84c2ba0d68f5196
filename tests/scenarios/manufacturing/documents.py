"""Rendering a template's PDF document through GraphQL and reading its text back (pypdf)."""

from __future__ import annotations

import base64
import io

from pypdf import PdfReader

from qiao.core.testing.client import GraphQLClient

RENDER = (
    "mutation($t: String!, $id: ID!) { renderDocument(template: $t, id: $id) "
    "{ filename contentType content } }"
)


KEPT = """query($id: String!) { documents(first: 100, filter: {recordId: {eq: $id}}) {
  edges { node { id template filename contentType content } } } }"""


def pdf_text(client: GraphQLClient, template: str, record_id: str) -> tuple[str, str]:
    """The file name and the text of the PDF ``template`` renders for the record, as ``client``.

    The text is checked to be set in an embedded CJK font, as the document says.
    """
    doc = client.data(RENDER, {"t": template, "id": record_id})["renderDocument"]
    return doc["filename"], read_pdf(doc)


def kept_documents(client: GraphQLClient, record_id: str) -> dict[str, dict[str, str]]:
    """The documents kept for the record that ``client`` may read, by id."""
    found = client.data(KEPT, {"id": record_id})["documents"]["edges"]
    return {edge["node"]["id"]: edge["node"] for edge in found}


def read_pdf(doc: dict[str, str]) -> str:
    """The text of a PDF document (``contentType``, base64 ``content``), checked to be set
    in an embedded CJK font."""
    assert doc["contentType"] == "application/pdf"
    pdf = PdfReader(io.BytesIO(base64.b64decode(doc["content"])))
    fonts = {str(f["/BaseFont"]) for p in pdf.pages for f in p["/Resources"]["/Font"].values()}
    assert any("WenQuanYi" in f or "CJK" in f for f in fonts)
    return "\n".join(page.extract_text() for page in pdf.pages)


def table_rows(text: str, first: str) -> list[list[str]]:
    """The lines of ``text`` that start with ``first``, split into their cells."""
    return [line.split() for line in text.splitlines() if line.startswith(first)]

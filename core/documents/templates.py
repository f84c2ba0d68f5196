"""Document templates as a template declares them, and read back from their records."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Connection, select

from qiao.core.catalog import Catalog
from qiao.core.metadata.sections import Section


class DocumentTemplateDecl(BaseModel):
    """A document rendered from one record of ``entity``: ``body`` is Jinja2 HTML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")
    title: str
    entity: str
    body: str
    filename: str
    #: html, or pdf: the HTML laid out as a PDF with a CJK font (docs/documents.md).
    format: Literal["html", "pdf"] = "html"
    active: bool = True


def find_template(conn: Connection, catalog: Catalog, name: str) -> DocumentTemplateDecl | None:
    """The active document template called ``name``, or None."""
    table = catalog.table("document_template")
    row = conn.execute(select(table).where(table.c.name == name, table.c.active.is_(True))).first()
    if row is None:
        return None
    keys = DocumentTemplateDecl.model_fields
    values: dict[str, Any] = {k: v for k, v in row._mapping.items() if k in keys and v is not None}
    return DocumentTemplateDecl.model_validate(values)


#: The ``document_templates`` section of a manifest (docs/documents.md).
SECTION = Section("document_templates", DocumentTemplateDecl, entity="document_template")

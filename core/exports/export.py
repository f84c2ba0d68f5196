"""One export: checked before the first byte, streamed page by page, then audited.

The HTTP endpoint and ``qiao export`` both build an :class:`Export` and write
out its :meth:`~Export.chunks`. Building it checks everything a caller can get
wrong (the entity, the ``export`` right, the filter and order, the format) and
reads the first page, so a refusal comes before any file exists. Rows come
from the records service with the caller as actor and ``right="export"``: the
caller's read and export scopes both apply, masked fields arrive masked and
encrypted fields opened only where the caller may read them; hidden fields are
no column at all (:mod:`.columns`). Pages are read by keyset cursor, each in a
read transaction of its own, so memory and database connections stay constant
however long the list. When the last page has been read, one audit entry
records who exported what (docs/exports.md).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from qiao.core import audit, query
from qiao.core.errors import BadUserInput
from qiao.core.exports.arguments import ListArguments, list_arguments
from qiao.core.exports.columns import Names, cells, columns_for
from qiao.core.exports.formats import Format, Page, csv_chunks, xlsx_chunks
from qiao.core.graphql.builder import BuiltSchema
from qiao.core.metadata.model import EntityDef
from qiao.core.permissions.access import Access
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Page as RecordsPage
from qiao.core.redaction import REDACTED

if TYPE_CHECKING:
    from qiao.core.runtime import Runtime

#: Records read per page (the records service's largest page).
PAGE_SIZE = query.MAX_PAGE_SIZE
#: The audit log's operation for an export.
OPERATION = "export"
_Choice = TypeVar("_Choice", Format, Names)


@dataclass(frozen=True)
class ExportRequest:
    """What a caller asks for; ``filter`` and ``order_by`` as GraphQL variables' JSON."""

    entity: str
    format: str
    filter: Any = None
    order_by: Any = None
    names: str = Names.LABELS.value
    bom: bool = False


class Export:
    """A checked export of one entity's list for one caller."""

    def __init__(
        self,
        runtime: Runtime,
        built: BuiltSchema,
        actor: Actor,
        request: ExportRequest,
        source: Source,
    ) -> None:
        self.runtime = runtime
        self.actor = actor
        self.source = source
        self.format = _choice(Format, request.format, "format")
        self.names = _choice(Names, request.names, "names")
        self.bom = request.bom
        self.arguments = list_arguments(built, request.entity, request.filter, request.order_by)
        self.entity: EntityDef = built.catalog.entity(request.entity)
        access = runtime.access_for(actor)
        access.require(self.entity.name, "read")
        access.require(self.entity.name, "export")
        self._require_clear(access)
        self.columns = columns_for(self.entity, access, self.names)
        self._first = self._page(None, with_total=True)
        #: How many records the export holds, as counted when it was checked.
        self.total: int = self._first.total_count or 0

    @property
    def filename(self) -> str:
        return f"{self.entity.name}.{self.format.value}"

    def chunks(self, on_rows: Callable[[int], None] | None = None) -> Iterator[bytes]:
        """The file's bytes; ``on_rows(n)`` after each page of ``n`` records is written."""
        header = [c.header for c in self.columns]
        pages = self._pages(on_rows)
        if self.format is Format.XLSX:
            title = (self.entity.plural_label or self.entity.label).text("zh-CN")
            return xlsx_chunks(header, pages, title=title)
        return csv_chunks(header, pages, bom=self.bom)

    def _pages(self, on_rows: Callable[[int], None] | None) -> Iterator[Page]:
        """The rows, page by page; the audit entry is written when they end, also when
        the export stops early (a client gone, a full disk), saying so."""
        zone = self.runtime.records.formula_clock().timezone
        page, written, complete = self._first, 0, False
        try:
            while True:
                yield [cells(self.columns, r, self.names, zone) for r in page.records]
                written += len(page.records)
                if on_rows is not None:
                    on_rows(len(page.records))
                if not page.has_next_page:
                    break
                page = self._page(page.cursors[-1])
            complete = True
        finally:
            self._record(written, complete)

    def _page(self, after: str | None, *, with_total: bool = False) -> RecordsPage:
        with self.runtime.db.read() as conn:
            return self.runtime.records.list(
                conn,
                self.entity.name,
                filter=self.arguments.filter,
                order_by=self.arguments.order_by,
                first=PAGE_SIZE,
                after=after,
                with_total=with_total,
                actor=self.actor,
                right="export",
            )

    def _require_clear(self, access: Access) -> None:
        """Filtering or ordering by a field needs reading it in clear, as in GraphQL."""
        uses = [(n, "filter by") for n in sorted(query.filtered_fields(self.arguments.filter))]
        ordering = query.make_ordering(self.entity, self.arguments.order_by)
        uses += [(k.field.name, "order by") for k in ordering.keys if k.column != "id"]
        for name, use in uses:
            access.require_clear(self.entity.name, name, use)

    def _record(self, rows: int, complete: bool) -> None:
        """The export's audit entry: who, which entity, filter, order, format, rows, and
        whether every row was handed to the writer."""
        with self.runtime.db.write() as conn:
            audit.record(
                conn,
                actor=self.actor,
                source=self.source,
                request_id=uuid.uuid4().hex,
                operation=OPERATION,
                entity=self.entity.name,
                changes={
                    "format": self.format.value,
                    "filter": _redacted(self.entity, self.arguments),
                    "order_by": self.arguments.order_by,
                    "columns": [c.key for c in self.columns],
                    "rows": rows,
                    "complete": complete,
                },
            )


def _choice(kind: type[_Choice], value: str, name: str) -> _Choice:
    try:
        return kind(str(value).lower())
    except ValueError:
        allowed = " or ".join(m.value for m in kind)
        raise BadUserInput(f"{name} must be {allowed}, not {value!r}", field=name) from None


def _redacted(entity: EntityDef, arguments: ListArguments) -> Any:
    """The filter as the audit log keeps it: values compared with encrypted fields redacted."""
    encrypted = {f.column for f in entity.fields if f.encrypted}

    def walk(spec: Any) -> Any:
        if isinstance(spec, list):
            return [walk(s) for s in spec]
        if not isinstance(spec, Mapping):
            return spec
        return {
            k: (
                dict.fromkeys(v, REDACTED)
                if k in encrypted and isinstance(v, Mapping)
                else walk(v)
                if k in {"and", "or", "not"}
                else v
            )
            for k, v in spec.items()
        }

    return walk(arguments.filter)

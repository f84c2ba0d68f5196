"""Attachments as the records service keeps them, under the rules of their record.

Every read or change starts from the record the files belong to, read as the caller: a
caller who cannot read it gets the same NOT_FOUND as for a record that does not exist,
so attachments tell nothing about records one may not see. Attachment records
themselves are written as the system (no role grants the entity), with the uploader
kept in ``uploaded_by``.

An object is written inside the transaction that creates its record, so a refused or
failed upload leaves no record; an object whose record did not commit is the one thing
that can be left behind (a crash between the store's answer and the commit). Objects
of deleted attachments are removed by a worker after the delete commits (handler
``connectors.attachments``), so a rolled-back delete never loses a file.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from qiao.api import (
    Actor,
    Delivery,
    EventHandler,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    QiaoError,
    Record,
    Runtime,
    Source,
    WriteContext,
)
from qiao.plugins.connectors import host
from qiao.plugins.connectors.common.errors import ConnectorError, NotFoundError

from . import files, stores
from .stores import StoreSettings

SYSTEM = Actor.system()
ENTITY = "attachment"
HANDLER = "connectors.attachments"
PAGE = 200


class StoreUnavailable(QiaoError):
    """The object store did not answer or refused (the connector's sync log says why)."""

    code = "STORE_UNAVAILABLE"


@dataclass(frozen=True)
class Upload:
    entity: str
    record_id: str
    filename: str
    data: bytes


def object_key(attachment_id: str) -> str:
    """Where an attachment's bytes are: derived from its id, so a delete needs nothing else."""
    return f"attachments/{attachment_id}"


def missing(type_name: str, record_id: str) -> NotFound:
    """The one answer for a record that does not exist and one the caller may not read."""
    return NotFound(f"no {type_name} with id {record_id}", field="id")


def readable(runtime: Runtime, actor: Actor, entity: str, record_id: str) -> Record | None:
    with runtime.db.read() as conn:
        return runtime.records.get(conn, entity, record_id, actor=actor)


def may_update(runtime: Runtime, actor: Actor, entity: str, record_id: str) -> bool:
    """Whether ``actor`` may change this one record (its row rules for ``update``)."""
    access = runtime.access_for(actor)
    if not access.can(entity, "update"):
        return False
    table = runtime.current().table(entity)
    query = select(table.c.id).where(table.c.id == record_id)
    condition = access.row_filter(entity, table, "update")
    if condition is not None:
        query = query.where(condition)
    with runtime.db.read() as conn:
        return conn.execute(query).first() is not None


def require_writable(
    runtime: Runtime, actor: Actor, type_name: str, entity: str, record_id: str
) -> None:
    """NOT_FOUND unless the caller can read the record, FORBIDDEN unless they may change it."""
    if readable(runtime, actor, entity, record_id) is None:
        raise missing(type_name, record_id)
    if actor.read_only or not may_update(runtime, actor, entity, record_id):
        raise Forbidden("you may not add files to this record or remove them")


def check_size(chosen: StoreSettings, size: int) -> None:
    if size > chosen.max_bytes:
        raise PayloadTooLarge(f"a file may be at most {chosen.max_bytes} bytes")


@contextmanager
def store_errors() -> Iterator[None]:
    try:
        yield
    except ConnectorError as error:
        raise StoreUnavailable(f"the file store did not take the request: {error}") from None


def attach(runtime: Runtime, uploader: Actor, upload: Upload, source: Source) -> Record:
    """Keep ``upload`` with its record; the caller has checked the record's rules."""
    chosen = stores.active(runtime)
    check_size(chosen, len(upload.data))
    filename = files.safe_name(upload.filename)
    media_type = files.checked_type(upload.data, filename, chosen.allowed_types)
    secret = stores.new_object_secret() if chosen.encrypt else None
    stores.link_secret(runtime)
    records = runtime.records
    # The store's context outside the transaction: its sync-log entries are written after it.
    with (
        store_errors(),
        stores.opened(runtime, chosen, secret) as store,
        records.transaction(SYSTEM, source) as ctx,
    ):
        values: dict[str, Any] = {
            "entity": upload.entity,
            "record_id": upload.record_id,
            "filename": filename,
            "content_type": media_type,
            "size": len(upload.data),
            "sha256": hashlib.sha256(upload.data).hexdigest(),
            "uploaded_by": uploader.user_id,
            "store": chosen.connector.id,
            "object_secret": secret,
        }
        record = records.create(ctx, ENTITY, values)
        key = object_key(record["id"])
        store.put(key, upload.data, media_type)
        return records.update(ctx, ENTITY, record["id"], {"object_key": key})


def of_record(runtime: Runtime, entity: str, record_id: str) -> list[Record]:
    """The attachments of one record, oldest first (the caller checked the record's rules)."""
    found: list[Record] = []
    after = None
    with runtime.db.read() as conn:
        while True:
            page = runtime.records.list(
                conn,
                ENTITY,
                filter={"entity": {"eq": entity}, "record_id": {"eq": record_id}},
                order_by=[{"field": "created_at", "direction": "ASC"}],
                first=PAGE,
                after=after,
                actor=SYSTEM,
            )
            found += page.records
            if not page.has_next_page:
                return found
            after = page.cursors[-1]


def link(runtime: Runtime, attachment: Record) -> tuple[str, int]:
    """A download link of an attachment and its lifetime in seconds."""
    chosen = stores.of_id(runtime, str(attachment["store_id"]))
    with store_errors(), stores.opened(runtime, chosen, attachment.get("object_secret")) as store:
        url = store.link(object_key(attachment["id"]), chosen.link_seconds, attachment["filename"])
    return url, chosen.link_seconds


def content(runtime: Runtime, attachment_id: str) -> tuple[Record, bytes]:
    """An attachment and its bytes, opened (for the download route, after its link checked)."""
    with runtime.db.read() as conn:
        record = runtime.records.get(conn, ENTITY, attachment_id, actor=SYSTEM)
    if record is None:
        raise NotFound("this file was removed", field="key")
    chosen = stores.of_id(runtime, str(record["store_id"]))
    try:
        with stores.opened(runtime, chosen, record.get("object_secret")) as store:
            return record, store.get(object_key(attachment_id))
    except NotFoundError:
        raise NotFound("this file is no longer in the store", field="key") from None
    except ConnectorError as error:
        raise StoreUnavailable(f"the file store did not answer: {error}") from None


def remove(runtime: Runtime, actor: Actor, attachment_id: str, type_of: Any) -> Record:
    """Delete one attachment as ``actor``, who must be able to change its record."""
    with runtime.db.read() as conn:
        found = runtime.records.require(conn, ENTITY, attachment_id, actor=SYSTEM)
    entity, record_id = str(found["entity"]), str(found["record_id"])
    try:
        require_writable(runtime, actor, type_of(entity), entity, record_id)
    except NotFound:
        raise NotFound(f"no attachment with id {attachment_id}", field="id") from None
    records = runtime.records
    with records.transaction(SYSTEM, Source.GRAPHQL) as ctx:
        return records.delete(ctx, ENTITY, attachment_id)


def record_deleted(context: WriteContext, entity: str, record_id: str) -> None:
    """A deleted (or erased) record takes its attachments along, in the same transaction."""
    if entity == ENTITY:
        return
    records = context.records
    system = context.as_actor(SYSTEM)
    while True:
        page = records.list(
            context.connection,
            ENTITY,
            filter={"entity": {"eq": entity}, "record_id": {"eq": record_id}},
            first=PAGE,
            actor=SYSTEM,
        )
        if not page.records:
            return
        for attachment in page.records:
            records.delete(system, ENTITY, attachment["id"])


def delete_object(delivery: Delivery) -> None:
    """After an attachment's delete commits, its object goes (a retry finds nothing left)."""
    runtime = delivery.runtime
    stored = delivery.event.changes.get("store")
    store_id = stored[0] if isinstance(stored, list) and stored and stored[0] else None
    chosen = stores.of_id(runtime, str(store_id)) if store_id else stores.active(runtime)
    try:
        with stores.opened(runtime, chosen, None) as store:
            store.delete(object_key(delivery.event.record_id))
    except ConnectorError as error:
        raise host.outbox_error(error) from error


def handlers() -> list[EventHandler]:
    return [EventHandler(HANDLER, delete_object, entities=(ENTITY,), operations=("delete",))]

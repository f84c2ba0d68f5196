"""Mail in an IMAP mailbox into activities, matched to contacts by the sender's address.

Incremental by the (UIDVALIDITY, UID) watermark of :mod:`..email.imap`, kept in a
``connector_cursor`` (stream ``inbox``) and advanced after each batch, so a failed run
resumes where the last batch ended. Each message becomes at most one activity: its
Message-ID (or, without one, the SHA-256 of the message) is the activity's
``email_message_id``, an external id, so a rerun, a replay or a renumbered mailbox (new
UIDVALIDITY, read again from the start) takes nothing twice.

The sender is matched against every e-mail field of ``contact`` the records service can
compare: plain ones directly, encrypted ones through their blind index (``searchable:
exact``), so a deployment that seals ``contact.email`` still matches. A message from no
known contact is, by ``settings.unmatched``, only listed in the sync log, by UID and
without the address (``log``, the default), or kept as an activity of a lead with the
sender's address, found or made (``lead``).

Attachments are kept with the activity through the attachments service (the object
store, sealed when it seals); one the store refuses (too large, a type not allowed) is
listed in the sync log and the rest of the message is kept.
"""

from __future__ import annotations

import hashlib
from typing import Any

from qiao.api import Actor, FieldType, QiaoError, Record, Runtime, Source
from qiao.plugins.connectors import clients, host
from qiao.plugins.connectors.attachments import service as attachments
from qiao.plugins.connectors.common.calls import CallRecord, Status, payload_hash
from qiao.plugins.connectors.email.imap import FetchedMail, Watermark
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import cursors

SYSTEM = Actor.system()
STREAM = "inbox"
BATCH = 50
SUMMARY_CHARS = 20_000


def watermark_of(mark: str | None) -> Watermark | None:
    if not mark or ":" not in mark:
        return None
    validity, _, uid = mark.partition(":")
    return Watermark(int(validity), int(uid))


def message_key(mail: FetchedMail) -> str:
    if mail.message_id:
        return mail.message_id.strip()[:300]
    return "sha256:" + hashlib.sha256(mail.raw).hexdigest()


def imap_inbox(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """New mail since the watermark, batch by batch; returns how many activities were made."""
    since = watermark_of(cursors.watermark(runtime, connector.id, STREAM))
    made = 0
    while True:
        with host.wired(runtime, connector.id, connector.vendor) as wiring:
            batch, since = clients.imap(connector, wiring).fetch_new(since, BATCH)
        notes: list[CallRecord] = []
        for mail in batch:
            made += take(runtime, connector, mail, notes)
        host.write_calls(runtime, connector.id, notes)
        cursors.advance(
            runtime, connector.id, STREAM, f"{since.uidvalidity}:{since.last_uid}", len(batch)
        )
        if len(batch) < BATCH:
            return {STREAM: made}


def take(runtime: Runtime, connector: Connector, mail: FetchedMail, notes: list[CallRecord]) -> int:
    """One message into an activity (and its attachments); 0 when it was taken before."""
    key = message_key(mail)
    if existing_activity(runtime, key) is not None:
        return 0
    contact = contact_of(runtime, mail.sender)
    values: dict[str, Any] = {
        "kind": "EMAIL",
        "channel": "EMAIL",
        "subject": mail.subject[:200] or None,
        "summary": (mail.text or mail.html or "")[:SUMMARY_CHARS] or None,
        "occurred_at": mail.date or runtime.records.clock(),
        "email_message_id": key,
    }
    if contact is not None:
        values |= {
            "contact": contact["id"],
            "account": contact.get("account_id"),
            "owner": contact.get("owner_id"),
        }
    elif connector.settings.get("unmatched") == "lead" and mail.sender:
        values["lead"] = lead_for(runtime, mail)
    else:
        notes.append(note(runtime, connector, "match mail", "partial", mail, "no contact matches"))
        return 0
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        activity, created = records.upsert(ctx, "activity", "email_message_id", values)
    if not created:
        return 0  # another run took it meanwhile, attachments and all
    for part in mail.attachments:
        upload = attachments.Upload("activity", activity["id"], part.filename, part.content)
        try:
            attachments.attach(runtime, SYSTEM, upload, Source.CONNECTOR)
        except QiaoError as error:
            notes.append(note(runtime, connector, "keep attachment", "error", mail, str(error)))
    return 1


def existing_activity(runtime: Runtime, key: str) -> Record | None:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, "activity", filter={"email_message_id": {"eq": key}}, first=1, actor=SYSTEM
        )
    return page.records[0] if page.records else None


def contact_of(runtime: Runtime, address: str | None) -> Record | None:
    """The contact whose e-mail (any e-mail field it can be compared on) is ``address``."""
    if not address:
        return None
    entity = runtime.current().entity("contact")
    fields = [
        f.name
        for f in entity.fields
        if f.type is FieldType.EMAIL and (not f.encrypted or f.searchable)
    ]
    with runtime.db.read() as conn:
        for name in fields:
            page = runtime.records.list(
                conn,
                "contact",
                filter={name: {"eq": address}},
                order_by=[{"field": "created_at", "direction": "ASC"}],
                first=1,
                actor=SYSTEM,
            )
            if page.records:
                return page.records[0]
    return None


def lead_for(runtime: Runtime, mail: FetchedMail) -> str:
    """The lead with the sender's address, made when there is none."""
    address = str(mail.sender)
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, "lead", filter={"email": {"eq": address}}, first=1, actor=SYSTEM
        )
    if page.records:
        return str(page.records[0]["id"])
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        lead = records.create(ctx, "lead", {"name": address[:100], "email": address})
    return str(lead["id"])


def note(
    runtime: Runtime,
    connector: Connector,
    operation: str,
    status: Status,
    mail: FetchedMail,
    why: str,
) -> CallRecord:
    """A sync-log entry about one message: its UID, never its addresses or content."""
    return CallRecord(
        vendor=connector.vendor,
        operation=operation,
        status=status,
        latency_ms=0.0,
        payload_sha256=payload_hash(message_key(mail)),
        attempt=1,
        at=host.epoch(runtime),
        error_type="Unmatched" if status == "partial" else "Refused",
        detail=f"message UID {mail.uid}: {why}"[:300],
    )

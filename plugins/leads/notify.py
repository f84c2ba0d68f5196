"""Telling a salesperson that a lead is theirs: an in-app notification.

Written in the assignment's own transaction (a batch of leads' notices
together, :func:`qiao.core.notifications.notify_many`), so it exists exactly
when the assignment does;
the notification channels plugins offer (WeCom, e-mail ...) deliver it from
its create event. Nobody is told about a lead they assigned to themselves. An
import tells each owner once per batch (:func:`leads_imported`) rather than
once per row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from qiao.api import Notice, Record, Source, WriteContext, notify

KIND_ASSIGNED = "lead_assigned"
KIND_REASSIGNED = "lead_reassigned"
KIND_IMPORTED = "leads_imported"
_SHANGHAI = ZoneInfo("Asia/Shanghai")


def lead_assigned(context: WriteContext, lead: Record, *, reassigned: bool) -> Notice | None:
    """The notice telling the lead's owner it was assigned (or reassigned) to them.

    The caller writes a batch's notices together (:func:`qiao.api.notify_many`).
    """
    owner = lead["owner_id"]
    if owner is None or owner == context.actor.user_id:
        return None
    if context.source == Source.IMPORT:
        return None  # the importer notifies once per batch and owner
    name = lead.get("name") or ""
    company = lead.get("company") or ""
    who = f"{name}（{company}）" if company and name else name or company
    due = lead.get("first_touch_due_at")
    lines = [f"意向分 {lead['intent_score']}" if lead.get("intent_score") is not None else ""]
    if lead.get("mobile"):
        lines.append(f"电话 {lead['mobile']}")
    if due is not None:
        lines.append(f"请在 {_local(due)} 前首次跟进")
    if reassigned:
        title = f"线索改派给你：{who}"
        lines.append("原负责人未在时限内跟进")
    else:
        title = f"新线索分配给你：{who}"
    return Notice(
        user=owner,
        title=title,
        body="；".join(line for line in lines if line),
        kind=KIND_REASSIGNED if reassigned else KIND_ASSIGNED,
        link_entity="lead",
        link_id=lead["id"],
    )


def leads_imported(
    context: WriteContext, owner: str, leads: Sequence[Record], run_id: str | None
) -> Record | None:
    """One notification for the leads of one import batch assigned to ``owner``."""
    if not leads or owner == context.actor.user_id:
        return None
    names = "、".join(str(lead.get("name") or "") for lead in leads[:5])
    more = f" 等 {len(leads)} 条" if len(leads) > 5 else ""
    (written,) = notify(
        context,
        users=[owner],
        title=f"导入的 {len(leads)} 条线索分配给你",
        body=f"{names}{more}",
        kind=KIND_IMPORTED,
        link_entity="import_run" if run_id else "lead",
        link_id=run_id or leads[0]["id"],
    )
    return written


def _local(instant: dt.datetime) -> str:
    return instant.astimezone(_SHANGHAI).strftime("%m-%d %H:%M")

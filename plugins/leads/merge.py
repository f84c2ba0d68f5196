"""Merging two leads into one without losing either one's history.

The merged lead's activities and opportunities move to the kept lead, leads
marked as its duplicates point at the kept lead, the kept lead's empty fields
take the merged lead's values, and a snapshot of the merged lead (its values,
when, by whom) is appended to the kept lead's ``merged_from``. The snapshot is
a redacted copy (:func:`qiao.api.redacted_snapshot`): ``merged_from`` is a plain
JSON field, so encrypted values (a phone, an e-mail address) are kept there
only as the fact that there was one; the kept lead takes the values themselves
into its own encrypted fields. Then the merged
lead is deleted. Every step is a write through the records service in one
transaction, so audit and events see each of them, and a failure undoes all.
"""

from __future__ import annotations

from typing import Any

from qiao.api import BadUserInput, NotFound, Records, WriteContext, redacted_snapshot

#: Fields that describe the lead's own bookkeeping, not the party it is about.
_NOT_COPIED = {"duplicate_of", "duplicate_matches", "merged_from", "company_key", "status"}
#: Entities whose ``lead`` relation follows the merge.
_FOLLOWERS = ("activity", "opportunity")


def merge_leads(records: Records, ctx: WriteContext, keep_id: str, merge_id: str) -> dict[str, Any]:
    """Merge ``merge_id`` into ``keep_id``; returns the kept lead as stored."""
    if keep_id == merge_id:
        raise BadUserInput("a lead cannot be merged into itself", field="mergeId")
    conn = ctx.connection
    keep = records.get(conn, "lead", keep_id, actor=ctx.actor)
    merged = records.get(conn, "lead", merge_id, actor=ctx.actor)
    if keep is None:
        raise NotFound(f"no lead with id {keep_id}", field="keepId")
    if merged is None:
        raise NotFound(f"no lead with id {merge_id}", field="mergeId")
    moved: dict[str, list[str]] = {}
    for entity in _FOLLOWERS:
        ids = _ids(records, ctx, entity, "lead_id", merge_id)
        for record_id in ids:
            records.update(ctx, entity, record_id, {"lead": keep_id})
        moved[entity] = ids
    for record_id in _ids(records, ctx, "lead", "duplicate_of_id", merge_id):
        if record_id != keep_id:
            records.update(ctx, "lead", record_id, {"duplicate_of": keep_id})
    lead = records.catalog.entity("lead")
    snapshot = redacted_snapshot(merged, lead)
    fill = {
        f.name: merged[f.column]
        for f in lead.fields
        if f.name not in _NOT_COPIED and keep[f.column] is None and merged[f.column] is not None
    }
    history = [
        *(keep["merged_from"] or []),
        *(merged["merged_from"] or []),
        {
            "id": merge_id,
            "merged_at": records.clock().isoformat(timespec="microseconds"),
            "merged_by": ctx.actor.username,
            "moved": moved,
            "values": snapshot,
        },
    ]
    if keep["duplicate_of_id"] == merge_id:
        fill["duplicate_of"] = None
    records.update(ctx, "lead", keep_id, {**fill, "merged_from": history})
    records.delete(ctx, "lead", merge_id)
    kept = records.get(conn, "lead", keep_id, actor=ctx.actor)
    assert kept is not None
    return kept


def _ids(records: Records, ctx: WriteContext, entity: str, column: str, value: str) -> list[str]:
    table = records.catalog.table(entity)
    rows = ctx.connection.execute(table.select().where(table.c[column] == value))
    return [r.id for r in rows]

"""What happens to leads, accounts and activities as they are written, whoever writes them.

Run from the write hooks, inside the write's transaction, so a web form, a
webhook, an import row and a GraphQL mutation all get the same treatment:

- a lead is given its company key, province, city and sales region (from its
  address or phone when not given), its intent score and tags, the records it
  may duplicate, an owner by the assignment rules, and a first-touch deadline;
- an account is given its name key, so leads can be matched against it;
- the first activity linked to a lead sets the lead's ``first_touch_at`` and
  moves a new lead to contacted.

The first-touch timer, its reassignment and the owner's notification are in
:mod:`.sla` and :mod:`.notify`, run from the after-write hook.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from qiao.api import Actor, Catalog, EntityDef, Plugins, Records, WriteContext
from qiao.plugins.leads import dedupe, intent, regions, routing
from qiao.plugins.leads.keys import company_key

_INTENT_INPUTS = {"description", "company", "industry"}


def before_lead_write(
    context: WriteContext,
    operation: str,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
    duplicates: list[dedupe.Match] | None = None,
) -> None:
    """Complete a lead's values before they are stored (see the module's docstring).

    The caller gave them their company key first (:func:`set_company_key`, which
    :func:`batch_duplicates` calls for a batch). ``duplicates`` are the stored
    records a new lead matches, when the caller looked them up for a whole batch
    already (:func:`batch_duplicates`).
    """
    if operation == "delete":
        return
    runtime = context.runtime
    catalog = context.catalog
    merged = {**_by_field(catalog.entity("lead"), existing), **values}
    _locate(values, merged)
    if operation == "create" or (_INTENT_INPUTS & values.keys() and "intent_score" not in values):
        _classify(runtime.plugins, values, {**merged, **values})
    if operation != "create":
        _restart_deadline(context, catalog, values, existing, merged)
        return
    now = runtime.records.clock()
    _mark_duplicates(context, runtime.records, values, duplicates)
    minutes = routing.DEFAULT_FIRST_TOUCH_MINUTES
    if values.get("owner") is None:
        chosen = routing.assign(context.connection, catalog, values, now)
        if chosen is not None:
            values["owner"] = chosen.owner_id
            values["assignment_rule"] = chosen.rule_id
            minutes = chosen.first_touch_minutes
    if values.get("owner") is not None:
        values.setdefault("assigned_at", now)
    if values.get("first_touch_at") is None:
        values.setdefault("first_touch_due_at", now + dt.timedelta(minutes=minutes))


def _restart_deadline(
    context: WriteContext,
    catalog: Catalog,
    values: dict[str, Any],
    existing: dict[str, Any] | None,
    merged: dict[str, Any],
) -> None:
    """A lead handed to someone else by hand, untouched: the new owner's deadline starts now."""
    owner = values.get("owner")
    if owner is None or existing is None or owner == existing.get("owner_id"):
        return
    if merged.get("first_touch_at") is not None or "first_touch_due_at" in values:
        return
    minutes = routing.DEFAULT_FIRST_TOUCH_MINUTES
    rule_id = values.get("assignment_rule", merged.get("assignment_rule"))
    if rule_id is not None:
        rules = catalog.table("lead_assignment_rule")
        found = context.connection.execute(
            select(rules.c.first_touch_minutes).where(rules.c.id == rule_id)
        ).scalar()
        minutes = found or minutes
    now = context.now()
    values.setdefault("assigned_at", now)
    values["first_touch_due_at"] = now + dt.timedelta(minutes=minutes)


def before_account_write(values: dict[str, Any]) -> None:
    if "name" in values:
        values["name_key"] = company_key(values["name"])


def after_activity_write(context: WriteContext, record: dict[str, Any]) -> None:
    """The earliest activity of a lead is its first touch."""
    lead_id = record.get("lead_id")
    if lead_id is None:
        return
    records = context.records
    lead = records.get(context.connection, "lead", lead_id, actor=Actor.system())
    if lead is None:
        return
    touched = record["occurred_at"]
    if lead["first_touch_at"] is not None and lead["first_touch_at"] <= touched:
        return
    change: dict[str, Any] = {"first_touch_at": touched}
    if lead["status"] == "NEW":
        change["status"] = "CONTACTED"
    records.update(context, "lead", lead_id, change)


def _by_field(entity: EntityDef, row: dict[str, Any] | None) -> dict[str, Any]:
    """A stored row (by column) as values by field name."""
    if row is None:
        return {}
    return {f.name: row[f.column] for f in entity.fields if f.column in row}


def _locate(values: dict[str, Any], merged: dict[str, Any]) -> None:
    """Province and city from the address, else the phone; the region from the province."""
    if not merged.get("province"):
        province, city = regions.from_address(merged.get("address"))
        if province is None:
            province, city = regions.from_phone(merged.get("mobile"))
        if province is not None:
            values["province"] = province
            if not merged.get("city") and city:
                values["city"] = city
    province = values.get("province", merged.get("province"))
    if "province" in values or not merged.get("region"):
        region = regions.region_of(province)
        if region is not None or "province" in values:
            values["region"] = region


def _classify(plugins: Plugins, values: dict[str, Any], lead: dict[str, Any]) -> None:
    text = intent.lead_text(lead)
    result = intent.combine(plugins.hook.qiao_classify_lead(text=text, lead=dict(lead)))
    if result is not None:
        values.setdefault("intent_score", result.score)
        values.setdefault("intent_tags", list(result.tags))


def batch_duplicates(
    context: WriteContext, rows: list[dict[str, Any]]
) -> list[list[dedupe.Match] | None]:
    """The stored records each new lead of a batch matches, looked up together (None for a
    row whose importer checked already). Every row is given its company key first, once:
    the lookup compares by it and :func:`before_lead_write` stores it."""
    for row in rows:
        set_company_key(row)
    unchecked = [i for i, row in enumerate(rows) if "duplicate_matches" not in row]
    found = dedupe.find_existing_many(
        context.connection, context.records, [dedupe.lead_keys(rows[i]) for i in unchecked]
    )
    duplicates: list[list[dedupe.Match] | None] = [None] * len(rows)
    for i, matches in zip(unchecked, found, strict=True):
        duplicates[i] = matches
    return duplicates


def set_company_key(values: dict[str, Any]) -> None:
    """A lead written with a company is compared by the company's key (keys.py)."""
    if "company" in values:
        values["company_key"] = company_key(values["company"])


def _mark_duplicates(
    context: WriteContext,
    records: Records,
    values: dict[str, Any],
    found: list[dedupe.Match] | None = None,
) -> None:
    """Record what the new lead may duplicate; an importer that checked already says so.

    An importer passes ``duplicate_matches`` (possibly empty) after checking
    against its own index; ``found`` are the matches looked up for the lead's
    batch; anything else is looked up here.
    """
    if "duplicate_matches" in values:
        if not values["duplicate_matches"]:
            values["duplicate_matches"] = None
        return
    if found is None:
        found = dedupe.find_existing(context.connection, records, dedupe.lead_keys(values))
    if found:
        values["duplicate_matches"] = [m.as_json() for m in found]
        values.setdefault("duplicate_of", dedupe.first_lead(found))

"""Converting a lead into an account, a contact and an opportunity, keeping where they came from.

The account is the one given, else an existing account with the same company
key (so "宁波东海汽车零部件有限公司" and "宁波东海汽车零部件" are one customer), else a
new one; the contact likewise by id, then mobile or e-mail within the account,
then new. The opportunity points back at the lead (``opportunity.lead``), and
the lead records what it became (``converted_account``, ``converted_contact``,
``converted_at``) and turns CONVERTED. One transaction, through the records
service.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from qiao.api import BadUserInput, Conflict, Record, Records, WriteContext
from qiao.plugins.leads.keys import company_key


@dataclass(frozen=True)
class Conversion:
    lead: Record
    account: Record
    contact: Record
    opportunity: Record | None
    account_created: bool
    contact_created: bool


def convert_lead(
    records: Records,
    ctx: WriteContext,
    lead_id: str,
    *,
    account_id: str | None = None,
    contact_id: str | None = None,
    opportunity_name: str | None = None,
    amount: Decimal | str | None = None,
    create_opportunity: bool = True,
) -> Conversion:
    conn = ctx.connection
    lead = records.require(conn, "lead", lead_id, actor=ctx.actor)
    if lead["status"] == "CONVERTED":
        raise Conflict("this lead is converted already", field="id")
    account, account_created = _account(records, ctx, lead, account_id)
    contact, contact_created = _contact(records, ctx, lead, account["id"], contact_id)
    opportunity = None
    if create_opportunity:
        opportunity = records.create(
            ctx,
            "opportunity",
            {
                "name": opportunity_name or f"{account['name']} - {lead['name']}",
                "account": account["id"],
                "contact": contact["id"],
                "lead": lead_id,
                "amount": amount,
                "owner": lead["owner_id"],
            },
        )
    converted = records.update(
        ctx,
        "lead",
        lead_id,
        {
            "status": "CONVERTED",
            "converted_at": records.clock(),
            "converted_account": account["id"],
            "converted_contact": contact["id"],
        },
    )
    return Conversion(converted, account, contact, opportunity, account_created, contact_created)


def _account(
    records: Records, ctx: WriteContext, lead: Record, account_id: str | None
) -> tuple[Record, bool]:
    if account_id is not None:
        return records.require(
            ctx.connection, "account", account_id, actor=ctx.actor, field="accountId"
        ), False
    key = company_key(lead["company"])
    if key is None:
        raise BadUserInput(
            "the lead has no company; give accountId to link an account", field="accountId"
        )
    table = records.catalog.table("account")
    row = ctx.connection.execute(
        select(table.c.id).where(table.c.name_key == key).order_by(table.c.created_at).limit(1)
    ).first()
    if row is not None:
        found = records.get(ctx.connection, "account", row.id, actor=ctx.actor)
        assert found is not None
        return found, False
    values: dict[str, Any] = {
        "name": lead["company"],
        "kind": "PROSPECT",
        "industry": lead["industry"],
        "province": lead["province"],
        "city": lead["city"],
        "address": lead["address"],
        "owner": lead["owner_id"],
    }
    return records.create(ctx, "account", values), True


def _contact(
    records: Records,
    ctx: WriteContext,
    lead: Record,
    account_id: str,
    contact_id: str | None,
) -> tuple[Record, bool]:
    if contact_id is not None:
        return records.require(
            ctx.connection, "contact", contact_id, actor=ctx.actor, field="contactId"
        ), False
    # Through the records service: with encrypted contact details the columns hold
    # ciphertext, and only its eq filter (the blind index) finds an equal value.
    same = [{"mobile": {"eq": lead["mobile"]}}] if lead["mobile"] else []
    if lead["email"]:
        same.append({"email": {"eq": lead["email"]}})
    if same:
        page = records.list(
            ctx.connection,
            "contact",
            filter={"account_id": {"eq": account_id}, "or": same},
            first=1,
            actor=ctx.actor,
        )
        if page.records:
            return page.records[0], False
    values = {
        "name": lead["name"],
        "mobile": lead["mobile"],
        "email": lead["email"],
        "account": account_id,
        "owner": lead["owner_id"],
    }
    return records.create(ctx, "contact", values), True

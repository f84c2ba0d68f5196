"""Customers Qiao creates pushed to Kingdee once, idempotently (handler ``connectors.push``).

With ``settings.push_customers: true`` on a Kingdee connector, an account without an
``erp_code`` is created in Kingdee as a ``BD_Customer`` whose reference field
(``settings.reference_field``, default ``F_QIAO_ID``, a custom field to add in Kingdee)
holds the account's id, and the code Kingdee gives it becomes the account's ``erp_code``.
Before creating, the customer is looked up by that reference: a delivery repeated after a
worker died between Kingdee's answer and Qiao's commit finds it instead of creating a
second one. The ERP owns customers, so a customer found with another name keeps it, and
the account takes it (listed as a conflict). Once an account has its code, pulls bring
its changes.
"""

from __future__ import annotations

from qiao.api import Actor, Delivery, Source
from qiao.plugins.connectors import clients, host, settings
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.push.conflicts import differences, listed

SYSTEM = Actor.system()
HANDLER = "connectors.push"
DEFAULT_REFERENCE = "F_QIAO_ID"


def push_account(delivery: Delivery) -> None:
    runtime = delivery.runtime
    targets = [
        c for c in settings.active_of(runtime, "kingdee") if c.settings.get("push_customers")
    ]
    if not targets:
        return
    with runtime.db.read() as conn:
        account = runtime.records.get(conn, "account", delivery.event.record_id, actor=SYSTEM)
    if account.get("erp_code"):
        return
    connector = targets[0]
    reference = str(connector.settings.get("reference_field") or DEFAULT_REFERENCE)
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.kingdee(runtime, connector, wiring)
        try:
            found = list(
                client.query(
                    "BD_Customer",
                    ["FNumber", "FName", reference],
                    order="FNumber ASC",
                    filter=f"{reference} = '{account['id']}'",
                )
            )
            if not found:
                model = {"FName": account["name"], reference: account["id"]}
                found = [{"FNumber": client.save("BD_Customer", model).number}]
        except ConnectorError as error:
            raise host.outbox_error(error) from error
    theirs = {"erp_code": str(found[0]["FNumber"]), "name": found[0].get("FName")}
    changed = differences(account, theirs, ("name",)) if theirs["name"] else {}
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        values = {"erp_code": theirs["erp_code"]}
        if changed:
            values["name"] = theirs["name"]
        records.update(ctx, "account", account["id"], values)
        now = ctx.now()
    if changed:
        entry = listed(connector.vendor, "account", theirs["erp_code"], changed, now)
        host.write_calls(runtime, connector.id, [entry])

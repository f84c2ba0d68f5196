"""Customers Qiao creates pushed to an ERP once, idempotently (handler ``connectors.push``).

With ``settings.push_customers: true`` on a Kingdee, Yonyou or SAP connector (the first
such by name), an account without an ``erp_code`` is created in the ERP with the account's
id in a reference field (``settings.reference_field``; each vendor's default in its
module: :mod:`.kingdee`, :mod:`.yonyou`, :mod:`.sap`), and the code the ERP gives it
becomes the account's ``erp_code``. Before creating, the customer is looked up by that
reference: a delivery repeated after a worker died between the ERP's answer and Qiao's
commit finds it instead of creating a second one. An account deleted before its push is
skipped, and the skip listed (:mod:`.gone`). The ERP owns customers, so a customer
found with another name keeps it, and the account takes it (listed as a conflict). Once an
account has its code, pulls bring its changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from qiao.api import Actor, Delivery, Runtime, Source
from qiao.plugins.connectors import host, settings
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.push import gone
from qiao.plugins.connectors.push.conflicts import differences, listed
from qiao.plugins.connectors.settings import Connector

SYSTEM = Actor.system()
HANDLER = "connectors.push"
VENDORS = ("kingdee", "yonyou", "sap")


@dataclass(frozen=True)
class Customer:
    """A customer as the ERP has it: its code and, when it answers one, its name."""

    code: str
    name: str | None


class Registry(Protocol):
    """A vendor's customers, as the push needs them."""

    def find(self, reference: str) -> Customer | None: ...

    def create(self, name: str, reference: str) -> Customer: ...


RegistryFactory = Callable[[Runtime, Connector, Wiring], Registry]


def push_account(delivery: Delivery, registries: Mapping[str, RegistryFactory]) -> None:
    runtime = delivery.runtime
    connector = settings.first_flagged(runtime, VENDORS, "push_customers")
    if connector is None:
        return
    with runtime.db.read() as conn:
        account = runtime.records.get(conn, "account", delivery.event.record_id, actor=SYSTEM)
    if account is None:
        gone.skipped(delivery, connector, "account")
        return
    if account.get("erp_code"):
        return
    reference = str(account["id"])
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        registry = registries[connector.vendor](runtime, connector, wiring)
        try:
            found = registry.find(reference) or registry.create(str(account["name"]), reference)
        except ConnectorError as error:
            raise host.outbox_error(error) from error
    theirs = {"name": found.name}
    changed = differences(account, theirs, ("name",)) if found.name else {}
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        values = {"erp_code": found.code}
        if changed:
            values["name"] = str(found.name)
        records.update(ctx, "account", reference, values)
        now = ctx.now()
    if changed:
        entry = listed(connector.vendor, "account", found.code, changed, now)
        host.write_calls(runtime, connector.id, [entry])

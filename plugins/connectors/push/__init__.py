"""What Qiao pushes to the ERPs, each in a worker through the outbox: customers
(:mod:`.customers`) and accepted quotes as sales orders (:mod:`.orders`) to Kingdee, Yonyou
or SAP, with who wins a disagreement declared in :mod:`.conflicts`. Each vendor's module
says how its customers and orders are found and made; the routines are shared."""

from __future__ import annotations

from qiao.api import Delivery, EventHandler
from qiao.plugins.connectors.push import customers, kingdee, orders, sap, yonyou

BOOKS: dict[str, orders.BookFactory] = {
    "kingdee": kingdee.book,
    "yonyou": yonyou.book,
    "sap": sap.book,
}
REGISTRIES: dict[str, customers.RegistryFactory] = {
    "kingdee": kingdee.registry,
    "yonyou": yonyou.registry,
    "sap": sap.registry,
}


def push_account(delivery: Delivery) -> None:
    customers.push_account(delivery, REGISTRIES)


def handlers() -> list[EventHandler]:
    return [
        EventHandler(
            customers.HANDLER,
            push_account,
            entities=("account",),
            operations=("create", "update"),
        ),
        orders.handler(BOOKS),
    ]

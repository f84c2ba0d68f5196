"""What Qiao pushes to the ERPs, each in a worker through the outbox: customers to
Kingdee (:mod:`.customers`), accepted quotes as sales orders to Kingdee, Yonyou or SAP
(:mod:`.orders`), with who wins a disagreement declared in :mod:`.conflicts`."""

from __future__ import annotations

from qiao.api import EventHandler
from qiao.plugins.connectors.push import customers, kingdee, orders, sap, yonyou

BOOKS: dict[str, orders.BookFactory] = {
    "kingdee": kingdee.book,
    "yonyou": yonyou.book,
    "sap": sap.book,
}


def handlers() -> list[EventHandler]:
    return [
        EventHandler(
            customers.HANDLER,
            customers.push_account,
            entities=("account",),
            operations=("create", "update"),
        ),
        orders.handler(BOOKS),
    ]

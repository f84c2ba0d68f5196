"""Accepted quotes pushed to an ERP as sales orders, idempotently (handler ``connectors.order``).

A quote the customer accepted (status ``ACCEPTED``) is the order: its account, product,
quantity and quoted price. With ``settings.push_orders: true`` on a Kingdee, Yonyou or SAP
connector (the first such by name), a worker finds the ERP's order by Qiao's id in a
reference field, creates it when there is none, and stores the ERP's order number as the
quote's ``erp_order_number``. The delivery is the outbox's: while the ERP is down it is
retried with back-off and nothing is lost; a repeated delivery finds the order made by the
first one instead of making a second. Orders are pipeline data, so when the ERP's copy
differs from the quote (someone edited it there, or the quote changed after it was
pushed), Qiao wins: the ERP's order is updated and the difference listed
(:mod:`.conflicts`). Customers and materials are the ERP's: an order refers to them by
their ERP codes and never changes them; a quote whose account or product has no ERP code
yet waits for one. A quote deleted before its push is skipped, and the skip listed
(:mod:`.gone`).
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from qiao.api import Actor, Delivery, Event, EventHandler, RetryLater, Runtime, Source
from qiao.plugins.connectors import host, settings
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.push import gone
from qiao.plugins.connectors.push.conflicts import differences, listed
from qiao.plugins.connectors.settings import Connector

SYSTEM = Actor.system()
HANDLER = "connectors.order"
ACCEPTED = "ACCEPTED"
VENDORS = ("kingdee", "yonyou", "sap")
#: Quote fields whose change (re)pushes an accepted quote.
PUSHED = ("status", "account", "product", "quantity", "quoted_price")
WAIT_FOR_MASTERS = 600.0


@dataclass(frozen=True)
class Order:
    """An accepted quote as an ERP order sees it; masters by their ERP codes."""

    reference: str
    customer: str
    product: str
    quantity: int
    amount: decimal.Decimal
    date: dt.date

    def values(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "product": self.product,
            "quantity": self.quantity,
            "amount": self.amount,
        }

    @property
    def unit_price(self) -> decimal.Decimal:
        return (self.amount / self.quantity).quantize(decimal.Decimal("0.000001"))


@dataclass(frozen=True)
class Placed:
    """An order found in the ERP: its number, the compared values as the ERP has them,
    and whatever the vendor needs to update it (ids, an ETag)."""

    number: str
    values: Mapping[str, Any]
    handle: Mapping[str, Any] = field(default_factory=dict)


class Book(Protocol):
    """A vendor's sales orders, as the push needs them."""

    @property
    def compared(self) -> tuple[str, ...]:
        """The fields of :meth:`Order.values` the vendor stores as given (SAP prices orders
        itself, so its amount is not compared)."""
        ...

    def find(self, reference: str) -> Placed | None: ...

    def create(self, order: Order) -> str: ...

    def update(self, placed: Placed, order: Order) -> None: ...


BookFactory = Callable[[Runtime, Connector, Wiring], Book]


def money(value: Any) -> decimal.Decimal:
    return decimal.Decimal(str(value)).quantize(decimal.Decimal("0.01"))


def order_of(runtime: Runtime, quote: Mapping[str, Any]) -> Order:
    """The quote as an order; waits (RetryLater) while a master has no ERP code."""
    codes = {}
    with runtime.db.read() as conn:
        for name in ("account", "product"):
            related = quote.get(f"{name}_id")
            record = runtime.records.get(conn, name, related, actor=SYSTEM) if related else None
            if record is None or not record.get("erp_code"):
                raise RetryLater(
                    f"quote {quote['id']}: its {name} has no ERP code yet (the ERP owns "
                    f"{name}s: pull or push it first)",
                    WAIT_FOR_MASTERS,
                )
            codes[name] = str(record["erp_code"])
    return Order(
        reference=str(quote["id"]),
        customer=codes["account"],
        product=codes["product"],
        quantity=int(quote.get("quantity") or 1),
        amount=money(quote["quoted_price"]),
        date=runtime.records.clock().date(),
    )


def push_order(delivery: Delivery, books: Mapping[str, BookFactory]) -> None:
    runtime = delivery.runtime
    connector = settings.first_flagged(runtime, VENDORS, "push_orders")
    if connector is None:
        return
    with runtime.db.read() as conn:
        quote = runtime.records.get(conn, "quote", delivery.event.record_id, actor=SYSTEM)
    if quote is None:
        gone.skipped(delivery, connector, "quote")
        return
    if quote.get("status") != ACCEPTED:
        return
    order = order_of(runtime, quote)
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        book = books[connector.vendor](runtime, connector, wiring)
        try:
            placed = book.find(order.reference)
            found = {}
            if placed is None:
                number = book.create(order)
            else:
                number = placed.number
                found = differences(order.values(), placed.values, book.compared)
                if found:
                    book.update(placed, order)
        except ConnectorError as error:
            raise host.outbox_error(error) from error
    records = runtime.records
    with records.transaction(SYSTEM, Source.CONNECTOR) as ctx:
        if quote.get("erp_order_number") != number:
            records.update(ctx, "quote", order.reference, {"erp_order_number": number})
        now = ctx.now()
    if found:
        host.write_calls(
            runtime, connector.id, [listed(connector.vendor, "quote", number, found, now)]
        )


def wanted(event: Event) -> bool:
    return event.operation == "create" or any(
        f in event.changes or f"{f}_id" in event.changes for f in PUSHED
    )


def handler(books: Mapping[str, BookFactory]) -> EventHandler:
    return EventHandler(
        HANDLER,
        lambda delivery: push_order(delivery, books),
        entities=("quote",),
        operations=("create", "update"),
        when=wanted,
    )

"""Customers and sales orders in Kingdee K/3 Cloud: ``BD_Customer`` and ``SAL_SaleOrder``.

A customer's reference field is ``settings.reference_field`` (default ``F_QIAO_ID``, a
custom field added to the customer form); Kingdee numbers it by its coding rule.

Sales orders have one entry line each.
Qiao's id goes into the header's reference field (``settings.order_reference_field``,
default the custom field ``F_QIAO_ID``, added to the sales order form in the BOS
designer). The sale organisation (``settings.sale_org``), bill type
(``settings.order_bill_type``, default ``XSDD01_SYS``, 标准销售订单) and settlement
currency (``settings.currency``, default ``PRE001``, 人民币) are given by number.
"""

from __future__ import annotations

from typing import Any

from qiao.api import Runtime
from qiao.plugins.connectors import clients
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.kingdee.client import KingdeeClient
from qiao.plugins.connectors.push.customers import Customer
from qiao.plugins.connectors.push.orders import Order, Placed, money
from qiao.plugins.connectors.settings import Connector

CUSTOMERS = "BD_Customer"
FORM = "SAL_SaleOrder"
DEFAULT_REFERENCE = "F_QIAO_ID"
ENTRY_ID = "FSaleOrderEntry_FEntryID"
FIELDS = {
    "FID": "id",
    "FBillNo": "number",
    "FCustId.FNumber": "customer",
    "FMaterialId.FNumber": "product",
    "FQty": "quantity",
    "FAllAmount": "amount",
    ENTRY_ID: "entry",
}


class KingdeeCustomers:
    def __init__(self, client: KingdeeClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(connector.settings.get("reference_field") or DEFAULT_REFERENCE)

    def find(self, reference: str) -> Customer | None:
        rows = list(
            self.client.query(
                CUSTOMERS,
                ["FNumber", "FName", self.reference],
                order="FNumber ASC",
                filter=f"{self.reference} = '{reference}'",
            )
        )
        if not rows:
            return None
        name = rows[0].get("FName")
        return Customer(str(rows[0]["FNumber"]), str(name) if name else None)

    def create(self, name: str, reference: str) -> Customer:
        saved = self.client.save(CUSTOMERS, {"FName": name, self.reference: reference})
        return Customer(str(saved.number), None)


class KingdeeOrders:
    compared = ("customer", "product", "quantity", "amount")

    def __init__(self, client: KingdeeClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(connector.settings.get("order_reference_field") or DEFAULT_REFERENCE)
        self.org = connector.setting("sale_org")
        self.bill_type = str(connector.settings.get("order_bill_type") or "XSDD01_SYS")
        self.currency = str(connector.settings.get("currency") or "PRE001")

    def find(self, reference: str) -> Placed | None:
        rows = list(
            self.client.query(
                FORM,
                [*FIELDS, self.reference],
                order="FBillNo ASC",
                filter=f"{self.reference} = '{reference}'",
            )
        )
        if not rows:
            return None
        row = {FIELDS[k]: v for k, v in rows[0].items() if k in FIELDS}
        values = {
            "customer": row["customer"],
            "product": row["product"],
            "quantity": int(float(row["quantity"] or 0)),
            "amount": money(row["amount"] or 0),
        }
        return Placed(str(row["number"]), values, {"id": row["id"], "entry": row["entry"]})

    def _lines(self, order: Order, entry: Any = None) -> list[dict[str, Any]]:
        line: dict[str, Any] = {
            "FMaterialId": {"FNumber": order.product},
            "FQty": order.quantity,
            "FTaxPrice": str(order.unit_price),
        }
        if entry is not None:
            line = {"FEntryID": entry, **line}
        return [line]

    def create(self, order: Order) -> str:
        model = {
            "FBillTypeID": {"FNUMBER": self.bill_type},
            "FDate": order.date.isoformat(),
            "FSaleOrgId": {"FNumber": self.org},
            "FCustId": {"FNumber": order.customer},
            "FSaleOrderFinance": {"FSettleCurrId": {"FNumber": self.currency}},
            "FSaleOrderEntry": self._lines(order),
            self.reference: order.reference,
        }
        saved = self.client.save(FORM, model)
        return saved.number or saved.id

    def update(self, placed: Placed, order: Order) -> None:
        model = {
            "FID": placed.handle["id"],
            "FCustId": {"FNumber": order.customer},
            "FSaleOrderEntry": self._lines(order, placed.handle["entry"]),
        }
        fields = ["FCustId", "FSaleOrderEntry", "FMaterialId", "FQty", "FTaxPrice"]
        self.client.save(FORM, model, update_fields=fields)


def book(runtime: Runtime, connector: Connector, wiring: Wiring) -> KingdeeOrders:
    return KingdeeOrders(clients.kingdee(runtime, connector, wiring), connector)


def registry(runtime: Runtime, connector: Connector, wiring: Wiring) -> KingdeeCustomers:
    return KingdeeCustomers(clients.kingdee(runtime, connector, wiring), connector)

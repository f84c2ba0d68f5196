"""Customers and sales orders in Yonyou YonSuite: merchants (客户档案) and ``sd/voucherorder``.

A customer is found by Qiao's id in ``settings.reference_field`` (default ``erpCode``, the
merchant's 外部编码) and saved through ``digitalModel/merchant/save`` under the managing
organisation ``settings.customer_org`` (default ``settings.sales_org``), its name in
Chinese (``zh_CN`` of the multilingual name); Yonyou codes it by its coding rule.

Sales orders (销售订单) have one detail line each.
Qiao's id goes into a header field (``settings.order_reference_field``, default the
free item ``headFreeItem.define1``; a dotted name is a nested object) and, as
``resubmitCheckKey``, into the save itself, so Yonyou refuses a second create of the same
order even if the query before it missed the first. Customer (``agentId``) and material
(``productId``) are sent by code; the sales organisation (``settings.sales_org``) and
transaction type (``settings.order_transaction_type``) by code too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qiao.api import Runtime
from qiao.plugins.connectors import clients
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.push.customers import Customer
from qiao.plugins.connectors.push.orders import Order, Placed, money
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.yonyou.client import (
    MERCHANT_SAVE,
    MERCHANTS,
    SALES_ORDER_SAVE,
    SALES_ORDERS,
    YonyouClient,
)

DEFAULT_REFERENCE = "headFreeItem.define1"
DEFAULT_CUSTOMER_REFERENCE = "erpCode"


def nested(path: str, value: Any) -> dict[str, Any]:
    """``{"a": {"b": value}}`` for ``a.b``."""
    head, _, rest = path.partition(".")
    return {head: nested(rest, value) if rest else value}


def merged(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        out[key] = merged(out[key], value) if isinstance(out.get(key), dict) else value
    return out


def equal_to(field: str, value: str) -> dict[str, Any]:
    """The list condition ``field = value`` (``simpleVOs``, op ``eq``)."""
    return {"simpleVOs": [{"field": field, "op": "eq", "value1": value}]}


def text_of(name: Any) -> str | None:
    """A name as text: multilingual names arrive as ``{"zh_CN": ...}``."""
    if isinstance(name, Mapping):
        name = name.get("zh_CN") or next(iter(name.values()), None)
    return str(name) if name else None


class YonyouCustomers:
    def __init__(self, client: YonyouClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(
            connector.settings.get("reference_field") or DEFAULT_CUSTOMER_REFERENCE
        )
        self.org = str(connector.settings.get("customer_org") or connector.setting("sales_org"))

    def find(self, reference: str) -> Customer | None:
        condition = equal_to(self.reference, reference)
        rows = list(self.client.records(MERCHANTS, page_size=10, conditions=condition))
        if not rows:
            return None
        return Customer(str(rows[0]["code"]), text_of(rows[0].get("name")))

    def create(self, name: str, reference: str) -> Customer:
        document = merged(
            {"createOrg": self.org, "name": {"zh_CN": name}, "_status": "Insert"},
            nested(self.reference, reference),
        )
        saved = self.client.save(MERCHANT_SAVE, document)
        return Customer(str(saved["code"]), None)


class YonyouOrders:
    compared = ("customer", "product", "quantity", "amount")

    def __init__(self, client: YonyouClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(connector.settings.get("order_reference_field") or DEFAULT_REFERENCE)
        self.org = str(connector.setting("sales_org"))
        self.transaction_type = str(connector.settings.get("order_transaction_type") or "")

    def find(self, reference: str) -> Placed | None:
        condition = equal_to(self.reference, reference)
        rows = list(self.client.records(SALES_ORDERS, page_size=10, conditions=condition))
        if not rows:
            return None
        row = rows[0]
        line = (row.get("orderDetails") or [{}])[0]
        values = {
            "customer": row.get("agentId"),
            "product": line.get("productId"),
            "quantity": int(float(line.get("qty") or 0)),
            "amount": money(line.get("oriSum") or 0),
        }
        return Placed(str(row["code"]), values, {"id": row["id"], "line": line.get("id")})

    def _document(self, order: Order) -> dict[str, Any]:
        line = {
            "productId": order.product,
            "qty": order.quantity,
            "oriTaxUnitPrice": str(order.unit_price),
            "oriSum": str(order.amount),
        }
        header: dict[str, Any] = {
            "salesOrgId": self.org,
            "vouchdate": f"{order.date.isoformat()} 00:00:00",
            "agentId": order.customer,
            "orderDetails": [line],
        }
        if self.transaction_type:
            header["transactionTypeId"] = self.transaction_type
        return header

    def create(self, order: Order) -> str:
        document = merged(
            {
                **self._document(order),
                "resubmitCheckKey": order.reference.replace("-", ""),
                "_status": "Insert",
            },
            nested(self.reference, order.reference),
        )
        for line in document["orderDetails"]:
            line["_status"] = "Insert"
        return str(self.client.save(SALES_ORDER_SAVE, document)["code"])

    def update(self, placed: Placed, order: Order) -> None:
        document = {**self._document(order), "id": placed.handle["id"], "_status": "Update"}
        for line in document["orderDetails"]:
            line.update(id=placed.handle["line"], _status="Update")
        self.client.save(SALES_ORDER_SAVE, document)


def book(runtime: Runtime, connector: Connector, wiring: Wiring) -> YonyouOrders:
    return YonyouOrders(clients.yonyou(runtime, connector, wiring), connector)


def registry(runtime: Runtime, connector: Connector, wiring: Wiring) -> YonyouCustomers:
    return YonyouCustomers(clients.yonyou(runtime, connector, wiring), connector)

"""Sales orders in S/4HANA: ``A_SalesOrder`` of ``API_SALES_ORDER_SRV`` (OData v2), one item.

The service is ``settings.sales_order_url``, by default ``API_SALES_ORDER_SRV`` beside the
connector's ``base_url``. Qiao's id goes into a header extension field
(``settings.order_reference_field``, default ``YY1_QIAO_ID_SDH``: a custom field
"QIAO_ID" on sales documents made in Custom Fields and Logic, enabled for the API). The
order type, sales area and the item are sent as SAP keys; SAP prices the order itself, so
the amount is not sent nor compared. Changes patch the header (sold-to party) and the item
(material, quantity) with their ETags.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from qiao.api import Runtime
from qiao.plugins.connectors import clients
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.push.orders import Order, Placed
from qiao.plugins.connectors.sap.odata import ODataClient
from qiao.plugins.connectors.settings import Connector

DEFAULT_REFERENCE = "YY1_QIAO_ID_SDH"
SERVICE = "../API_SALES_ORDER_SRV/"


def etag_of(entity: dict[str, Any]) -> str | None:
    meta = entity.get("__metadata") or {}
    return meta.get("etag")


class SapOrders:
    compared = ("customer", "product", "quantity")

    def __init__(self, client: ODataClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(connector.settings.get("order_reference_field") or DEFAULT_REFERENCE)
        self.header = {
            "SalesOrderType": str(connector.settings.get("order_type") or "OR"),
            "SalesOrganization": str(connector.setting("sales_org")),
            "DistributionChannel": str(connector.settings.get("distribution_channel") or "10"),
            "OrganizationDivision": str(connector.settings.get("division") or "00"),
        }

    def find(self, reference: str) -> Placed | None:
        params = {"$filter": f"{self.reference} eq '{reference}'", "$expand": "to_Item"}
        rows = list(self.client.entities("A_SalesOrder", params))
        if not rows:
            return None
        row = rows[0]
        item = ((row.get("to_Item") or {}).get("results") or [{}])[0]
        values = {
            "customer": row.get("SoldToParty"),
            "product": item.get("Material"),
            "quantity": int(float(item.get("RequestedQuantity") or 0)),
        }
        handle = {
            "header": f"A_SalesOrder('{row['SalesOrder']}')",
            "header_etag": etag_of(row),
            "item": f"A_SalesOrderItem(SalesOrder='{row['SalesOrder']}',"
            f"SalesOrderItem='{item.get('SalesOrderItem')}')",
            "item_etag": etag_of(item),
            "customer": row.get("SoldToParty"),
        }
        return Placed(str(row["SalesOrder"]), values, handle)

    def create(self, order: Order) -> str:
        body = {
            **self.header,
            "SoldToParty": order.customer,
            self.reference: order.reference,
            "to_Item": [{"Material": order.product, "RequestedQuantity": str(order.quantity)}],
        }
        return str(self.client.create("A_SalesOrder", body).data["SalesOrder"])

    def update(self, placed: Placed, order: Order) -> None:
        handle = placed.handle
        if handle["customer"] != order.customer:
            self.client.update(
                handle["header"], {"SoldToParty": order.customer}, handle["header_etag"] or "*"
            )
        changes = {"Material": order.product, "RequestedQuantity": str(order.quantity)}
        self.client.update(handle["item"], changes, handle["item_etag"] or "*")


def book(runtime: Runtime, connector: Connector, wiring: Wiring) -> SapOrders:
    url = connector.settings.get("sales_order_url") or urljoin(
        str(connector.base_url).rstrip("/") + "/", SERVICE
    )
    return SapOrders(clients.sap(runtime, connector, wiring, str(url)), connector)

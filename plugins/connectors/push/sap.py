"""Customers and sales orders in S/4HANA (OData v2): ``A_BusinessPartner`` and ``A_SalesOrder``.

A customer is a business partner of the connector's ``base_url`` (API_BUSINESS_PARTNER),
found by Qiao's id in ``settings.reference_field`` (default ``YY1_QIAO_ID_bus``, a custom
field on business partners made in Custom Fields and Logic, enabled for the API) and
created as an organisation (category ``2``, its name in ``OrganizationBPName1``), in the
grouping ``settings.partner_grouping`` when one is given; SAP numbers it. The create
carries the CSRF token the client fetches, fetched again once on a 403 ``Required``.

Sales orders are ``A_SalesOrder`` of ``API_SALES_ORDER_SRV`` with one item.
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
from qiao.plugins.connectors.push.customers import Customer
from qiao.plugins.connectors.push.orders import Order, Placed
from qiao.plugins.connectors.sap.odata import ODataClient
from qiao.plugins.connectors.settings import Connector

DEFAULT_REFERENCE = "YY1_QIAO_ID_SDH"
DEFAULT_CUSTOMER_REFERENCE = "YY1_QIAO_ID_bus"
PARTNERS = "A_BusinessPartner"
SERVICE = "../API_SALES_ORDER_SRV/"


def etag_of(entity: dict[str, Any]) -> str | None:
    meta = entity.get("__metadata") or {}
    return meta.get("etag")


def equal_to(field: str, value: str) -> dict[str, str]:
    return {"$filter": f"{field} eq '{value}'"}


class SapCustomers:
    def __init__(self, client: ODataClient, connector: Connector) -> None:
        self.client = client
        self.reference = str(
            connector.settings.get("reference_field") or DEFAULT_CUSTOMER_REFERENCE
        )
        self.grouping = str(connector.settings.get("partner_grouping") or "")

    def find(self, reference: str) -> Customer | None:
        params = {
            **equal_to(self.reference, reference),
            "$select": f"BusinessPartner,BusinessPartnerFullName,{self.reference}",
        }
        rows = list(self.client.entities(PARTNERS, params))
        if not rows:
            return None
        name = rows[0].get("BusinessPartnerFullName")
        return Customer(str(rows[0]["BusinessPartner"]), str(name) if name else None)

    def create(self, name: str, reference: str) -> Customer:
        body = {
            "BusinessPartnerCategory": "2",
            "OrganizationBPName1": name,
            self.reference: reference,
        }
        if self.grouping:
            body["BusinessPartnerGrouping"] = self.grouping
        return Customer(str(self.client.create(PARTNERS, body).data["BusinessPartner"]), None)


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
        params = {**equal_to(self.reference, reference), "$expand": "to_Item"}
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


def registry(runtime: Runtime, connector: Connector, wiring: Wiring) -> SapCustomers:
    return SapCustomers(clients.sap(runtime, connector, wiring), connector)

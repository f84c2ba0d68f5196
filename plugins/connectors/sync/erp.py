"""Masters from an ERP into Qiao: customers into accounts, materials into products.

Every vendor pulls the same way (:func:`pull`): rows changed at or after the stream's
watermark less an overlap, read to the last page, deduplicated by ERP code (a row changed
while the pull paged can be read twice: the newer reading wins), upserted by ``erp_code``,
then the watermark moved to the newest change date read. Only how rows are read and where
their change date is differs by vendor. Field mappings are data: a connector's
``settings.customer_fields`` / ``product_fields`` / ``sales_line_fields`` map the ERP's
field keys to Qiao's (defaults below). Sales lines are keyed by their ERP line id rather
than ``erp_code``, go to the entity ``settings.sales_line_entity`` names, and name their
dealer by a unique field (``dealer.dealer_code``), see :mod:`.writing`. The ERP wins
for the fields it maps, since it owns master data; fields it does not map (owner, region,
pipeline data) stay as Qiao has them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from qiao.api import ConfigurationError, Runtime
from qiao.plugins.connectors import clients, host
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.sap.odata import parse_date
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import cursors
from qiao.plugins.connectors.sync.writing import upsert_all
from qiao.plugins.connectors.yonyou import client as yonyou

DEFAULT_OVERLAP_MINUTES = 5
STREAM = "customers"
PRODUCTS = "products"

KINGDEE_CHANGED = "FModifyDate"
KINGDEE_CUSTOMER_FIELDS = {"FNumber": "erp_code", "FName": "name"}
KINGDEE_PRODUCT_FIELDS = {"FNumber": "erp_code", "FName": "name"}
YONYOU_CHANGED = "pubts"
"""YonSuite's change timestamp on every archive ("yyyy-MM-dd HH:mm:ss", tenant time)."""
YONYOU_CUSTOMER_FIELDS = {"code": "erp_code", "name": "name"}
YONYOU_PRODUCT_FIELDS = {"code": "erp_code", "name": "name"}
YONYOU_SALES_LINE_FIELDS = {
    "details_id": "erp_line_id",
    "cust_code": "dealer.dealer_code",
    "vouchdate": "posted_on",
    "code": "document_number",
    "oriSum": "amount",
}
"""A sales outbound list row is one line (``details_id``) of a document (``code``), with
the customer's code, the document date and the line's tax-inclusive amount."""
SALES_LINES = "sales_lines"
SALES_LINE_ENTITY = "erp_sales_line"
SALES_LINE_KEY = "erp_line_id"
SAP_CHANGED = "LastChangeDate"
SAP_CUSTOMER_FIELDS = {"BusinessPartner": "erp_code", "BusinessPartnerFullName": "name"}
SAP_PRODUCT_FIELDS = {"Product": "erp_code", "ProductDescription": "name"}
SAP_DESCRIPTION = "ProductDescription"
"""Not a property of ``A_Product``: the text of its ``to_Description`` in the connector's
``settings.language`` (default ``ZH``) or else its first, put on the row under this name."""
SAP_PRODUCT_SERVICE = "../API_PRODUCT_SRV/"
SAP_PRICE_SERVICE = "../API_SLSPRICINGCONDITIONRECORD_SRV/"
SAP_PRICE_FIELDS = {"Material": "erp_code", "ConditionRateValue": "list_price"}
SAP_PRICE_CHANGED = "CreationDate"
"""Condition records carry no change date: a new price is a new record (VK11), so the
creation date is the watermark; a rate edited in place (VK12) arrives on a full pull."""
PRICES = "prices"

#: Reads the rows of a stream: (wiring, the ERP fields to read, the lower bound of the
#: change date or None for everything) -> rows, ideally ordered by (change date, code).
Read = Callable[[Wiring, list[str], str | None], Iterable[Mapping[str, Any]]]


@dataclass(frozen=True)
class Stream:
    """One master stream of one vendor."""

    name: str
    entity: str
    default_fields: Mapping[str, str]
    changed_field: str
    key: str = "erp_code"

    @property
    def fields_setting(self) -> str:
        return f"{self.name[:-1]}_fields"


def mapping_of(
    connector: Connector,
    default: Mapping[str, str],
    key: str = "customer_fields",
    target: str = "erp_code",
) -> dict[str, str]:
    mapping = dict(connector.settings.get(key) or default)
    if target not in mapping.values():
        raise ConfigurationError(
            f"connector {connector.name!r}: {key} must map a field to {target}"
        )
    return mapping


def since(mark: str, overlap_minutes: int) -> str:
    """The watermark moved back by the overlap, as naive ISO text to the second."""
    moved = dt.datetime.fromisoformat(mark) - dt.timedelta(minutes=overlap_minutes)
    return moved.isoformat(timespec="seconds")


def mapped(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    return {target: row.get(source) for source, target in mapping.items()}


def newest_first_wins(
    values: Iterable[dict[str, Any]], key: str = "erp_code"
) -> list[dict[str, Any]]:
    """One row per ERP key, the last read (the newest, rows coming in change order)."""
    by_code: dict[Any, dict[str, Any]] = {}
    for row in values:
        by_code.pop(row.get(key), None)
        by_code[row.get(key)] = row
    return list(by_code.values())


def pull(runtime: Runtime, connector: Connector, stream: Stream, read: Read) -> int:
    """Rows of ``stream`` changed since its watermark, upserted by its key."""
    mapping = mapping_of(connector, stream.default_fields, stream.fields_setting, stream.key)
    mark = cursors.watermark(runtime, connector.id, stream.name)
    overlap = int(connector.settings.get("overlap_minutes") or DEFAULT_OVERLAP_MINUTES)
    fields = list(dict.fromkeys([*mapping, stream.changed_field]))
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        rows = list(read(wiring, fields, since(mark, overlap) if mark else None))
    values = newest_first_wins((mapped(row, mapping) for row in rows), stream.key)
    if stream.name == PRODUCTS:
        values = [{"sku": v.get("erp_code"), **v} for v in values]
    written = upsert_all(runtime, connector.id, connector.vendor, stream.entity, stream.key, values)
    newest = latest(*(changed_at(row.get(stream.changed_field)) for row in rows))
    cursors.advance(runtime, connector.id, stream.name, latest(newest, mark), len(rows))
    return written


def changed_at(value: Any) -> str | None:
    """A change date as naive ISO text to the second, however the ERP wrote it: SAP v2's
    ``/Date(ms)/`` (UTC), ISO text, or Yonyou's ``yyyy-MM-dd HH:mm:ss``."""
    if not value:
        return None
    text = str(value)
    instant = parse_date(text) if text.startswith("/Date(") else dt.datetime.fromisoformat(text)
    if instant.tzinfo is not None:
        instant = instant.astimezone(dt.UTC).replace(tzinfo=None)
    return instant.isoformat(timespec="seconds")


def latest(*marks: str | None) -> str | None:
    """The latest of some watermarks (ISO texts compare in time order), or None for none."""
    return max((m for m in marks if m), default=None)


# -- Kingdee -------------------------------------------------------------------------------

KINGDEE_CUSTOMERS = Stream(STREAM, "account", KINGDEE_CUSTOMER_FIELDS, KINGDEE_CHANGED)
KINGDEE_PRODUCTS = Stream(PRODUCTS, "product", KINGDEE_PRODUCT_FIELDS, KINGDEE_CHANGED)


def kingdee_reader(runtime: Runtime, connector: Connector, form: str) -> Read:
    def read(wiring: Wiring, fields: list[str], start: str | None) -> Iterable[dict[str, Any]]:
        where = f"{KINGDEE_CHANGED} >= '{start}'" if start else ""
        return clients.kingdee(runtime, connector, wiring).query(
            form, fields, order=f"{KINGDEE_CHANGED} ASC,FNumber ASC", filter=where
        )

    return read


def kingdee_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """``BD_Customer`` into accounts and, with ``settings.sync_products``, ``BD_MATERIAL``
    into products (their ``sku`` is the material number unless the mapping names one)."""
    read = kingdee_reader(runtime, connector, "BD_Customer")
    out = {STREAM: pull(runtime, connector, KINGDEE_CUSTOMERS, read)}
    if connector.settings.get("sync_products"):
        read = kingdee_reader(runtime, connector, "BD_MATERIAL")
        out[PRODUCTS] = pull(runtime, connector, KINGDEE_PRODUCTS, read)
    return out


# -- Yonyou --------------------------------------------------------------------------------

YONYOU_CUSTOMERS = Stream(STREAM, "account", YONYOU_CUSTOMER_FIELDS, YONYOU_CHANGED)
YONYOU_PRODUCTS = Stream(PRODUCTS, "product", YONYOU_PRODUCT_FIELDS, YONYOU_CHANGED)


def yonyou_reader(runtime: Runtime, connector: Connector, path: str) -> Read:
    """A list endpoint with a ``pubts`` at-or-after condition (``simpleVOs``, op ``egt``)."""
    size = int(connector.settings.get("page_size") or 100)

    def read(wiring: Wiring, fields: list[str], start: str | None) -> Iterable[dict[str, Any]]:
        conditions = (
            {
                "simpleVOs": [
                    {"field": YONYOU_CHANGED, "op": "egt", "value1": start.replace("T", " ")}
                ]
            }
            if start
            else None
        )
        client = clients.yonyou(runtime, connector, wiring)
        return client.records(path, page_size=size, conditions=conditions)

    return read


def yonyou_sales_lines(connector: Connector) -> Stream:
    """Sales outbound lines (销售出库单) into ``settings.sales_line_entity``."""
    entity = str(connector.settings.get("sales_line_entity") or SALES_LINE_ENTITY)
    key = str(connector.settings.get("sales_line_key") or SALES_LINE_KEY)
    return Stream(SALES_LINES, entity, YONYOU_SALES_LINE_FIELDS, YONYOU_CHANGED, key)


def yonyou_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """Merchants (客户档案) into accounts, with ``settings.sync_products`` materials
    (物料档案) into products and with ``settings.sync_sales_lines`` sales outbound lines
    into the entity ``settings.sales_line_entity`` names, each changed since its watermark."""
    read = yonyou_reader(runtime, connector, yonyou.MERCHANTS)
    out = {STREAM: pull(runtime, connector, YONYOU_CUSTOMERS, read)}
    if connector.settings.get("sync_products"):
        read = yonyou_reader(runtime, connector, yonyou.PRODUCTS)
        out[PRODUCTS] = pull(runtime, connector, YONYOU_PRODUCTS, read)
    if connector.settings.get("sync_sales_lines"):
        read = yonyou_reader(runtime, connector, yonyou.SALES_OUTS)
        out[SALES_LINES] = pull(runtime, connector, yonyou_sales_lines(connector), read)
    return out


def service_url(connector: Connector, setting: str, beside: str) -> str:
    """``settings.<setting>``, or the service ``beside`` the connector's ``base_url``."""
    return str(
        connector.settings.get(setting)
        or urljoin(str(connector.base_url).rstrip("/") + "/", beside)
    )


# -- SAP -----------------------------------------------------------------------------------

SAP_CUSTOMERS = Stream(STREAM, "account", SAP_CUSTOMER_FIELDS, SAP_CHANGED)
SAP_PRODUCTS = Stream(PRODUCTS, "product", SAP_PRODUCT_FIELDS, SAP_CHANGED)


def sap_query(fields: list[str], key: str, start: str | None) -> dict[str, str]:
    """``$select``, ``$orderby`` (change date, key) and, after the first pull, the
    change-date ``$filter``."""
    params = {"$select": ",".join(fields), "$orderby": f"{SAP_CHANGED},{key}"}
    if start:
        params["$filter"] = f"{SAP_CHANGED} ge datetime'{start}'"
    return params


def described(row: Mapping[str, Any], language: str) -> dict[str, Any]:
    """A product row with its description in ``language`` as ``ProductDescription``, or in
    the first language it has one (a product needs a name)."""
    texts = (row.get("to_Description") or {}).get("results") or []
    ranked = sorted(texts, key=lambda t: t.get("Language") != language)
    text = next((t.get(SAP_DESCRIPTION) for t in ranked if t.get(SAP_DESCRIPTION)), None)
    return {**row, SAP_DESCRIPTION: text}


def sap_products(runtime: Runtime, connector: Connector) -> int:
    """``A_Product`` of API_PRODUCT_SRV (``settings.product_url``, by default beside
    ``base_url``) changed since the products watermark, with their descriptions."""
    url = service_url(connector, "product_url", SAP_PRODUCT_SERVICE)
    language = str(connector.settings.get("language") or "ZH")

    def read(wiring: Wiring, fields: list[str], start: str | None) -> Iterable[dict[str, Any]]:
        own = [f for f in fields if f != SAP_DESCRIPTION]
        params = sap_query(own, "Product", start)
        if SAP_DESCRIPTION in fields:
            params["$select"] += ",to_Description/Language,to_Description/ProductDescription"
            params["$expand"] = "to_Description"
        client = clients.sap(runtime, connector, wiring, url)
        return (described(row, language) for row in client.entities("A_Product", params))

    return pull(runtime, connector, SAP_PRODUCTS, read)


SAP_PRICES = Stream(PRICES, "product", SAP_PRICE_FIELDS, SAP_PRICE_CHANGED)


def current_material(row: Mapping[str, Any], today: dt.date, org: str) -> dict[str, Any]:
    """A condition record with the material of its validity that holds ``today`` (in
    sales organisation ``org`` when one is set), or ``Material`` None when none does."""
    found = None
    for validity in (row.get("to_SlsPrcgCndnRecdValidity") or {}).get("results") or []:
        start = changed_at(validity.get("ConditionValidityStartDate"))
        end = changed_at(validity.get("ConditionValidityEndDate"))
        holds = (start or "")[:10] <= today.isoformat() <= (end or "9999-12-31")[:10]
        if holds and (not org or validity.get("SalesOrganization") == org):
            found = validity.get("Material")
    return {**row, "Material": found}


def sap_prices(runtime: Runtime, connector: Connector) -> int:
    """Sales prices (condition type ``settings.price_condition_type``, default ``PPR0``)
    of API_SLSPRICINGCONDITIONRECORD_SRV into the ``list_price`` of products, by material."""
    url = service_url(connector, "price_url", SAP_PRICE_SERVICE)
    kind = str(connector.settings.get("price_condition_type") or "PPR0")
    org = str(connector.settings.get("sales_org") or "")

    def read(wiring: Wiring, fields: list[str], start: str | None) -> Iterable[dict[str, Any]]:
        where = f"ConditionType eq '{kind}'"
        if start:
            where += f" and {SAP_PRICE_CHANGED} ge datetime'{start}'"
        params = {
            "$filter": where,
            "$orderby": f"{SAP_PRICE_CHANGED},ConditionRecord",
            "$expand": "to_SlsPrcgCndnRecdValidity",
        }
        client = clients.sap(runtime, connector, wiring, url)
        today = runtime.records.clock().date()
        rows = client.entities("A_SlsPrcgConditionRecord", params)
        return [r for r in (current_material(row, today, org) for row in rows) if r["Material"]]

    return pull(runtime, connector, SAP_PRICES, read)


def sap_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """``A_BusinessPartner`` entities changed since the watermark (OData v2) into accounts;
    with ``settings.sync_products``, materials into products (:func:`sap_products`); with
    ``settings.sync_prices``, sales prices into their list prices (:func:`sap_prices`)."""

    def read(wiring: Wiring, fields: list[str], start: str | None) -> Iterable[dict[str, Any]]:
        params = sap_query(fields, "BusinessPartner", start)
        return clients.sap(runtime, connector, wiring).entities("A_BusinessPartner", params)

    out = {STREAM: pull(runtime, connector, SAP_CUSTOMERS, read)}
    if connector.settings.get("sync_products"):
        out[PRODUCTS] = sap_products(runtime, connector)
    if connector.settings.get("sync_prices"):
        out[PRICES] = sap_prices(runtime, connector)
    return out

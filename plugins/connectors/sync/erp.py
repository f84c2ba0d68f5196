"""Customers from an ERP into accounts: pulls upserted by ERP code.

Kingdee and SAP pull incrementally, by a change-date watermark with an overlap; Yonyou's
merchant list is read whole, page by page, each time. Field mappings are data: a
connector's ``settings.customer_fields`` maps the ERP's field keys to account fields
(defaults below). The ERP wins for the fields it maps, since it owns customer master
data; fields it does not map (owner, region, pipeline data) stay as Qiao has them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from qiao.api import ConfigurationError, Runtime
from qiao.plugins.connectors import clients, host
from qiao.plugins.connectors.sap.odata import parse_date
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import cursors
from qiao.plugins.connectors.sync.writing import upsert_all
from qiao.plugins.connectors.yonyou.client import MERCHANTS

KINGDEE_CUSTOMER_FIELDS = {"FNumber": "erp_code", "FName": "name"}
KINGDEE_CHANGED = "FModifyDate"
YONYOU_CUSTOMER_FIELDS = {"code": "erp_code", "name": "name"}
SAP_CUSTOMER_FIELDS = {"BusinessPartner": "erp_code", "BusinessPartnerFullName": "name"}
SAP_CHANGED = "LastChangeDate"
DEFAULT_OVERLAP_MINUTES = 5
STREAM = "customers"
PRODUCTS = "products"
KINGDEE_PRODUCT_FIELDS = {"FNumber": "erp_code", "FName": "name"}


def mapping_of(
    connector: Connector, default: Mapping[str, str], key: str = "customer_fields"
) -> dict[str, str]:
    mapping = dict(connector.settings.get(key) or default)
    if "erp_code" not in mapping.values():
        raise ConfigurationError(
            f"connector {connector.name!r}: {key} must map a field to erp_code"
        )
    return mapping


def since(mark: str, overlap_minutes: int) -> str:
    """The watermark moved back by the overlap, in the ERP's own format."""
    moved = dt.datetime.fromisoformat(mark) - dt.timedelta(minutes=overlap_minutes)
    return moved.isoformat(timespec="seconds")


def kingdee_pull(
    runtime: Runtime,
    connector: Connector,
    stream: str,
    form: str,
    entity: str,
    default: Mapping[str, str],
) -> int:
    """Rows of a Kingdee form changed since the stream's watermark, upserted by erp_code."""
    mapping = mapping_of(connector, default, f"{stream[:-1]}_fields")
    mark = cursors.watermark(runtime, connector.id, stream)
    overlap = int(connector.settings.get("overlap_minutes") or DEFAULT_OVERLAP_MINUTES)
    where = f"{KINGDEE_CHANGED} >= '{since(mark, overlap)}'" if mark else ""
    fields = [*mapping, KINGDEE_CHANGED] if KINGDEE_CHANGED not in mapping else [*mapping]
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.kingdee(runtime, connector, wiring)
        rows = list(
            client.query(form, fields, order=f"{KINGDEE_CHANGED} ASC,FNumber ASC", filter=where)
        )
    values = [mapped(row, mapping) for row in rows]
    if entity == "product":
        values = [{"sku": v.get("erp_code"), **v} for v in values]
    written = upsert_all(runtime, connector.id, connector.vendor, entity, "erp_code", values)
    newest = max((str(row[KINGDEE_CHANGED]) for row in rows), default=None)
    cursors.advance(runtime, connector.id, stream, latest(newest, mark), len(rows))
    return written


def kingdee_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """``BD_Customer`` into accounts and, with ``settings.sync_products``, ``BD_MATERIAL``
    into products (their ``sku`` is the material number unless the mapping names one)."""
    out = {
        STREAM: kingdee_pull(
            runtime, connector, STREAM, "BD_Customer", "account", KINGDEE_CUSTOMER_FIELDS
        )
    }
    if connector.settings.get("sync_products"):
        out[PRODUCTS] = kingdee_pull(
            runtime, connector, PRODUCTS, "BD_MATERIAL", "product", KINGDEE_PRODUCT_FIELDS
        )
    return out


def mapped(row: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, Any]:
    return {target: row.get(source) for source, target in mapping.items()}


def yonyou_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """Every merchant (客户档案) of the tenant into accounts."""
    mapping = mapping_of(connector, YONYOU_CUSTOMER_FIELDS)
    size = int(connector.settings.get("page_size") or 100)
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.yonyou(runtime, connector, wiring)
        rows = list(client.records(MERCHANTS, page_size=size))
    accounts = [mapped(row, mapping) for row in rows]
    written = upsert_all(runtime, connector.id, connector.vendor, "account", "erp_code", accounts)
    cursors.advance(runtime, connector.id, STREAM, None, len(rows))
    return {STREAM: written}


def sap_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """``A_BusinessPartner`` entities changed since the watermark (OData v2) into accounts."""
    mapping = mapping_of(connector, SAP_CUSTOMER_FIELDS)
    mark = cursors.watermark(runtime, connector.id, STREAM)
    overlap = int(connector.settings.get("overlap_minutes") or DEFAULT_OVERLAP_MINUTES)
    params = {
        "$select": ",".join(dict.fromkeys([*mapping, SAP_CHANGED])),
        "$orderby": f"{SAP_CHANGED},BusinessPartner",
    }
    if mark:
        params["$filter"] = f"{SAP_CHANGED} ge datetime'{since(mark, overlap)}'"
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.sap(runtime, connector, wiring)
        rows = list(client.entities("A_BusinessPartner", params))
    accounts = [mapped(row, mapping) for row in rows]
    written = upsert_all(runtime, connector.id, connector.vendor, "account", "erp_code", accounts)
    changed = [changed_at(row.get(SAP_CHANGED)) for row in rows]
    newest = max((c for c in changed if c), default=None)
    cursors.advance(runtime, connector.id, STREAM, latest(newest, mark), len(rows))
    return {STREAM: written}


def changed_at(value: Any) -> str | None:
    """A v2 ``/Date(ms)/`` (or an ISO text) as the naive UTC ISO text a ``$filter`` takes."""
    if not value:
        return None
    instant = (
        parse_date(value) if str(value).startswith("/Date(") else dt.datetime.fromisoformat(value)
    )
    if instant.tzinfo is not None:
        instant = instant.astimezone(dt.UTC).replace(tzinfo=None)
    return instant.isoformat(timespec="seconds")


def latest(*marks: str | None) -> str | None:
    """The later of two watermarks (ISO texts compare in time order), or None for none."""
    return max((m for m in marks if m), default=None)

"""Yonyou merchants and materials and SAP business partners into Qiao, through the worker."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from starlette.responses import JSONResponse

from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain

from .deployment import add_sap, add_yonyou, calls
from .fakes import sap as sap_fake
from .fakes import yonyou as yonyou_fake
from .fakes.sap import FakeSap
from .fakes.yonyou import FakeYonyou

ACCOUNTS = "{ accounts(orderBy: [{field: ERP_CODE}]) { edges { node { erpCode name } } } }"


def accounts(client: Any) -> list[tuple[str, str]]:
    edges = client.data(ACCOUNTS)["accounts"]["edges"]
    return [(e["node"]["erpCode"], e["node"]["name"]) for e in edges]


def test_yonyou_merchants_page_by_page_and_again_without_duplicates(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_yonyou(qiao_client, yonyou, page_size=3)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    assert accounts(qiao_client) == [(f"M{i:03d}", f"客户{i}") for i in range(1, 8)]
    assert len(yonyou.hits(yonyou_fake.MERCHANTS)) == 3
    yonyou.revoke_tokens()
    yonyou.merchants[0].update(name="客户1（新名）", pubts="2026-01-09 10:00:00")
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    assert accounts(qiao_client)[0] == ("M001", "客户1（新名）")
    assert len(accounts(qiao_client)) == 7
    assert ("/yonbip/digitalModel/merchant/list", "ERROR", "310036") in calls(qiao_client)


def test_sap_partners_follow_next_links_and_filter_by_the_watermark(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap
) -> None:
    sap.add_partners(5)
    add_sap(qiao_client, sap)
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    assert accounts(qiao_client) == [(str(1000040 + i), f"宁波客户{i}") for i in range(5)]
    first = sap.hits(sap_fake.V2 + "A_BusinessPartner")[0]
    assert first.headers["authorization"].startswith("Basic ")
    assert "$filter" not in first.query
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    later = [h for h in sap.hits(sap_fake.V2 + "A_BusinessPartner") if "$filter" in h.query]
    assert later[0].query["$filter"] == "LastChangeDate ge datetime'2026-01-04T23:55:00'"


def conditions_sent(fake: FakeYonyou, path: str) -> list[Any]:
    return [json.loads(h.body).get("simpleVOs") for h in fake.hits(path)]


def test_yonyou_reads_only_changes_after_the_first_pull_with_an_overlap(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_yonyou(qiao_client, yonyou, page_size=4)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    assert len(accounts(qiao_client)) == 7
    assert conditions_sent(yonyou, yonyou_fake.MERCHANTS) == [None, None]
    yonyou.merchants[2].update(name="客户3（改）", pubts="2026-01-20 09:00:00")
    yonyou.merchants.append(
        {"id": "8", "code": "M008", "name": "新客户", "pubts": "2026-01-20 08:30:00"}
    )
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    edge = [{"field": "pubts", "op": "egt", "value1": "2026-01-07 07:55:00"}]
    assert conditions_sent(yonyou, yonyou_fake.MERCHANTS)[2:] == [edge]
    assert ("M003", "客户3（改）") in accounts(qiao_client)
    assert ("M008", "新客户") in accounts(qiao_client)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    edge = [{"field": "pubts", "op": "egt", "value1": "2026-01-20 08:55:00"}]
    assert conditions_sent(yonyou, yonyou_fake.MERCHANTS)[-1] == edge


def test_yonyou_rows_read_twice_keep_the_newer_and_refused_rows_are_listed(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    # A merchant changed while the pull paged is met again on a later page.
    yonyou.merchants.append(
        {"id": "1", "code": "M001", "name": "客户1（翻页时改名）", "pubts": "2026-01-09 08:00:00"}
    )
    yonyou.merchants[1]["name"] = ""
    add_yonyou(qiao_client, yonyou, page_size=3)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    assert accounts(qiao_client)[0] == ("M001", "客户1（翻页时改名）")
    assert len(accounts(qiao_client)) == 6
    assert ("upsert account", "ERROR", None) in calls(qiao_client)
    cursor = qiao_client.data("{ connectorCursors { edges { node { stream watermark pulled } } } }")
    assert cursor["connectorCursors"]["edges"][0]["node"] == {
        "stream": "customers",
        "watermark": "2026-01-09T08:00:00",
        "pulled": 8,
    }


def test_yonyou_materials_become_products_on_their_own_watermark(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    yonyou.products = [
        {"id": "p1", "code": "OJ-ISG65", "name": "ISG65 立式泵", "pubts": "2026-01-05 10:00:00"},
        {"id": "p2", "code": "OJ-IRG80", "name": "IRG80 热水泵", "pubts": "2026-01-06 10:00:00"},
    ]
    add_yonyou(qiao_client, yonyou, sync_products=True)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ products(orderBy: [{field: SKU}]) { edges { node { sku name } } } }"
    )
    assert [e["node"]["sku"] for e in edges["products"]["edges"]] == ["OJ-IRG80", "OJ-ISG65"]
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    edge = [{"field": "pubts", "op": "egt", "value1": "2026-01-06 09:55:00"}]
    assert conditions_sent(yonyou, yonyou_fake.PRODUCTS)[-1] == edge


def test_yonyou_rate_limit_waits_in_the_outbox_and_the_watermark_stays(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou, clock: TestClock
) -> None:
    add_yonyou(qiao_client, yonyou)
    limited = JSONResponse(
        {"code": "429", "message": "访问频率超限"}, status_code=429, headers={"Retry-After": "90"}
    )
    yonyou.fail(yonyou_fake.MERCHANTS, limited)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    assert accounts(qiao_client) == []
    assert (
        qiao_client.data("{ connectorCursors { edges { node { key } } } }")["connectorCursors"][
            "edges"
        ]
        == []
    )
    clock.advance(minutes=2)
    drain(qiao_worker)
    assert len(accounts(qiao_client)) == 7


def products(client: Any) -> list[tuple[str, str, str]]:
    edges = client.data(
        "{ products(orderBy: [{field: SKU}]) { edges { node { sku erpCode name } } } }"
    )["products"]["edges"]
    return [(e["node"]["sku"], e["node"]["erpCode"], e["node"]["name"]) for e in edges]


def test_sap_materials_page_to_the_end_with_their_chinese_descriptions_then_only_changes(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap
) -> None:
    for i, day in enumerate((3, 1, 2, 5, 4)):
        sap.add_product(f"OJ-{i}", day, ZH=f"离心泵{i}", EN=f"Pump {i}")
    sap.add_product("OJ-9", 6, EN="Pump only in English")
    add_sap(qiao_client, sap, sync_products=True)
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    listed = [(f"OJ-{i}", f"OJ-{i}", f"离心泵{i}") for i in range(5)]
    assert products(qiao_client) == [*listed, ("OJ-9", "OJ-9", "Pump only in English")]
    reads = sap.hits(sap_fake.PRODUCT + "A_Product")
    assert len(reads) == 3 and "$skiptoken" in reads[-1].query
    assert reads[0].query["$expand"] == "to_Description"
    assert reads[0].query["$orderby"] == "LastChangeDate,Product"

    # Renamed in SAP, changed on the last day read: the next pull reads from the watermark
    # less the overlap and the ERP's name wins.
    sap.products[-1]["to_Description"]["results"].append(
        {"Product": "OJ-9", "Language": "ZH", "ProductDescription": "英文泵"}
    )
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    assert products(qiao_client)[-1] == ("OJ-9", "OJ-9", "英文泵")
    later = sap.hits(sap_fake.PRODUCT + "A_Product")[3]
    assert later.query["$filter"] == "LastChangeDate ge datetime'2026-01-05T23:55:00'"
    assert len(sap.hits(sap_fake.PRODUCT + "A_Product")) == 4


def test_yonyou_material_prices_come_in_through_the_product_mapping(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    yonyou.products = [
        {
            "id": f"p{i}",
            "code": f"OJ-{i}",
            "name": f"离心泵{i}",
            "salePrice": f"{1000 + i}.50",
            "pubts": f"2026-01-0{i + 1} 10:00:00",
        }
        for i in range(5)
    ]
    mapping = {"code": "erp_code", "name": "name", "salePrice": "list_price"}
    add_yonyou(qiao_client, yonyou, sync_products=True, page_size=2, product_fields=mapping)
    qiao_client.data('mutation { syncConnector(name: "用友") }')
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ products(orderBy: [{field: SKU}]) { edges { node { sku listPrice } } } }"
    )["products"]["edges"]
    assert [(e["node"]["sku"], e["node"]["listPrice"]) for e in edges] == [
        (f"OJ-{i}", f"{1000 + i}.50") for i in range(5)
    ]
    assert len(yonyou.hits(yonyou_fake.PRODUCTS)) == 3


def list_prices(client: Any) -> list[tuple[str, str | None]]:
    edges = client.data(
        "{ products(orderBy: [{field: SKU}]) { edges { node { sku listPrice } } } }"
    )["products"]["edges"]
    return [(e["node"]["sku"], e["node"]["listPrice"]) for e in edges]


def test_sap_prices_valid_today_set_list_prices_and_only_new_ones_are_read_again(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap, clock: TestClock
) -> None:
    for i in range(3):
        sap.add_product(f"OJ-{i}", 1, ZH=f"离心泵{i}")
    sap.add_price("OJ-0", "3280.00", created=1, valid=(1, 31))
    sap.add_price("OJ-1", "4150.50", created=1, valid=(1, 31))
    sap.add_price("OJ-1", "9999.00", created=1, valid=(1, 31), org="1010")
    sap.add_price("OJ-2", "1200.00", created=1, valid=(20, 31))
    sap.add_price("OJ-7", "10.00", created=1, valid=(1, 31))
    clock.set(dt.datetime(2026, 1, 10, 2, 0, tzinfo=dt.UTC))
    add_sap(qiao_client, sap, sync_products=True, sync_prices=True, sales_org="1710")
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    assert list_prices(qiao_client) == [("OJ-0", "3280.00"), ("OJ-1", "4150.50"), ("OJ-2", None)]
    reads = sap.hits(sap_fake.PRICE + "A_SlsPrcgConditionRecord")
    assert len(reads) == 3 and reads[0].query["$filter"] == "ConditionType eq 'PPR0'"
    # A material SAP prices but Qiao has not got is refused and listed, not made nameless.
    assert ("upsert product", "ERROR", None) in calls(qiao_client)

    # A new price for OJ-0 (a new condition record): read from the watermark, and it wins.
    sap.add_price("OJ-0", "3300.00", created=3, valid=(3, 31))
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    assert list_prices(qiao_client)[0] == ("OJ-0", "3300.00")
    later = sap.hits(sap_fake.PRICE + "A_SlsPrcgConditionRecord")[3]
    assert later.query["$filter"] == (
        "ConditionType eq 'PPR0' and CreationDate ge datetime'2025-12-31T23:55:00'"
    )

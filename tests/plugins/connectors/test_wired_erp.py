"""Yonyou merchants and SAP business partners into accounts, through the worker."""

from __future__ import annotations

from typing import Any

from qiao.core.testing.worker import drain

from .deployment import add_connector, calls
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
    add_connector(
        qiao_client,
        name="用友",
        vendor="YONYOU",
        baseUrl=yonyou.url,
        settings={"app_key": yonyou_fake.APP_KEY, "tenant_id": yonyou_fake.TENANT, "page_size": 3},
        appSecret=yonyou_fake.APP_SECRET,
    )
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
    add_connector(
        qiao_client,
        name="SAP",
        vendor="SAP",
        baseUrl=sap.url + sap_fake.V2,
        settings={"username": "QIAO_API"},
        appSecret="Welcome1",
    )
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

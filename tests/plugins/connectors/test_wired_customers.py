"""Accounts Qiao creates pushed as ERP customers through the outbox: once, found again by
Qiao's id before any create, and the ERP's name winning a disagreement (masters are the ERP's)."""

from __future__ import annotations

import json
from typing import Any

from qiao.core.events.queue import list_deliveries
from qiao.core.testing.worker import drain

from .deployment import add_sap, add_yonyou, calls, skips
from .fakes import sap as sap_fake
from .fakes import yonyou as yonyou_fake
from .fakes.sap import FakeSap
from .fakes.yonyou import FakeYonyou

ACCOUNT = "mutation($n: String!) { createAccount(input: {name: $n}) { id } }"
UNLINK = "mutation($id: ID!) { updateAccount(id: $id, input: {erpCode: null}) { id } }"
CONFLICTS = (
    '{ connectorCalls(filter: {operation: {eq: "conflict account"}}) '
    "{ edges { node { status detail } } } }"
)


def new_account(client: Any, name: str = "温州精密") -> str:
    return str(client.data(ACCOUNT, {"n": name})["createAccount"]["id"])


def account(client: Any, account_id: str) -> tuple[str | None, str]:
    node = client.data("query($id: ID!) { account(id: $id) { erpCode name } }", {"id": account_id})[
        "account"
    ]
    return node["erpCode"], node["name"]


def conflicts(client: Any) -> list[dict[str, str]]:
    return [e["node"] for e in client.data(CONFLICTS)["connectorCalls"]["edges"]]


def test_yonyou_saves_the_merchant_once_and_a_repeat_finds_it_by_qiaos_id(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_yonyou(qiao_client, yonyou, push_customers=True, sales_org="ORG01")
    created = new_account(qiao_client)
    drain(qiao_worker)
    merchant = yonyou.merchants[-1]
    assert (merchant["code"], merchant["name"], merchant["erpCode"]) == (
        "M008",
        "温州精密",
        created,
    )
    assert merchant["createOrg"] == "ORG01"
    assert account(qiao_client, created) == ("M008", "温州精密")
    saved = json.loads(yonyou.hits(yonyou_fake.MERCHANT_SAVE)[0].body)["data"]
    assert saved["name"] == {"zh_CN": "温州精密"} and saved["_status"] == "Insert"
    lookups = [json.loads(h.body)["simpleVOs"] for h in yonyou.hits(yonyou_fake.MERCHANTS)]
    assert lookups == [[{"field": "erpCode", "op": "eq", "value1": created}]]

    # The code lost on Qiao's side, the token expired meanwhile: found again, not saved again.
    yonyou.revoke_tokens()
    qiao_client.data(UNLINK, {"id": created})
    drain(qiao_worker)
    assert account(qiao_client, created) == ("M008", "温州精密")
    assert len(yonyou.merchants) == 8
    assert len(yonyou.hits(yonyou_fake.MERCHANT_SAVE)) == 1
    assert ("/yonbip/digitalModel/merchant/list", "ERROR", "310036") in calls(qiao_client)
    assert conflicts(qiao_client) == []


def test_a_merchant_yonyou_knows_by_another_name_keeps_yonyous_name(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_yonyou(qiao_client, yonyou, push_customers=True, sales_org="ORG01", page_size=3)
    created = new_account(qiao_client)
    yonyou.merchants.append(
        {
            "id": "88",
            "code": "M088",
            "name": "温州精密机械有限公司",
            "erpCode": created,
            "pubts": "2026-02-01 08:00:00",
        }
    )
    drain(qiao_worker)
    assert account(qiao_client, created) == ("M088", "温州精密机械有限公司")
    assert yonyou.hits(yonyou_fake.MERCHANT_SAVE) == []
    assert conflicts(qiao_client) == [
        {
            "status": "PARTIAL",
            "detail": "M088: name: ERP 温州精密机械有限公司 / Qiao 温州精密 (ERP wins)",
        }
    ]


def test_sap_creates_the_partner_once_fetching_the_csrf_token_again_after_a_403(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap
) -> None:
    sap.add_partners(3)
    add_sap(qiao_client, sap, push_customers=True, partner_grouping="BP02")
    sap.csrf_lapses = 1
    created = new_account(qiao_client, "杭州模具")
    drain(qiao_worker)
    partner = sap.partners["1000043"]
    assert (partner["YY1_QIAO_ID_bus"], partner["BusinessPartnerFullName"]) == (created, "杭州模具")
    assert (partner["BusinessPartnerCategory"], partner["BusinessPartnerGrouping"]) == ("2", "BP02")
    assert account(qiao_client, created) == ("1000043", "杭州模具")
    fetches = [h for h in sap.hits(sap_fake.V2) if h.headers.get("x-csrf-token") == "Fetch"]
    posts = [h for h in sap.hits(sap_fake.V2 + "A_BusinessPartner") if h.method == "POST"]
    assert (len(fetches), len(posts)) == (2, 2)
    lookup = next(h for h in sap.hits(sap_fake.V2 + "A_BusinessPartner") if h.method == "GET")
    assert lookup.query["$filter"] == f"YY1_QIAO_ID_bus eq '{created}'"

    qiao_client.data(UNLINK, {"id": created})
    drain(qiao_worker)
    assert account(qiao_client, created) == ("1000043", "杭州模具")
    assert len(sap.partners) == 4
    assert conflicts(qiao_client) == []


def test_a_partner_sap_knows_by_another_name_keeps_saps_name(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap
) -> None:
    sap.add_partners(5)
    add_sap(qiao_client, sap, push_customers=True)
    created = new_account(qiao_client, "宁波液压")
    sap.partners["1000044"]["YY1_QIAO_ID_bus"] = created
    drain(qiao_worker)
    assert account(qiao_client, created) == ("1000044", "宁波客户4")
    assert [h for h in sap.requests if h.method == "POST"] == []
    assert conflicts(qiao_client) == [
        {"status": "PARTIAL", "detail": "1000044: name: ERP 宁波客户4 / Qiao 宁波液压 (ERP wins)"}
    ]


def test_an_account_deleted_before_its_push_is_skipped_and_listed(
    qiao_client: Any, qiao_runtime: Any, qiao_worker: Any, yonyou: FakeYonyou
) -> None:
    add_yonyou(qiao_client, yonyou, push_customers=True, sales_org="ORG01")
    created = new_account(qiao_client)
    qiao_client.data("mutation($id: ID!) { deleteAccount(id: $id) }", {"id": created})
    drain(qiao_worker)
    assert yonyou.hits(yonyou_fake.MERCHANT_SAVE) == []
    assert skips(qiao_client, "push account") == [
        {"status": "OK", "detail": f"{created}: deleted before it was pushed; skipped"}
    ]
    with qiao_runtime.db.read() as conn:
        unfinished = list_deliveries(conn, statuses=("pending", "dead"))
    assert [d["handler"] for d in unfinished] == []

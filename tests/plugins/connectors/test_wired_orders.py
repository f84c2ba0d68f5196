"""Accepted quotes pushed as ERP sales orders through the outbox: once, found again on a
replay, kept while the ERP is down, and disagreements resolved by the declared rule."""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import JSONResponse

from qiao.core.events.queue import list_deliveries
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain

from .deployment import add_kingdee, add_sap, add_yonyou, calls, skips
from .fakes import kingdee as kingdee_fake
from .fakes import yonyou as yonyou_fake
from .fakes.kingdee import FakeKingdee
from .fakes.sap import FakeSap
from .fakes.yonyou import FakeYonyou

QUOTE = """
mutation($input: QuoteCreateInput!) { createQuote(input: $input) { id } }
"""
UPDATE = """
mutation($id: ID!, $input: QuoteUpdateInput!) { updateQuote(id: $id, input: $input) { id } }
"""


def masters(client: Any, account_code: str | None = "CUST0001") -> tuple[str, str]:
    account = client.data(
        'mutation($c: String) { createAccount(input: {name: "温州精密", erpCode: $c}) { id } }',
        {"c": account_code},
    )["createAccount"]["id"]
    product = client.data(
        'mutation { createProduct(input: {name: "ISG65 离心泵", sku: "OJ-ISG65",'
        ' erpCode: "OJ-ISG65"}) { id } }'
    )["createProduct"]["id"]
    return account, product


def accepted_quote(client: Any, account: str, product: str, quantity: int = 3) -> str:
    values = {
        "name": "温州精密 3 台",
        "accountId": account,
        "productId": product,
        "quantity": quantity,
        "listPrice": "9840.00",
        "quotedPrice": "9000.00",
        "status": "ACCEPTED",
    }
    return str(client.data(QUOTE, {"input": values})["createQuote"]["id"])


def order_number(client: Any, quote: str) -> str | None:
    data = client.data("query($id: ID!) { quote(id: $id) { erpOrderNumber } }", {"id": quote})
    return data["quote"]["erpOrderNumber"]


def waiting(runtime: Any) -> list[str]:
    with runtime.db.read() as conn:
        return [d["handler"] for d in list_deliveries(conn, statuses=("pending", "failed"))]


def test_kingdee_keeps_the_order_in_the_outbox_while_down_and_creates_it_once_when_up(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee, clock: TestClock, qiao_runtime: Any
) -> None:
    add_kingdee(qiao_client, kingdee, push_orders=True, sale_org="100")
    account, product = masters(qiao_client)
    kingdee.down(kingdee_fake.QUERY, kingdee_fake.SAVE)
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    assert kingdee.forms.get("SAL_SaleOrder", []) == []
    assert waiting(qiao_runtime) == ["connectors.order"]
    assert order_number(qiao_client, quote) is None

    kingdee.up()
    clock.advance(minutes=5)
    drain(qiao_worker)
    [order] = kingdee.forms["SAL_SaleOrder"]
    assert order_number(qiao_client, quote) == order["FBillNo"]
    assert (order["F_QIAO_ID"], order["FCustId.FNumber"], order["FMaterialId.FNumber"]) == (
        quote,
        "CUST0001",
        "OJ-ISG65",
    )
    assert (order["FQty"], order["FAllAmount"]) == (3.0, 9000.0)
    model = json.loads(kingdee.hits(kingdee_fake.SAVE)[-1].body)["data"]["Model"]
    assert model["FSaleOrgId"] == {"FNumber": "100"}
    assert model["FBillTypeID"] == {"FNUMBER": "XSDD01_SYS"}
    assert waiting(qiao_runtime) == []
    assert ("ExecuteBillQuery", "ERROR", "http_503") in calls(qiao_client)


def test_kingdee_finds_the_order_a_lost_answer_made_and_qiao_wins_a_disagreement(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    add_kingdee(qiao_client, kingdee, push_orders=True, sale_org="100")
    account, product = masters(qiao_client)
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    saves = len(kingdee.hits(kingdee_fake.SAVE))
    [order] = kingdee.forms["SAL_SaleOrder"]
    # Someone changes the quantity in Kingdee; then the quote's price changes in Qiao.
    order.update(FQty=5.0, FAllAmount=15000.0)
    qiao_client.data(UPDATE, {"id": quote, "input": {"quotedPrice": "8700.00"}})
    drain(qiao_worker)
    assert len(kingdee.forms["SAL_SaleOrder"]) == 1
    assert len(kingdee.hits(kingdee_fake.SAVE)) == saves + 1
    assert (order["FQty"], order["FAllAmount"]) == (3.0, 8700.0)
    update = json.loads(kingdee.hits(kingdee_fake.SAVE)[-1].body)["data"]
    assert update["Model"]["FID"] == order["FID"]
    assert update["Model"]["FSaleOrderEntry"][0]["FEntryID"] == order["FSaleOrderEntry_FEntryID"]
    assert ("conflict quote", "PARTIAL", None) in calls(qiao_client)
    detail = qiao_client.data(
        '{ connectorCalls(filter: {operation: {eq: "conflict quote"}}) '
        "{ edges { node { detail } } } }"
    )["connectorCalls"]["edges"][0]["node"]["detail"]
    assert "quantity: ERP 5 / Qiao 3" in detail and "Qiao wins" in detail
    # An audited order can no longer be changed: the refusal reaches the outbox.
    order["FDocumentStatus"] = "C"
    qiao_client.data(UPDATE, {"id": quote, "input": {"quantity": 4}})
    drain(qiao_worker)
    assert order["FQty"] == 3.0
    assert any(op == "Save" and status == "ERROR" for op, status, _ in calls(qiao_client))


def test_an_order_waits_for_its_customer_to_have_an_erp_code(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee, clock: TestClock, qiao_runtime: Any
) -> None:
    add_kingdee(qiao_client, kingdee, push_orders=True, sale_org="100")
    account, product = masters(qiao_client, account_code=None)
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    assert kingdee.hits(kingdee_fake.QUERY) == []
    assert waiting(qiao_runtime) == ["connectors.order"]
    qiao_client.data(
        'mutation($id: ID!) { updateAccount(id: $id, input: {erpCode: "CUST0042"}) { id } }',
        {"id": account},
    )
    clock.advance(minutes=11)
    drain(qiao_worker)
    assert kingdee.forms["SAL_SaleOrder"][0]["FCustId.FNumber"] == "CUST0042"
    assert order_number(qiao_client, quote) is not None


def test_a_draft_quote_is_not_an_order(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    add_kingdee(qiao_client, kingdee, push_orders=True, sale_org="100")
    account, product = masters(qiao_client)
    values = {
        "name": "草稿",
        "accountId": account,
        "productId": product,
        "listPrice": "1.00",
        "quotedPrice": "1.00",
    }
    qiao_client.data(QUOTE, {"input": values})
    drain(qiao_worker)
    assert kingdee.hits(kingdee_fake.QUERY) == []


def test_yonyou_saves_the_order_once_with_a_resubmit_key_and_refreshes_an_expired_token(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou, clock: TestClock
) -> None:
    add_yonyou(qiao_client, yonyou, push_orders=True, sales_org="ORG01")
    account, product = masters(qiao_client)
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    [order] = yonyou.orders
    assert order_number(qiao_client, quote) == order["code"]
    assert order["headFreeItem"] == {"define1": quote}
    assert (order["agentId"], order["salesOrgId"]) == ("CUST0001", "ORG01")
    line = order["orderDetails"][0]
    assert (line["productId"], line["qty"], line["oriSum"]) == ("OJ-ISG65", 3, "9000.00")
    save = json.loads(yonyou.hits(yonyou_fake.ORDER_SAVE)[0].body)["data"]
    assert save["resubmitCheckKey"] == quote.replace("-", "")
    assert [json.loads(h.body)["simpleVOs"] for h in yonyou.hits(yonyou_fake.ORDERS)] == [
        [{"field": "headFreeItem.define1", "op": "eq", "value1": quote}]
    ]
    # The ERP's copy edited there; the token expired meanwhile: Qiao's values go back.
    line["qty"] = 7
    yonyou.revoke_tokens()
    qiao_client.data(UPDATE, {"id": quote, "input": {"quotedPrice": "8800.00"}})
    drain(qiao_worker)
    assert len(yonyou.orders) == 1
    assert (line["qty"], line["oriSum"]) == (3, "8800.00")
    log = calls(qiao_client)
    assert ("/yonbip/sd/voucherorder/list", "ERROR", "310036") in log
    assert ("conflict quote", "PARTIAL", None) in log


def test_yonyou_rate_limit_hands_the_wait_to_the_outbox(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou, clock: TestClock, qiao_runtime: Any
) -> None:
    add_yonyou(qiao_client, yonyou, push_orders=True, sales_org="ORG01")
    account, product = masters(qiao_client)
    limited = JSONResponse(
        {"code": "429", "message": "访问频率超限"}, status_code=429, headers={"Retry-After": "120"}
    )
    yonyou.fail(yonyou_fake.ORDERS, limited)
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    assert yonyou.orders == [] and waiting(qiao_runtime) == ["connectors.order"]
    clock.advance(minutes=1)
    drain(qiao_worker)
    assert yonyou.orders == []
    clock.advance(minutes=2)
    drain(qiao_worker)
    assert order_number(qiao_client, quote) == yonyou.orders[0]["code"]


def test_yonyou_refuses_a_repeated_submission_even_when_the_query_missed_the_order(
    qiao_client: Any, qiao_worker: Any, yonyou: FakeYonyou, qiao_runtime: Any
) -> None:
    add_yonyou(qiao_client, yonyou, push_orders=True, sales_org="ORG01")
    account, product = masters(qiao_client)
    quote = accepted_quote(qiao_client, account, product)
    yonyou.check_keys.add(quote.replace("-", ""))
    drain(qiao_worker)
    assert yonyou.orders == []
    assert waiting(qiao_runtime) == ["connectors.order"]
    assert ("/yonbip/sd/voucherorder/singleSave", "ERROR", "999") in calls(qiao_client)


def test_sap_creates_the_order_with_its_items_and_patches_them_with_their_etag(
    qiao_client: Any, qiao_worker: Any, sap: FakeSap
) -> None:
    sap.add_partners(2)
    add_sap(qiao_client, sap, push_orders=True, sales_org="1710")
    account, product = masters(qiao_client, account_code="1000041")
    quote = accepted_quote(qiao_client, account, product)
    drain(qiao_worker)
    [(number, order)] = sap.sales_orders.items()
    assert order_number(qiao_client, quote) == number
    assert (order["SoldToParty"], order["YY1_QIAO_ID_SDH"], order["SalesOrganization"]) == (
        "1000041",
        quote,
        "1710",
    )
    assert [(i["Material"], i["RequestedQuantity"]) for i in order["items"]] == [("OJ-ISG65", "3")]
    sap.expire_csrf()
    qiao_client.data(UPDATE, {"id": quote, "input": {"quantity": 4}})
    drain(qiao_worker)
    assert len(sap.sales_orders) == 1
    assert order["items"][0]["RequestedQuantity"] == "4"
    patch = [h for h in sap.requests if h.method == "PATCH"][-1]
    assert patch.headers["if-match"] == 'W/"1"'
    assert "A_SalesOrderItem(SalesOrder='1',SalesOrderItem='10')" in patch.path
    assert ("conflict quote", "PARTIAL", None) in calls(qiao_client)


def test_a_quote_deleted_before_its_push_is_skipped_and_listed(
    qiao_client: Any, qiao_runtime: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    add_kingdee(qiao_client, kingdee, push_orders=True, sale_org="100")
    account, product = masters(qiao_client)
    quote = accepted_quote(qiao_client, account, product)
    qiao_client.data("mutation($id: ID!) { deleteQuote(id: $id) }", {"id": quote})
    drain(qiao_worker)
    assert kingdee.hits(kingdee_fake.QUERY) == []
    assert skips(qiao_client, "push quote") == [
        {"status": "OK", "detail": f"{quote}: deleted before it was pushed; skipped"}
    ]
    assert waiting(qiao_runtime) == []

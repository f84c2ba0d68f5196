"""Sync jobs through the worker: Kingdee customers into accounts, WeCom customers into contacts."""

from __future__ import annotations

import json
from typing import Any

from qiao.core.events.queue import list_deliveries
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain

from .deployment import add_connector, admin_id, calls, set_user
from .deployment import add_kingdee as add_kingdee_connector
from .fakes import dingtalk as dingtalk_fake
from .fakes import kingdee as kingdee_fake
from .fakes import wecom as wecom_fake
from .fakes.dingtalk import FakeDingTalk
from .fakes.kingdee import FakeKingdee
from .fakes.wecom import FakeWeCom

ACCOUNTS = "{ accounts(orderBy: [{field: ERP_CODE}]) { edges { node { erpCode name } } } }"
STATUS = "{ connectorStatus { name lastSyncAt lagSeconds callsLastHour errorsLastHour lastError } }"


def add_kingdee(client: Any, fake: FakeKingdee, password: str = kingdee_fake.PASSWORD) -> str:
    return add_connector(
        client,
        name="金蝶",
        vendor="KINGDEE",
        baseUrl=fake.url + kingdee_fake.PREFIX,
        settings={"acct_id": kingdee_fake.ACCT, "username": kingdee_fake.USER},
        appSecret=password,
        syncMinutes=60,
    )


def accounts(client: Any) -> list[tuple[str, str]]:
    edges = client.data(ACCOUNTS)["accounts"]["edges"]
    return [(e["node"]["erpCode"], e["node"]["name"]) for e in edges]


def filters_sent(fake: FakeKingdee) -> list[str]:
    return [
        json.loads(r.body)["data"]["FilterString"] for r in fake.hits(kingdee_fake.QUERY) if r.body
    ]


def test_customers_arrive_then_only_changes_with_an_overlap(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee, clock: TestClock
) -> None:
    kingdee.add_customers(3)
    add_kingdee(qiao_client, kingdee)
    drain(qiao_worker)
    assert accounts(qiao_client) == [
        ("CUST0000", "客户0"),
        ("CUST0001", "客户1"),
        ("CUST0002", "客户2"),
    ]
    status = qiao_client.data(STATUS)["connectorStatus"][0]
    assert status["lagSeconds"] == 0 and status["errorsLastHour"] == 0

    rows = kingdee.forms["BD_Customer"]
    rows[1].update(FName="客户1（更名）", FModifyDate="2026-01-10T09:00:00")
    rows.append(
        {
            "FCUSTID": 9,
            "FNumber": "CUST0099",
            "FName": "新客户",
            "FModifyDate": "2026-01-10T09:30:00",
        }
    )
    clock.advance(minutes=30)
    drain(qiao_worker)
    assert len(accounts(qiao_client)) == 3  # not due yet: the interval is an hour
    clock.advance(minutes=30)
    drain(qiao_worker)
    assert accounts(qiao_client) == [
        ("CUST0000", "客户0"),
        ("CUST0001", "客户1（更名）"),
        ("CUST0002", "客户2"),
        ("CUST0099", "新客户"),
    ]
    assert filters_sent(kingdee) == ["", "FModifyDate >= '2026-01-03T07:55:00'"]
    clock.advance(hours=1)
    drain(qiao_worker)
    assert filters_sent(kingdee)[-1] == "FModifyDate >= '2026-01-10T09:25:00'"


def test_a_lost_session_logs_in_again(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee, clock: TestClock
) -> None:
    kingdee.add_customers(1)
    add_kingdee(qiao_client, kingdee)
    drain(qiao_worker)
    kingdee.drop_sessions()
    kingdee.forms["BD_Customer"][0].update(FName="改名", FModifyDate="2026-02-01T00:00:00")
    qiao_client.data('mutation { syncConnector(name: "金蝶") }')
    drain(qiao_worker)
    assert accounts(qiao_client) == [("CUST0000", "改名")]
    assert kingdee.logins == 2


def test_refused_rows_are_listed_and_the_others_arrive(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    kingdee.add_customers(2)
    kingdee.forms["BD_Customer"][0]["FName"] = ""
    add_kingdee(qiao_client, kingdee)
    drain(qiao_worker)
    assert accounts(qiao_client) == [("CUST0001", "客户1")]
    assert ("upsert account", "ERROR", None) in calls(qiao_client)
    assert "CUST0000" in qiao_client.data(STATUS)["connectorStatus"][0]["lastError"]


def test_wrong_credentials_wait_in_the_outbox_and_show_in_the_status(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee, qiao_runtime: Any
) -> None:
    add_kingdee(qiao_client, kingdee, password="wrong")
    drain(qiao_worker)
    with qiao_runtime.db.read() as conn:
        waiting = list_deliveries(conn, statuses=("pending", "failed"))
    assert [d["handler"] for d in waiting] == ["connectors.sync"]
    status = qiao_client.data(STATUS)["connectorStatus"][0]
    assert status["errorsLastHour"] == 1 and status["lastSyncAt"] is None
    assert "用户名或密码错误" in status["lastError"]


def test_wecom_customers_become_contacts_of_their_followers(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    wecom.add_customer("wmA001", "王经理", ["zhangsan", "lisi"])
    wecom.add_customer("wmB002", "李工", ["lisi"])
    admin = admin_id(qiao_client)
    set_user(qiao_client, admin, wecomUserid="zhangsan")
    add_connector(
        qiao_client,
        name="企业微信",
        vendor="WECOM",
        baseUrl=wecom.url,
        settings={"corp_id": wecom_fake.CORP_ID, "agent_id": wecom_fake.AGENT_ID},
        appSecret=wecom_fake.SECRET,
    )
    qiao_client.data('mutation { syncConnector(name: "企业微信") }')
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ contacts { edges { node { name wecomExternalUserid owner { username } } } } }"
    )["contacts"]["edges"]
    assert [e["node"] for e in edges] == [
        {"name": "王经理", "wecomExternalUserid": "wmA001", "owner": {"username": "admin"}}
    ]


def user(client: Any, username: str, **values: Any) -> None:
    client.data(
        "mutation($input: UserCreateInput!) { createUser(input: $input) { id } }",
        {"input": {"username": username, "displayName": username, **values}},
    )


USERS = (
    "{ users(orderBy: [{field: USERNAME}]) "
    "{ edges { node { username wecomUserid dingtalkUserid } } } }"
)


def mapped(client: Any) -> dict[str, tuple[str | None, str | None]]:
    edges = client.data(USERS)["users"]["edges"]
    return {
        e["node"]["username"]: (e["node"]["wecomUserid"], e["node"]["dingtalkUserid"])
        for e in edges
    }


def test_wecom_members_are_matched_to_users_by_email_before_customers_arrive(
    qiao_client: Any, qiao_worker: Any, wecom: FakeWeCom
) -> None:
    user(qiao_client, "zhang", email="ZhangSan@example.cn")
    user(qiao_client, "nobody", email="nobody@example.cn")
    wecom.add_customer("wmC003", "钱总", ["zhangsan"])
    add_connector(
        qiao_client,
        name="企业微信",
        vendor="WECOM",
        baseUrl=wecom.url,
        settings={"corp_id": wecom_fake.CORP_ID, "agent_id": wecom_fake.AGENT_ID},
        appSecret=wecom_fake.SECRET,
        syncMinutes=1440,
    )
    drain(qiao_worker)
    assert mapped(qiao_client)["zhang"] == ("zhangsan", None)
    assert mapped(qiao_client)["nobody"] == (None, None)
    edges = qiao_client.data("{ contacts { edges { node { name owner { username } } } } }")
    assert [e["node"] for e in edges["contacts"]["edges"]] == [
        {"name": "钱总", "owner": {"username": "zhang"}}
    ]


def test_dingtalk_users_of_every_department_are_matched_page_by_page(
    qiao_client: Any, qiao_worker: Any, dingtalk: FakeDingTalk
) -> None:
    user(qiao_client, "sun", email="sun@example.cn")
    user(qiao_client, "u2", email="u2@example.cn")
    user(qiao_client, "zhou", phone="138 0013 8000")
    add_connector(
        qiao_client,
        name="钉钉",
        vendor="DINGTALK",
        baseUrl=dingtalk.url,
        settings={"app_key": dingtalk_fake.APP_KEY, "agent_id": dingtalk_fake.AGENT_ID},
        appSecret=dingtalk_fake.APP_SECRET,
    )
    qiao_client.data('mutation { syncConnector(name: "钉钉") }')
    drain(qiao_worker)
    assert mapped(qiao_client)["sun"] == (None, "manager1")
    assert mapped(qiao_client)["u2"] == (None, "u2")  # on the second page of department 2
    assert mapped(qiao_client)["zhou"] == (None, None)  # matched by e-mail unless told
    connector = qiao_client.data("{ connectors { edges { node { id } } } }")
    settings = {
        "app_key": dingtalk_fake.APP_KEY,
        "agent_id": dingtalk_fake.AGENT_ID,
        "match_users_by": "phone",
    }
    qiao_client.data(
        "mutation($id: ID!, $s: JSON) { updateConnector(id: $id, input: {settings: $s}) { id } }",
        {"id": connector["connectors"]["edges"][0]["node"]["id"], "s": settings},
    )
    qiao_client.data('mutation { syncConnector(name: "钉钉") }')
    drain(qiao_worker)
    assert mapped(qiao_client)["zhou"] == (None, "zhou1")


def test_a_new_account_is_pushed_to_kingdee_once_and_gets_its_code(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    add_kingdee_pushing(qiao_client, kingdee)
    created = qiao_client.data('mutation { createAccount(input: {name: "温州精密"}) { id } }')
    account = created["createAccount"]["id"]
    # Kingdee saved it before, and the worker died before Qiao stored the code.
    kingdee.forms["BD_Customer"].append(
        {
            "FCUSTID": 7,
            "FNumber": "CUST0777",
            "FName": "温州精密",
            "F_QIAO_ID": account,
            "FModifyDate": "2026-02-01T00:00:00",
        }
    )
    drain(qiao_worker)
    assert accounts(qiao_client) == [("CUST0777", "温州精密")]
    assert kingdee.hits(kingdee_fake.SAVE) == []
    qiao_client.data('mutation { createAccount(input: {name: "台州机床"}) { id } }')
    drain(qiao_worker)
    assert len(kingdee.hits(kingdee_fake.SAVE)) == 1
    saved = kingdee.forms["BD_Customer"][-1]
    assert (saved["FName"], accounts(qiao_client)[-1][1]) == ("台州机床", "台州机床")
    assert accounts(qiao_client)[-1][0] == saved["FNumber"]


def test_kingdee_materials_become_products_with_prices_mapped_as_data(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    kingdee.forms["BD_MATERIAL"] = [
        {
            "FNumber": "OJ-ISG65",
            "FName": "ISG65-160 立式管道离心泵",
            "F_PRICE": "3280.00",
            "FModifyDate": "2026-01-05T10:00:00",
        },
        {
            "FNumber": "OJ-IRG80",
            "FName": "IRG80-160 热水循环泵",
            "F_PRICE": "4150.50",
            "FModifyDate": "2026-01-06T10:00:00",
        },
    ]
    add_connector(
        qiao_client,
        name="金蝶",
        vendor="KINGDEE",
        baseUrl=kingdee.url + kingdee_fake.PREFIX,
        settings={
            "acct_id": kingdee_fake.ACCT,
            "username": kingdee_fake.USER,
            "sync_products": True,
            "product_fields": {"FNumber": "erp_code", "FName": "name", "F_PRICE": "list_price"},
        },
        appSecret=kingdee_fake.PASSWORD,
        syncMinutes=60,
    )
    drain(qiao_worker)
    edges = qiao_client.data(
        "{ products(orderBy: [{field: SKU}]) { edges { node { sku erpCode name listPrice } } } }"
    )["products"]["edges"]
    assert [e["node"] for e in edges] == [
        {
            "sku": "OJ-IRG80",
            "erpCode": "OJ-IRG80",
            "name": "IRG80-160 热水循环泵",
            "listPrice": "4150.50",
        },
        {
            "sku": "OJ-ISG65",
            "erpCode": "OJ-ISG65",
            "name": "ISG65-160 立式管道离心泵",
            "listPrice": "3280.00",
        },
    ]


def test_a_customer_kingdee_knows_by_another_name_keeps_kingdees_name(
    qiao_client: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    add_kingdee_pushing(qiao_client, kingdee)
    created = qiao_client.data('mutation { createAccount(input: {name: "温州精密"}) { id } }')
    kingdee.forms["BD_Customer"].append(
        {
            "FCUSTID": 8,
            "FNumber": "CUST0888",
            "FName": "温州精密机械有限公司",
            "F_QIAO_ID": created["createAccount"]["id"],
            "FModifyDate": "2026-02-01T00:00:00",
        }
    )
    drain(qiao_worker)
    assert accounts(qiao_client) == [("CUST0888", "温州精密机械有限公司")]
    detail = qiao_client.data(
        '{ connectorCalls(filter: {operation: {eq: "conflict account"}}) '
        "{ edges { node { status detail } } } }"
    )["connectorCalls"]["edges"]
    assert [e["node"] for e in detail] == [
        {
            "status": "PARTIAL",
            "detail": "CUST0888: name: ERP 温州精密机械有限公司 / Qiao 温州精密 (ERP wins)",
        }
    ]


def add_kingdee_pushing(client: Any, fake: FakeKingdee) -> None:
    add_kingdee_connector(client, fake, push_customers=True)

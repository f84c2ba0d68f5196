"""The Kingdee K/3 Cloud client against a local Web API server."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    TokenInvalidError,
    VendorError,
)
from qiao.plugins.connectors.kingdee.client import AppSecretLogin, KingdeeClient, PasswordLogin

from .conftest import FakeTime, statuses
from .fakes import kingdee as fake

FIELDS = ["FNumber", "FName", "FModifyDate"]
ADMIN = PasswordLogin(fake.USER, fake.PASSWORD)


@pytest.fixture
def server(fake_time: FakeTime) -> Iterator[fake.FakeKingdee]:
    with fake.FakeKingdee(fake_time.clock).serve() as running:
        yield running


def make_client(
    server: fake.FakeKingdee,
    http: httpx.Client,
    wiring: Wiring,
    login: PasswordLogin | AppSecretLogin = ADMIN,
) -> KingdeeClient:
    return KingdeeClient(server.url + fake.PREFIX, fake.ACCT, login, http=http, wiring=wiring)


@pytest.mark.parametrize(
    "login",
    [
        PasswordLogin(fake.USER, fake.PASSWORD),
        AppSecretLogin(fake.APP_USER, fake.APP_ID, fake.APP_SECRET),
    ],
    ids=["ValidateUser", "LoginByAppSecret"],
)
def test_a_query_pages_with_start_row_and_limit_to_the_end(
    server: fake.FakeKingdee,
    http: httpx.Client,
    wiring: Wiring,
    login: PasswordLogin | AppSecretLogin,
) -> None:
    server.add_customers(7)
    client = make_client(server, http, wiring, login)
    rows = list(client.query("BD_Customer", FIELDS, order="FNumber", page_size=3))
    assert [r["FNumber"] for r in rows] == [f"CUST{i:04d}" for i in range(7)]
    assert rows[0]["FName"] == "客户0"
    pages = [json.loads(h.body)["data"] for h in server.hits(fake.QUERY)]
    assert [(p["StartRow"], p["Limit"]) for p in pages] == [(0, 3), (3, 3), (6, 3)]
    assert server.logins == 1
    assert all("kdservice-sessionid=sess-1" in h.headers["cookie"] for h in server.hits(fake.QUERY))


def test_an_exact_multiple_of_the_page_ends_on_an_empty_page(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring
) -> None:
    server.add_customers(6)
    client = make_client(server, http, wiring)
    rows = list(client.query("BD_Customer", FIELDS, order="FNumber", page_size=3, filter=""))
    assert len(rows) == 6 and len(server.hits(fake.QUERY)) == 3


def test_filters_reach_the_server(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring
) -> None:
    server.add_customers(10)
    client = make_client(server, http, wiring)
    rows = list(
        client.query(
            "BD_Customer", FIELDS, order="FModifyDate", filter="FModifyDate >= '2026-01-08'"
        )
    )
    assert [r["FModifyDate"][:10] for r in rows] == ["2026-01-08", "2026-01-09", "2026-01-10"]


def test_errors_inside_http_200_are_raised_with_kingdees_messages(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring, calls: list[CallRecord]
) -> None:
    server.add_customers(1)
    client = make_client(server, http, wiring)
    with pytest.raises(VendorError, match="字段FNope不存在"):
        list(client.query("BD_Customer", ["FNope"], order="FNumber"))
    with pytest.raises(VendorError) as caught:
        client.save("BD_Customer", {"FNumber": "C-9"})
    assert caught.value.message == "字段“客户名称”是必填项; 客户编码已存在"
    assert not caught.value.retryable
    assert statuses(calls, "Save") == ["error:500"]


def test_save_returns_the_new_id_and_number(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring
) -> None:
    client = make_client(server, http, wiring)
    saved = client.save("BD_Customer", {"FNumber": "QIAO-0001", "FName": "宁波液压"})
    assert saved.number == "QIAO-0001"
    assert server.forms["BD_Customer"][-1]["FCUSTID"] == int(saved.id)


def test_a_lost_session_logs_in_again_once(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring, calls: list[CallRecord]
) -> None:
    server.add_customers(2)
    client = make_client(server, http, wiring)
    client.save("BD_Customer", {"FName": "甲"})
    server.drop_sessions()
    client.save("BD_Customer", {"FName": "乙"})
    assert server.logins == 2
    assert statuses(calls, "Save") == ["ok", "error:1", "ok"]
    server.fail(fake.QUERY, [[fake.status(False, (fake.LOST,), msg_code=1)]], times=2)
    with pytest.raises(TokenInvalidError):
        list(client.query("BD_Customer", FIELDS, order="FNumber"))
    assert server.logins == 3


def test_a_refused_login_is_an_authentication_error(
    server: fake.FakeKingdee, http: httpx.Client, wiring: Wiring, calls: list[CallRecord]
) -> None:
    client = make_client(server, http, wiring, PasswordLogin(fake.USER, "wrong"))
    with pytest.raises(AuthenticationError, match="用户名或密码错误"):
        client.save("BD_Customer", {"FName": "甲"})
    assert "wrong" not in repr(calls)
    assert server.hits(fake.SAVE) == []

"""The Yonyou client against a local open API: discovery, signed token, paging."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from urllib.parse import quote

import httpx
import pytest

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    TokenInvalidError,
    VendorError,
)
from qiao.plugins.connectors.yonyou.client import MERCHANTS, YonyouClient, signature

from .conftest import FakeTime, statuses
from .fakes import yonyou as fake


@pytest.fixture
def server(fake_time: FakeTime) -> Iterator[fake.FakeYonyou]:
    with fake.FakeYonyou(fake_time.clock).serve() as running:
        yield running


@pytest.fixture
def client(server: fake.FakeYonyou, http: httpx.Client, wiring: Wiring) -> YonyouClient:
    return YonyouClient(
        fake.APP_KEY,
        fake.APP_SECRET,
        http=http,
        wiring=wiring,
        tenant_id=fake.TENANT,
        discovery_url=server.url,
    )


def test_the_signature_matches_openssl_on_yonyous_documented_string() -> None:
    # Yonyou's example: appKey 41832a3d2df94989b500da6a22268747, timestamp 1568098531823
    text = b"appKey41832a3d2df94989b500da6a22268747timestamp1568098531823"
    digest = subprocess.run(
        ["openssl", "dgst", "-sha256", "-hmac", "secret", "-binary"],
        input=text,
        capture_output=True,
        check=True,
    ).stdout
    value = signature("41832a3d2df94989b500da6a22268747", "secret", "1568098531823")
    assert value == base64.b64encode(digest).decode()


def test_records_page_from_one_to_the_last_page(
    client: YonyouClient, server: fake.FakeYonyou
) -> None:
    rows = list(client.records(MERCHANTS, page_size=3))
    assert [r["code"] for r in rows] == [f"M{i:03d}" for i in range(1, 8)]
    pages = [json.loads(h.body)["pageIndex"] for h in server.hits(fake.MERCHANTS)]
    assert pages == [1, 2, 3]
    assert len(server.hits("/open-auth/dataCenter/getGatewayAddress")) == 1
    (token,) = server.hits(fake.TOKEN_PATH)
    assert token.query["appKey"] == fake.APP_KEY
    assert f"signature={quote(token.query['signature'], safe='')}" in token.raw_query


def test_an_invalid_token_is_refreshed_once(
    client: YonyouClient, server: fake.FakeYonyou, calls: list[CallRecord], fake_time: FakeTime
) -> None:
    list(client.records(MERCHANTS, page_size=10))
    server.revoke_tokens()
    fake_time.advance(1)
    assert len(list(client.records(MERCHANTS, page_size=10))) == 7
    assert statuses(calls, MERCHANTS) == ["ok", "error:310036", "ok"]
    server.fail(fake.MERCHANTS, {"code": "310036", "message": "非法token"}, times=2)
    with pytest.raises(TokenInvalidError):
        list(client.records(MERCHANTS))


def test_a_wrong_secret_or_tenant_is_an_authentication_error(
    server: fake.FakeYonyou, http: httpx.Client, wiring: Wiring
) -> None:
    wrong = YonyouClient(
        fake.APP_KEY,
        "wrong",
        http=http,
        wiring=wiring,
        tenant_id=fake.TENANT,
        discovery_url=server.url,
    )
    with pytest.raises(AuthenticationError, match="签名校验失败"):
        list(wrong.records(MERCHANTS))
    lost = YonyouClient(
        fake.APP_KEY,
        fake.APP_SECRET,
        http=http,
        wiring=wiring,
        tenant_id="nobody",
        discovery_url=server.url,
    )
    with pytest.raises(AuthenticationError, match="网关地址"):
        lost.endpoints()


def test_business_errors_carry_yonyous_code(client: YonyouClient, server: fake.FakeYonyou) -> None:
    with pytest.raises(VendorError) as caught:
        list(client.records(MERCHANTS, page_size=501))
    assert caught.value.code == "999" and "pageSize" in caught.value.message


def test_known_endpoints_skip_discovery(
    server: fake.FakeYonyou, http: httpx.Client, wiring: Wiring
) -> None:
    client = YonyouClient(
        fake.APP_KEY,
        fake.APP_SECRET,
        http=http,
        wiring=wiring,
        gateway_url=server.url + "/gw",
        token_url=server.url + "/tk",
    )
    assert len(list(client.records(MERCHANTS))) == 7
    assert server.hits("/open-auth/dataCenter/getGatewayAddress") == []

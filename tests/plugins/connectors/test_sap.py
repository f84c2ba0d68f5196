"""The SAP OData client against a local S/4HANA-style OData server (v2 and v4)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import pytest

from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import ConflictError, NotFoundError, VendorError
from qiao.plugins.connectors.sap.odata import ODataClient, decode_dates, parse_date

from .conftest import FakeTime, statuses
from .fakes import sap as fake

CREATE = "POST A_BusinessPartner"
PATCH = "PATCH A_BusinessPartner"


@pytest.fixture
def server(fake_time: FakeTime) -> Iterator[fake.FakeSap]:
    running = fake.FakeSap(fake_time.clock)
    running.add_partners(5)
    with running.serve():
        yield running


@pytest.fixture
def v2(server: fake.FakeSap, http: httpx.Client, wiring: Wiring) -> ODataClient:
    return ODataClient(server.url + fake.V2, http=http, wiring=wiring)


def test_v2_pages_follow_next_links_to_the_end(v2: ODataClient, server: fake.FakeSap) -> None:
    rows = list(v2.entities("A_BusinessPartner"))
    assert [r["BusinessPartner"] for r in rows] == [str(1000040 + i) for i in range(5)]
    hits = server.hits(fake.V2 + "A_BusinessPartner")
    assert len(hits) == 3
    assert hits[0].query == {"$format": "json"}
    assert fake.offset_of(hits[2].query["$skiptoken"]) == 4
    assert parse_date(rows[1]["LastChangeDate"]) == dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def test_v4_pages_follow_relative_next_links(
    server: fake.FakeSap, http: httpx.Client, wiring: Wiring
) -> None:
    client = ODataClient(server.url + fake.V4, http=http, wiring=wiring, version=4)
    rows = list(client.entities("SalesOrder", {"$select": "SalesOrder,TotalNetAmount"}))
    assert [r["SalesOrder"] for r in rows] == ["5000", "5001", "5002", "5003", "5004"]
    hits = server.hits(fake.V4 + "SalesOrder")
    assert hits[0].query == {"$select": "SalesOrder,TotalNetAmount"}
    assert "$select" not in hits[1].query and "$skiptoken" in hits[1].query


def test_v2_dates_parse_with_and_without_offsets() -> None:
    assert parse_date("/Date(0)/") == dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    shifted = parse_date("/Date(1767225600000+0480)/")
    assert shifted == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert shifted.utcoffset() == dt.timedelta(hours=8)
    assert parse_date("/Date(-86400000)/") == dt.datetime(1969, 12, 31, tzinfo=dt.UTC)
    decoded = decode_dates({"a": ["/Date(0)/", "x"], "b": {"c": "/Date(1000)/"}})
    assert decoded["a"][1] == "x" and decoded["b"]["c"].second == 1
    with pytest.raises(ValueError, match="not an OData v2 date"):
        parse_date("2026-01-01")


def test_a_create_fetches_a_csrf_token_and_sends_it_with_the_session_cookie(
    v2: ODataClient, server: fake.FakeSap
) -> None:
    created = v2.create("A_BusinessPartner", {"BusinessPartnerFullName": "杭州模具"})
    assert created.data["BusinessPartnerFullName"] == "杭州模具" and created.etag
    fetches = [h for h in server.hits(fake.V2) if h.headers.get("x-csrf-token") == "Fetch"]
    assert len(fetches) == 1
    (post,) = [h for h in server.requests if h.method == "POST"]
    assert post.headers["x-csrf-token"] in server.csrf.values()
    assert "SAP_SESSIONID_S4H_100=" in post.headers["cookie"]
    v2.create("A_BusinessPartner", {"BusinessPartnerFullName": "苏州注塑"})
    assert len([h for h in server.hits(fake.V2) if h.headers.get("x-csrf-token")]) == 1


def test_a_403_csrf_required_refetches_once(
    v2: ODataClient, server: fake.FakeSap, calls: list[CallRecord]
) -> None:
    v2.create("A_BusinessPartner", {"BusinessPartnerFullName": "甲"})
    server.expire_csrf()
    v2.create("A_BusinessPartner", {"BusinessPartnerFullName": "乙"})
    assert statuses(calls, CREATE) == ["ok", "error:csrf_required", "ok"]
    assert statuses(calls, "csrf-fetch") == ["ok", "ok"]


def test_updates_carry_the_etag_and_a_stale_one_is_a_conflict(
    v2: ODataClient, server: fake.FakeSap
) -> None:
    path = "A_BusinessPartner('1000041')"
    entity = v2.get(path)
    assert entity.etag == server._etag("1000041")
    new_etag = v2.update(path, {"BusinessPartnerFullName": "宁波液压（新）"}, entity.etag or "")
    assert new_etag and new_etag != entity.etag
    (patch,) = [h for h in server.requests if h.method == "PATCH"]
    assert patch.headers["if-match"] == entity.etag
    with pytest.raises(ConflictError) as caught:
        v2.update(path, {"BusinessPartnerFullName": "旧"}, entity.etag or "")
    assert caught.value.code == "/IWBEP/CM_MGW_RT/022" and not caught.value.retryable
    assert server.partners["1000041"]["BusinessPartnerFullName"] == "宁波液压（新）"


def test_odata_errors_carry_sap_codes_and_messages(v2: ODataClient) -> None:
    with pytest.raises(VendorError) as caught:
        v2.create("A_BusinessPartner", {"BusinessPartnerFullName": ""})
    assert caught.value.code == "R11/012"
    assert caught.value.message == "Enter a name for the business partner"
    with pytest.raises(NotFoundError):
        v2.get("A_BusinessPartner('9999999')")

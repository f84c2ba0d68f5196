"""S14: a law firm's practice flows, through GraphQL on the real server, on both databases.

鹏程律师事务所 runs the law_firms template (docs/templates/law-firms.md):

- conflict checks before a matter opens: an absolute conflict (the other side of the same
  dispute) blocks it for good; a relative one blocks it until the client's informed consent
  is recorded, and the matter is then walled off: a lawyer outside its team finds it on no
  read path (lists, single records, relations, the conflict search);
- an appeal deadline computed from the day of service, rolled past days off, with reminders
  only at the offsets still ahead when it was recorded;
- a bankruptcy timeline whose dates are refused outside the windows of the 企业破产法;
- family matters get a counselling session to book, IP matters a search deadline;
- time billed in tenths of an hour, rounded up, at the lawyer's rate on the matter, and a
  statement adding up its period to the fen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.auth.tokens import create_token
from qiao.core.events.worker import Worker
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain

pytestmark = pytest.mark.storage
#: Monday 2 March 2026, 09:00 in Beijing.
MONDAY = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
PEOPLE = {
    "chen": ("陈志远", "partner"),
    "he": ("何静", "lawyer"),
    "wang": ("王磊", "lawyer"),
    "zhou": ("周敏", "conflicts_officer"),
    "liang": ("梁会计", "firm_finance"),
}


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "law_firms")


@pytest.fixture
def firm(qiao_runtime: Runtime, qiao_clock: TestClock) -> dict[str, Any]:
    qiao_clock.set(MONDAY)
    records = qiao_runtime.records
    with records.db.read() as conn:
        roles = {
            r["name"]: r["id"] for r in records.list(conn, "role", actor=Actor.system()).records
        }
    firm: dict[str, Any] = {"id": {}, "token": {}}
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for username, (name, role) in PEOPLE.items():
            user = records.create(ctx, "user", {"username": username, "display_name": name})
            records.create(ctx, "role_assignment", {"user": user["id"], "role": roles[role]})
            firm["id"][username] = user["id"]
            firm["token"][username] = create_token(ctx.connection, qiao_runtime.current(), username)
    return firm


@pytest.fixture
def tokens(firm: dict[str, Any]) -> dict[str, str]:
    return firm["token"]


def create(client: GraphQLClient, entity: str, values: dict[str, Any], fields: str = "id") -> Any:
    name = "".join(part.capitalize() for part in entity.split("_"))
    query = f"mutation($input: {name}CreateInput!) {{ create{name}(input: $input) {{ {fields} }} }}"
    return client.data(query, {"input": values})[f"create{name}"]


def update(
    client: GraphQLClient, entity: str, id_: str, values: dict[str, Any], fields: str = "id"
) -> Any:
    name = "".join(part.capitalize() for part in entity.split("_"))
    query = (
        f"mutation($id: ID!, $input: {name}UpdateInput!) "
        f"{{ update{name}(id: $id, input: $input) {{ {fields} }} }}"
    )
    return client.data(query, {"id": id_, "input": values})[f"update{name}"]


def refused(client: GraphQLClient, entity: str, id_: str, values: dict[str, Any]) -> dict[str, Any]:
    name = "".join(part.capitalize() for part in entity.split("_"))
    query = (
        f"mutation($id: ID!, $input: {name}UpdateInput!) "
        f"{{ update{name}(id: $id, input: $input) {{ id }} }}"
    )
    errors = client.errors(query, {"id": id_, "input": values})
    return errors[0]


def matter(client: GraphQLClient, number: str, client_id: str, **values: Any) -> dict[str, Any]:
    base = {
        "matterNumber": number,
        "title": number,
        "clientId": client_id,
        "practiceArea": "LITIGATION",
    }
    return create(client, "matter", {**base, **values}, "id status conflictStatus")


def check(client: GraphQLClient, matter_id: str) -> dict[str, Any]:
    return create(
        client,
        "conflict_check",
        {"matterId": matter_id},
        "id result hitCount hits { edges { node { matchedName matchKind severity reason } } }",
    )


# -- Conflicts and walls ------------------------------------------------------------------


def test_conflicts_absolute_relative_waived_and_walled(
    qiao_client: GraphQLClient, client_for: Callable[[str], GraphQLClient], firm: dict[str, Any]
) -> None:
    admin, ids = qiao_client, firm["id"]
    officer, he, wang = client_for("zhou"), client_for("he"), client_for("wang")
    yunfan = create(admin, "account", {"name": "深圳云帆智能科技有限公司"})["id"]
    # An open matter: 云帆 against 某电子 over a patent.
    first = matter(
        he, "PC-2026-IP-001", yunfan, practiceArea="IP", dispute="云帆发明专利侵权",
        opposingParty="深圳某电子科技有限公司", responsibleLawyerId=ids["he"],
    )  # fmt: skip
    assert check(officer, first["id"])["result"] == "CLEAR"
    assert update(he, "matter", first["id"], {"status": "OPEN"}, "status") == {"status": "OPEN"}

    # 某电子 asks the firm to defend it in the same dispute: absolute, refused for good.
    moudian = create(admin, "account", {"name": "某电子科技股份有限公司"})["id"]
    absolute = matter(
        wang, "PC-2026-IP-002", moudian, dispute="云帆发明专利侵权", responsibleLawyerId=ids["wang"]
    )
    found = check(officer, absolute["id"])
    assert found["result"] == "ABSOLUTE"
    hits = [e["node"] for e in found["hits"]["edges"]]
    assert {
        "matchedName": "深圳某电子科技有限公司",
        "matchKind": "NEAR",
        "severity": "ABSOLUTE",
    } in [{k: h[k] for k in ("matchedName", "matchKind", "severity")} for h in hits]
    error = refused(wang, "matter", absolute["id"], {"status": "OPEN"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "status"}
    assert "第51条" in error["message"] and "不可豁免" in error["message"]
    waiver = {
        "matterId": absolute["id"],
        "consentSignedOn": "2026-03-02",
        "consentingParties": "某电子",
    }
    errors = officer.errors(
        "mutation($input: ConflictWaiverCreateInput!) { createConflictWaiver(input: $input) { id } }",
        {"input": waiver},
    )
    assert "第51条" in errors[0]["message"] and errors[0]["extensions"]["field"] == "matter"

    # 某电子 in another dispute (a lease): relative, blocked until the informed consent.
    relative = matter(
        wang, "PC-2026-RE-003", moudian, practiceArea="REAL_ESTATE", dispute="厂房租赁",
        responsibleLawyerId=ids["wang"],
    )  # fmt: skip
    assert check(officer, relative["id"])["result"] == "RELATIVE"
    error = refused(wang, "matter", relative["id"], {"status": "OPEN"})
    assert "第52条" in error["message"] and "知情同意书" in error["message"]
    create(
        officer,
        "conflict_waiver",
        {**waiver, "matterId": relative["id"], "documentNumber": "ZQ-2026-01"},
    )
    opened = update(
        wang, "matter", relative["id"], {"status": "OPEN"}, "status conflictStatus walled"
    )
    assert opened == {"status": "OPEN", "conflictStatus": "WAIVED", "walled": True}
    create(
        wang,
        "time_entry",
        {
            "matterId": relative["id"],
            "workedOn": "2026-03-02",
            "hours": "1.00",
            "description": "审阅租赁合同",
        },
    )

    # The wall: 何静 is not on the lease matter's team; 王磊 is.
    assert _numbers(he, "{ matters { totalCount edges { node { matterNumber } } } }") == {
        "PC-2026-IP-001", "PC-2026-IP-002"
    }  # fmt: skip
    assert he.data("{ matters { totalCount } }")["matters"]["totalCount"] == 2
    assert he.data("query($id: ID!) { matter(id: $id) { id } }", {"id": relative["id"]}) == {
        "matter": None
    }
    assert he.data("{ timeEntries { totalCount } }")["timeEntries"]["totalCount"] == 0
    legal = he.data(
        "query($id: ID!) { account(id: $id) { legalMatters { totalCount } legalPartyRecords { totalCount } } }",
        {"id": moudian},
    )["account"]
    assert legal == {"legalMatters": {"totalCount": 1}, "legalPartyRecords": {"totalCount": 1}}
    searched = he.data('{ conflictSearch(name: "某电子科技") { entity matterId matchedAs } }')[
        "conflictSearch"
    ]
    assert relative["id"] not in {h["matterId"] for h in searched}
    assert {h["matterId"] for h in searched if h["entity"] == "matter_party"} == {
        first["id"],
        absolute["id"],
    }
    # The check on the absolute matter keeps its hit on the open matter, visible to both.
    assert wang.data("query($id: ID!) { matter(id: $id) { walled } }", {"id": relative["id"]}) == {
        "matter": {"walled": True}
    }
    assert wang.data("{ timeEntries { totalCount } }")["timeEntries"]["totalCount"] == 1
    wang_sees = wang.data('{ conflictSearch(name: "某电子科技") { matterId } }')["conflictSearch"]
    assert relative["id"] in {h["matterId"] for h in wang_sees}
    # Every check and decision is kept.
    checks = officer.data("{ conflictChecks { totalCount } conflictWaivers { totalCount } }")
    assert checks == {"conflictChecks": {"totalCount": 3}, "conflictWaivers": {"totalCount": 1}}


def _numbers(client: GraphQLClient, query: str) -> set[str]:
    return {e["node"]["matterNumber"] for e in client.data(query)["matters"]["edges"]}

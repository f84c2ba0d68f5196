"""S14: a law firm's practice flows, through GraphQL on the real server, on both databases.

鹏程律师事务所 runs the law_firms template (docs/templates/law_firms.md):

- conflict checks before a matter opens: an absolute conflict (the other side of the same
  dispute) blocks it for good; a relative one blocks it until the client's informed consent
  is recorded, and the matter is then walled off: a lawyer outside its team finds it on no
  read path (lists, single records, relations, the conflict search);
- an appeal deadline computed from the day of service, rolled past days off, with reminders
  only at the offsets still ahead when it was recorded;
- a bankruptcy timeline whose dates are refused outside the windows of the 企业破产法;
- family matters get a counselling session to book, IP matters a search deadline;
- time billed in tenths of an hour, rounded up, at the lawyer's rate on the matter, and a
  statement adding up its period to the fen, rendered as a PDF with each entry and the total.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from pypdf import PdfReader

from qiao.api import BadUserInput
from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

pytestmark = pytest.mark.storage
#: Monday 2 March 2026, 09:00 in Beijing.
MONDAY = dt.datetime(2026, 3, 2, 1, 0, tzinfo=dt.UTC)
PEOPLE = {
    "chen": ("陈志远", "partner"),
    "he": ("何静", "lawyer"),
    "wang": ("王磊", "lawyer"),
    "zhou": ("周敏", "conflicts_officer"),
    "liang": ("梁会计", "firm_finance"),
    "zhao": ("赵小雨", "paralegal"),
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
    assert error["extensions"] == {
        "code": "BAD_USER_INPUT", "field": "status", "guard": 'conflict_status <> "ABSOLUTE"'
    }  # fmt: skip
    assert "第51条" in error["message"] and "不可豁免" in error["message"]
    waiver = {
        "matterId": absolute["id"],
        "consentSignedOn": "2026-03-02",
        "consentingParties": "某电子",
    }
    errors = officer.errors(
        "mutation($input: ConflictWaiverCreateInput!) "
        "{ createConflictWaiver(input: $input) { id } }",
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
        wang, "matter", relative["id"], {"status": "OPEN"}, "status conflictStatus walled openedOn"
    )
    assert opened == {
        "status": "OPEN", "conflictStatus": "WAIVED", "walled": True, "openedOn": "2026-03-02"
    }  # fmt: skip
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
        "query($id: ID!) { account(id: $id) "
        "{ legalMatters { totalCount } legalPartyRecords { totalCount } } }",
        {"id": moudian},
    )["account"]
    assert legal == {"legalMatters": {"totalCount": 1}, "legalPartyRecords": {"totalCount": 1}}
    searched = he.data('{ conflictSearch(name: "某电子科技") { entity matterId matchedAs } }')[
        "conflictSearch"
    ]
    assert relative["id"] not in {h["matterId"] for h in searched}
    assert {h["matterId"] for h in searched if h["entity"] == "MatterParty"} == {
        first["id"],
        absolute["id"],
    }
    trail = (
        'query($id: ID!) { auditTrail(entity: "Matter", id: $id) { edges { node { operation } } } }'
    )
    assert he.errors(trail, {"id": relative["id"]})[0]["extensions"]["code"] == "FORBIDDEN"
    assert wang.data(trail, {"id": relative["id"]})["auditTrail"]["edges"]
    assert wang.data("query($id: ID!) { matter(id: $id) { walled } }", {"id": relative["id"]}) == {
        "matter": {"walled": True}
    }
    assert wang.data("{ timeEntries { totalCount } }")["timeEntries"]["totalCount"] == 1
    wang_sees = wang.data('{ conflictSearch(name: "某电子科技") { matterId } }')["conflictSearch"]
    assert relative["id"] in {h["matterId"] for h in wang_sees}
    # 何静 checks a matter of her own against 某电子: she learns of the conflict with the walled
    # matter (the result, the count), never which matter it is.
    probe = matter(
        he, "PC-2026-IP-004", yunfan, dispute="商标许可",
        opposingParty="某电子科技有限公司", responsibleLawyerId=ids["he"],
    )  # fmt: skip
    probed = create(
        he,
        "conflict_check",
        {"matterId": probe["id"]},
        "result hitCount hits { totalCount edges { node { matchedMatter { id } } } }",
    )
    assert probed["result"] == "RELATIVE"
    seen = {
        e["node"]["matchedMatter"]["id"]
        for e in probed["hits"]["edges"]
        if e["node"]["matchedMatter"]
    }
    assert seen == {first["id"], absolute["id"]}
    assert probed["hitCount"] > probed["hits"]["totalCount"]
    # A later check finds the same relative conflict and keeps the waiver.
    assert check(officer, relative["id"])["result"] == "RELATIVE"
    kept = "query($id: ID!) { matter(id: $id) { conflictStatus } }"
    assert wang.data(kept, {"id": relative["id"]}) == {"matter": {"conflictStatus": "WAIVED"}}
    # Every check and decision is kept.
    checks = officer.data("{ conflictChecks { totalCount } conflictWaivers { totalCount } }")
    assert checks == {"conflictChecks": {"totalCount": 5}, "conflictWaivers": {"totalCount": 1}}
    gone = admin.errors("mutation($id: ID!) { deleteConflictCheck(id: $id) }", {"id": found["id"]})
    assert gone[0]["extensions"]["code"] == "CONFLICT" and "永久保留" in gone[0]["message"]


def test_two_checks_of_one_matter_at_once_both_finish_with_its_result(
    qiao_runtime: Runtime, firm: dict[str, Any]
) -> None:
    # The intake rule's check and the officer's own can run at the same moment.
    records, system = qiao_runtime.records, Actor.system()
    with records.transaction(system, Source.SYSTEM) as ctx:
        nanyue = records.create(ctx, "account", {"name": "广东省东莞南粤物流有限公司"})
        huaxin = records.create(ctx, "account", {"name": "东莞华新仓储有限公司"})
        base = {"practice_area": "LITIGATION", "responsible_lawyer": firm["id"]["chen"]}
        records.create(ctx, "matter", {**base, "title": "南粤物流劳动争议", "client": nanyue["id"]})
        lease = records.create(
            ctx,
            "matter",
            {**base, "title": "华新仓储诉南粤物流", "client": huaxin["id"],
             "opposing_party": "广东省东莞南粤物流有限公司"},
        )  # fmt: skip
    start = threading.Barrier(2)

    def check_lease() -> str:
        start.wait()
        with records.transaction(system, Source.SYSTEM) as ctx:
            return str(records.create(ctx, "conflict_check", {"matter": lease["id"]})["id"])

    with ThreadPoolExecutor(2) as pool:
        checked = [pool.submit(check_lease) for _ in range(2)]
        ids = {future.result() for future in checked}

    with records.db.read() as conn:
        results = {
            c["id"]: c["result"]
            for c in records.list(
                conn, "conflict_check", filter={"matter_id": {"eq": lease["id"]}}, actor=system
            ).records
        }
        stored = records.require(conn, "matter", lease["id"], actor=system)
    assert results == dict.fromkeys(ids, "RELATIVE")
    assert stored["conflict_status"] == "RELATIVE"


def test_a_waiver_or_check_of_a_matter_that_does_not_exist_is_refused_at_the_matter(
    qiao_runtime: Runtime, firm: dict[str, Any]
) -> None:
    records, system = qiao_runtime.records, Actor.system()
    missing = "0190a0d2-0000-7000-8000-000000000000"
    waiver = {"matter": missing, "consent_signed_on": "2026-03-02", "consenting_parties": "某电子"}
    for entity, values in (("conflict_waiver", waiver), ("conflict_check", {"matter": missing})):
        with (
            pytest.raises(BadUserInput, match=f"no matter with id {missing}") as refused,
            records.transaction(system, Source.SYSTEM) as ctx,
        ):
            records.create(ctx, entity, values)
        assert refused.value.field == "matter"


def _numbers(client: GraphQLClient, query: str) -> set[str]:
    return {e["node"]["matterNumber"] for e in client.data(query)["matters"]["edges"]}


# -- Deadlines and reminders --------------------------------------------------------------

DEADLINE_FIELDS = "id dueOn rolledFrom days recordedOn"
REMINDERS = (
    '{ notifications(filter: {kind: {eq: "deadline_reminder"}}) '
    "{ edges { node { title createdAt } } } }"
)


def _open_matter(client: GraphQLClient, firm: dict[str, Any], number: str, **values: Any) -> str:
    account = create(client, "account", {"name": f"{number}委托人有限公司"})["id"]
    made = matter(client, number, account, responsibleLawyerId=firm["id"]["he"], **values)
    return str(made["id"])


def _reminders(client: GraphQLClient) -> list[tuple[str, str]]:
    edges = client.data(REMINDERS)["notifications"]["edges"]
    shanghai = dt.timezone(dt.timedelta(hours=8))
    return sorted(
        (
            dt.datetime.fromisoformat(e["node"]["createdAt"])
            .astimezone(shanghai)
            .strftime("%m-%d %H:%M"),
            e["node"]["title"],
        )
        for e in edges
    )


def test_an_appeal_deadline_rolls_past_days_off_and_reminds_at_the_offsets_ahead(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    firm: dict[str, Any],
    qiao_clock: TestClock,
    qiao_worker: Worker,
) -> None:
    he = client_for("he")
    matter_id = _open_matter(qiao_client, firm, "PC-2026-LT-101")
    # A ruling served on Wednesday 4 March: 10 days from the next day end on Saturday 14
    # March, a day off, so the deadline is Monday 16 March.
    ruling = create(
        he, "deadline",
        {"matterId": matter_id, "title": "不服管辖裁定上诉", "kind": "APPEAL_RULING",
         "eventDate": "2026-03-04", "responsibleId": firm["id"]["he"]},
        DEADLINE_FIELDS,
    )  # fmt: skip
    assert {k: ruling[k] for k in ("dueOn", "rolledFrom", "days", "recordedOn")} == {
        "dueOn": "2026-03-16", "rolledFrom": "2026-03-14", "days": 10, "recordedOn": "2026-03-02"
    }  # fmt: skip
    # A judgment served the same day: 15 days end on Thursday 19 March, a working day.
    judgment = create(
        he, "deadline",
        {"matterId": matter_id, "title": "不服一审判决上诉", "kind": "APPEAL_JUDGMENT",
         "eventDate": "2026-03-04", "responsibleId": firm["id"]["he"]},
        DEADLINE_FIELDS,
    )  # fmt: skip
    assert (judgment["dueOn"], judgment["rolledFrom"]) == ("2026-03-19", None)
    # A rule's days are the law's.
    wrong = he.errors(
        "mutation($input: DeadlineCreateInput!) { createDeadline(input: $input) { id } }",
        {
            "input": {
                "matterId": matter_id,
                "title": "x",
                "kind": "APPEAL_JUDGMENT",
                "eventDate": "2026-03-04",
                "days": 20,
            }
        },
    )
    assert wrong[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "days"}

    # Recorded 14 and 17 days ahead: no 30-day reminder for either. The judgment is met on
    # 17 March, so its 1-day reminder never comes.
    for day in range(2, 20):
        qiao_clock.set(dt.datetime(2026, 3, day, 1, 30, tzinfo=dt.UTC))
        drain(qiao_worker)
        if day == 17:
            update(he, "deadline", judgment["id"], {"satisfied": True, "satisfiedOn": "2026-03-17"})
    assert _reminders(qiao_client) == [
        ("03-02 09:30", "期限提醒（还有14日）：不服管辖裁定上诉"),
        ("03-05 09:30", "期限提醒（还有14日）：不服一审判决上诉"),
        ("03-09 09:30", "期限提醒（还有7日）：不服管辖裁定上诉"),
        ("03-12 09:30", "期限提醒（还有7日）：不服一审判决上诉"),
        ("03-13 09:30", "期限提醒（还有3日）：不服管辖裁定上诉"),
        ("03-15 09:30", "期限提醒（还有1日）：不服管辖裁定上诉"),
        ("03-16 09:30", "期限提醒（还有3日）：不服一审判决上诉"),
    ]
    # Never dropped: a deadline is closed by meeting it.
    errors = qiao_client.errors(
        "mutation($id: ID!) { deleteDeadline(id: $id) }", {"id": ruling["id"]}
    )
    assert errors[0]["extensions"]["code"] == "CONFLICT" and "已完成" in errors[0]["message"]


# -- Bankruptcy ---------------------------------------------------------------------------


def test_a_bankruptcy_timeline_is_held_to_the_windows_of_the_law(
    qiao_client: GraphQLClient, firm: dict[str, Any], qiao_clock: TestClock
) -> None:
    admin = qiao_client
    matter_id = _open_matter(
        admin, firm, "PC-2026-BK-201", practiceArea="BANKRUPTCY", acceptedOn="2026-06-22",
        announcedOn="2026-06-30",
    )  # fmt: skip

    def refused_with(values: dict[str, Any], field: str) -> str:
        error = refused(admin, "matter", matter_id, values)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
        return str(error["message"])

    # art. 14: known creditors within 25 days of acceptance (22 June -> 17 July).
    assert "第14条" in refused_with({"creditorsNotifiedOn": "2026-07-18"}, "creditorsNotifiedOn")
    update(admin, "matter", matter_id, {"creditorsNotifiedOn": "2026-07-17"})
    # art. 45: the claim period from the announcement, 30 days to 3 months.
    message = refused_with({"claimsDeadline": "2026-07-29"}, "claimsDeadline")
    assert "第45条" in message and "2026-07-30 至 2026-09-30" in message
    assert "2026-07-30 至 2026-09-30" in refused_with(
        {"claimsDeadline": "2026-10-01"}, "claimsDeadline"
    )
    update(admin, "matter", matter_id, {"claimsDeadline": "2026-09-30"})
    # art. 62: the first meeting within 15 days after the period ends.
    message = refused_with({"firstMeetingOn": "2026-10-16"}, "firstMeetingOn")
    assert "第62条" in message and "2026-10-01 至 2026-10-15" in message
    assert "第62条" in refused_with({"firstMeetingOn": "2026-09-30"}, "firstMeetingOn")
    update(admin, "matter", matter_id, {"firstMeetingOn": "2026-10-15"})
    # art. 63: notice at least 15 days before the meeting.
    assert "不晚于 2026-09-30" in refused_with({"meetingNoticeOn": "2026-10-01"}, "meetingNoticeOn")
    # Moving an anchor re-checks what depends on it.
    assert "第62条" in refused_with({"claimsDeadline": "2026-09-15"}, "firstMeetingOn")
    done = update(
        admin, "matter", matter_id, {"meetingNoticeOn": "2026-09-30"},
        "claimsDeadline firstMeetingOn meetingNoticeOn daysToFirstMeeting",
    )  # fmt: skip
    # The countdown to the creditors' meeting follows the clock (2 March -> 15 October).
    assert done["daysToFirstMeeting"] == 227
    qiao_clock.set(dt.datetime(2026, 10, 5, 1, 0, tzinfo=dt.UTC))
    countdown = admin.data(
        "query($id: ID!) { matter(id: $id) { daysToFirstMeeting } }", {"id": matter_id}
    )
    assert countdown == {"matter": {"daysToFirstMeeting": 10}}


# -- Practice-area flows ------------------------------------------------------------------


def test_family_matters_book_counselling_and_ip_matters_search(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    firm: dict[str, Any],
    qiao_worker: Worker,
) -> None:
    he = client_for("he")
    family = _open_matter(qiao_client, firm, "PC-2026-FM-301", practiceArea="FAMILY")
    ip = _open_matter(qiao_client, firm, "PC-2026-IP-302", practiceArea="IP")
    drain(qiao_worker)
    sessions = he.data(
        "query($id: ID!) { matter(id: $id) { counsellingSessions { edges { node { status } } } } }",
        {"id": family},
    )
    assert sessions["matter"]["counsellingSessions"]["edges"] == [{"node": {"status": "TO_BOOK"}}]
    searches = he.data(
        "query($id: ID!) "
        "{ matter(id: $id) { deadlines { edges { node { title eventDate dueOn } } } } }",
        {"id": ip},
    )["matter"]["deadlines"]["edges"]
    # Recorded Monday 2 March, due 7 days later.
    assert searches == [
        {
            "node": {
                "title": "完成专利数据库在先技术检索或商标近似检索",
                "eventDate": "2026-03-02",
                "dueOn": "2026-03-09",
            }
        }
    ]
    told = {n["kind"] for n in he.nodes("{ myNotifications { edges { node { kind } } } }")}
    assert {"counselling_to_book", "ip_search"} <= told
    # Each new matter was checked for conflicts as soon as it was recorded.
    checked = he.data(
        "{ matters { edges { node { conflictStatus conflictChecks { totalCount } } } } }"
    )
    assert [e["node"] for e in checked["matters"]["edges"]] == [
        {"conflictStatus": "CLEAR", "conflictChecks": {"totalCount": 1}}
    ] * 2
    # A party added during intake calls for a new check, which runs by itself.
    create(
        he,
        "matter_party",
        {"matterId": family, "name": "赵某某", "partyRole": "THIRD_PARTY", "kind": "PERSON"},
    )
    status = "query($id: ID!) { matter(id: $id) { conflictStatus conflictChecks { totalCount } } }"
    assert he.data(status, {"id": family})["matter"]["conflictStatus"] == "NOT_CHECKED"
    drain(qiao_worker)
    assert he.data(status, {"id": family}) == {
        "matter": {"conflictStatus": "CLEAR", "conflictChecks": {"totalCount": 2}}
    }


# -- Time and billing ---------------------------------------------------------------------


def test_time_is_billed_in_tenths_rounded_up_at_the_rate_on_the_matter(
    qiao_client: GraphQLClient, client_for: Callable[[str], GraphQLClient], firm: dict[str, Any]
) -> None:
    admin, ids = qiao_client, firm["id"]
    he, finance = client_for("he"), client_for("liang")
    matter_id = _open_matter(admin, firm, "PC-2026-CO-401", practiceArea="CORPORATE")
    create(
        admin,
        "client_engagement",
        {
            "letterNumber": "WT-401",
            "matterId": matter_id,
            "feeArrangement": "HOURLY",
            "hourlyRate": "1800.00",
        },
    )
    members = admin.data(
        "query($id: ID!) "
        "{ matter(id: $id) { members { edges { node { id user { username } } } } } }",
        {"id": matter_id},
    )["matter"]["members"]["edges"]
    assert [m["node"]["user"]["username"] for m in members] == ["he"]
    update(finance, "matter_member", members[0]["node"]["id"], {"hourlyRate": "2500.00"})
    create(
        admin,
        "matter_member",
        {"matterId": matter_id, "userId": ids["wang"], "memberRole": "ASSOCIATE"},
    )
    wang = client_for("wang")
    fields = "billedHours rate amount"
    entry = {"matterId": matter_id, "description": "起草股权转让协议"}
    # 1.01 h bills 1.1 h at 何静's rate on the matter.
    billed = create(he, "time_entry", {**entry, "workedOn": "2026-03-03", "hours": "1.01"}, fields)
    assert billed == {"billedHours": "1.1", "rate": "2500.00", "amount": "2750.00"}
    # 0.25 h bills 0.3 h; 王磊 has no rate on the matter, so the engagement's applies.
    billed = create(
        wang, "time_entry", {**entry, "workedOn": "2026-03-10", "hours": "0.25"}, fields
    )
    assert billed == {"billedHours": "0.3", "rate": "1800.00", "amount": "540.00"}
    billed = create(he, "time_entry", {**entry, "workedOn": "2026-03-31", "hours": "2.00"}, fields)
    assert billed == {"billedHours": "2.0", "rate": "2500.00", "amount": "5000.00"}
    create(
        he, "time_entry", {**entry, "workedOn": "2026-03-12", "hours": "0.40", "billable": False}
    )
    create(he, "time_entry", {**entry, "workedOn": "2026-04-01", "hours": "3.00"})
    statement = create(
        finance, "billing_statement",
        {"statementNumber": "ZD-2026-03", "matterId": matter_id,
         "periodStart": "2026-03-01", "periodEnd": "2026-03-31"},
        "id totalHours totalAmount",
    )  # fmt: skip
    statement_id = statement.pop("id")
    assert statement == {"totalHours": "3.4", "totalAmount": "8290.00"}
    # Numbers come from the year's sequence when none is given.
    numbered = create(
        finance, "billing_statement",
        {"matterId": matter_id, "periodStart": "2026-04-01", "periodEnd": "2026-04-30"},
        "statementNumber totalAmount",
    )  # fmt: skip
    assert numbered == {"statementNumber": "ZD-2026-0001", "totalAmount": "7500.00"}

    # The statement as a PDF: the firm's name is set once in the template it owns.
    _name_the_firm(admin, "鹏程律师事务所")
    text = _statement_text(finance, statement_id)
    for line in (
        "鹏程律师事务所",
        "律师费账单",
        "账单编号：ZD-2026-03",
        "委托人：PC-2026-CO-401委托人有限公司",
        "案件编号：PC-2026-CO-401",
        "计费期间：2026-03-01 至 2026-03-31",
        "计费工时合计：3.4 小时",
        "律师费合计：人民币 8290.00 元",
        "出具日期：2026-03-02",
    ):
        assert line in text, line
    # Each billable entry of the period, in date order; not the unbillable or April's.
    lines = [line.split() for line in text.splitlines()]
    entries = [line for line in lines if line and line[0].startswith("2026-")]
    assert entries == [
        ["2026-03-03", "何静", "起草股权转让协议", "1.1", "2500.00", "2750.00"],
        ["2026-03-10", "王磊", "起草股权转让协议", "0.3", "1800.00", "540.00"],
        ["2026-03-31", "何静", "起草股权转让协议", "2.0", "2500.00", "5000.00"],
    ]
    # A paralegal reads no statements, so renders none.
    (error,) = client_for("zhao").errors(RENDER, {"id": statement_id})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert finance.data("{ documents { totalCount } }") == {"documents": {"totalCount": 1}}


RENDER = (
    'mutation($id: ID!) { renderDocument(template: "billing_statement", id: $id) '
    "{ filename contentType content } }"
)


def _name_the_firm(admin: GraphQLClient, name: str) -> None:
    """What an administrator does once: the firm's name in the statement template."""
    (template,) = admin.data(
        '{ documentTemplates(filter: {name: {eq: "billing_statement"}}) '
        "{ edges { node { id body } } } }"
    )["documentTemplates"]["edges"]
    body = template["node"]["body"].replace("（本所名称）", name)
    update(admin, "document_template", template["node"]["id"], {"body": body})


def _statement_text(client: GraphQLClient, statement_id: str) -> str:
    """The statement rendered as the caller, and the text read back out of the PDF."""
    doc = client.data(RENDER, {"id": statement_id})["renderDocument"]
    assert (doc["filename"], doc["contentType"]) == ("律师费账单-ZD-2026-03.pdf", "application/pdf")
    pdf = PdfReader(io.BytesIO(base64.b64decode(doc["content"])))
    fonts = {str(f["/BaseFont"]) for p in pdf.pages for f in p["/Resources"]["/Font"].values()}
    assert any("WenQuanYi" in f or "CJK" in f for f in fonts)  # embedded, not assumed
    return "\n".join(page.extract_text() for page in pdf.pages)


def test_an_appeal_deadline_across_national_day_ends_on_the_first_working_day_after(
    qiao_client: GraphQLClient,
    client_for: Callable[[str], GraphQLClient],
    firm: dict[str, Any],
    qiao_clock: TestClock,
    qiao_worker: Worker,
) -> None:
    qiao_clock.set(dt.datetime(2026, 9, 22, 1, 0, tzinfo=dt.UTC))  # Tuesday 09:00 in Beijing
    he = client_for("he")
    matter_id = _open_matter(qiao_client, firm, "PC-2026-LT-501")
    # A judgment served on Monday 21 September: 15 days end on Tuesday 6 October, inside the
    # National Day holiday (1-7 October 2026), so the appeal is due Thursday 8 October.
    judgment = create(
        he, "deadline",
        {"matterId": matter_id, "title": "不服一审判决上诉", "kind": "APPEAL_JUDGMENT",
         "eventDate": "2026-09-21", "responsibleId": firm["id"]["he"]},
        DEADLINE_FIELDS,
    )  # fmt: skip
    assert (judgment["dueOn"], judgment["rolledFrom"]) == ("2026-10-08", "2026-10-06")
    # A ruling served on Friday 25 September (中秋节): 10 days end on Monday 5 October, also a
    # holiday; Saturday 10 October is a make-up working day but comes later.
    ruling = create(
        he, "deadline",
        {"matterId": matter_id, "title": "不服管辖裁定上诉", "kind": "APPEAL_RULING",
         "eventDate": "2026-09-25", "responsibleId": firm["id"]["he"]},
        DEADLINE_FIELDS,
    )  # fmt: skip
    assert (ruling["dueOn"], ruling["rolledFrom"]) == ("2026-10-08", "2026-10-05")
    # An unknown calendar is refused on its field.
    errors = he.errors(
        "mutation($input: DeadlineCreateInput!) { createDeadline(input: $input) { id } }",
        {"input": {"matterId": matter_id, "title": "x", "kind": "APPEAL_RULING",
                   "eventDate": "2026-09-25", "calendar": "mars"}},
    )  # fmt: skip
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "calendar"}
    # Recorded 16 days ahead: reminders at 14, 7, 3 and 1 days, holidays or not.
    for day in [*range(22, 31), *range(1, 9)]:
        month = 9 if day >= 22 else 10
        qiao_clock.set(dt.datetime(2026, month, day, 1, 30, tzinfo=dt.UTC))
        drain(qiao_worker)
    judged = [r for r in _reminders(qiao_client) if r[1].endswith("不服一审判决上诉")]
    assert judged == [
        ("09-24 09:30", "期限提醒（还有14日）：不服一审判决上诉"),
        ("10-01 09:30", "期限提醒（还有7日）：不服一审判决上诉"),
        ("10-05 09:30", "期限提醒（还有3日）：不服一审判决上诉"),
        ("10-07 09:30", "期限提醒（还有1日）：不服一审判决上诉"),
    ]

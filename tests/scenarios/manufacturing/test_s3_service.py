"""S3: a scanned machine's ticket is numbered and dispatched in seconds, escalated after two
working hours, charged by its warranty, called back after completion; maintenance plans open
exactly one 保养 ticket per due date.

The template's data does it all: tickets are numbered GD-2026-000001 on (numbering);
新工单派给区域工程师 picks the region's field engineer with the fewest tickets and tells them
(in the app and on a WeCom-like channel); 两小时未接单升级主管 hands a ticket nobody started
within two working hours of the ``cn`` calendar to the region's service supervisor; labour is
free while the device is under warranty on the day the fault was reported; 完工回访 creates
the callback task and pushes a maintenance suggestion to the customer's owner; the recurring
plan maintenance_plan_tickets opens each 保养 ticket ahead of its due date.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from tests.scenarios.conftest import RecordingChannel

from .conftest import People, Replay, Story, create, read, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
OPENED = dt.datetime(2026, 6, 1, 10, 45, tzinfo=SHANGHAI)  # a Monday morning
TICKET = """id number status owner { username } escalatedAt reportedOn inWarranty labourCharge
  totalCharge completedOn firstTimeFix
  device { serialNumber saleOrderNumber soldOn serviceTickets { totalCount } }
  followUpTasks { edges { node { subject kind owner { username } account { name } } } }"""


@pytest.fixture
def site(people: People, qiao_client: GraphQLClient) -> dict[str, Any]:
    """华东 service staff, a customer of 苏州锐达 and two of its machines."""
    people.team("恒锐华东大区", "华东")
    people.team("华东服务站", "华东", kind="TEAM", parent="恒锐华东大区")
    people.team("华南服务站", "华南")
    people.east_manager()
    people.user("sun", "孙国强", "service_supervisor", team="华东服务站")
    people.user("zhou", "周建华", "field_engineer", team="华东服务站", manager="sun")
    people.user("wu", "吴磊", "field_engineer", team="华东服务站", manager="sun")
    people.user("liang", "梁志伟", "field_engineer", team="华南服务站")
    admin = qiao_client
    model = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})
    dealer = create(admin, "account", {"name": "苏州锐达数控设备有限公司", "kind": "DEALER"})
    customer = create(
        admin, "account", {"name": "昆山华通模具有限公司", "ownerId": people.ids["xu"]}
    )
    devices = {}
    for serial, installed, warranty in (
        ("HR2605-0520", "2026-05-20", "2027-05-19"),
        ("HR2409-0321", "2024-09-12", "2025-09-11"),
    ):
        values = {
            "serialNumber": serial,
            "modelId": model["id"],
            "dealerId": dealer["id"],
            "customerId": customer["id"],
            "region": "华东",
            "saleOrderNumber": f"SO-{serial}",
            "soldOn": installed,
            "installedOn": installed,
            "warrantyEndsOn": warranty,
        }
        devices[serial] = create(admin, "device", values)["id"]
    return {"devices": devices, "customer": customer["id"], "dealer": dealer["id"]}


def scan(client: GraphQLClient, site: dict[str, Any], serial: str, subject: str) -> str:
    """What the device's repair-request page writes: a ticket waiting for dispatch."""
    values = {
        "subject": subject,
        "ticketType": "REPAIR",
        "status": "TO_DISPATCH",
        "deviceId": site["devices"][serial],
        "serialNumber": serial,
        "customerId": site["customer"],
        "dealerId": site["dealer"],
        "region": "华东",
        "contactName": "陆工",
        "contactPhone": "13757436621",
    }
    return create(client, "service_ticket", values)["id"]


def test_tickets_are_dispatched_escalated_charged_and_called_back(
    story: Story,
    wecom: RecordingChannel,
    site: dict[str, Any],
) -> None:
    admin = story.admin
    story.replay.set(OPENED)
    spindle = scan(admin, site, "HR2605-0520", "主轴异响，加工面有振纹")
    old = scan(admin, site, "HR2409-0321", "刀库换刀卡刀")
    story.replay.advance("5s")
    drain(story.worker)
    numbers = [read(admin, "service_ticket", t, "number")["number"] for t in (spindle, old)]
    assert numbers == ["GD-2026-000001", "GD-2026-000002"]
    owners = {t: read(admin, "service_ticket", t, "owner { username }") for t in (spindle, old)}
    # The two 华东 engineers get one each (fewest tickets first); 华南's gets none.
    assert sorted(o["owner"]["username"] for o in owners.values()) == ["wu", "zhou"]
    engineer = {t: o["owner"]["username"] for t, o in owners.items()}
    for username in engineer.values():
        (note,) = story.client_for(username).nodes(
            "{ myNotifications { edges { node { title body kind } } } }"
        )
        assert note["kind"] == "service_ticket_assigned"
        assert (story.people.ids[username], note["title"]) in wecom.pushed
    first = story.client_for(engineer[spindle])
    assert first.nodes("{ myNotifications { edges { node { body } } } }")[0]["body"] == (
        "客户 昆山华通模具有限公司，设备出厂编号 HR2605-0520，类型 维修"
    )

    # The spindle is started within the hour; the other ticket waits. Two working hours from
    # 10:45 end at 13:45: the lunch break (12:00-13:00) does not count.
    story.replay.advance("40m")
    update(first, "service_ticket", spindle, {"status": "IN_PROGRESS"})
    story.replay.set(OPENED + dt.timedelta(hours=2))
    drain(story.worker)
    assert read(admin, "service_ticket", old, "escalatedAt")["escalatedAt"] is None
    story.replay.set(dt.datetime(2026, 6, 1, 13, 45, tzinfo=SHANGHAI))
    drain(story.worker)
    escalated = read(admin, "service_ticket", old, TICKET)
    assert escalated["owner"] == {"username": "sun"}
    assert dt.datetime.fromisoformat(escalated["escalatedAt"]) == dt.datetime(
        2026, 6, 1, 13, 45, tzinfo=SHANGHAI
    )
    assert read(admin, "service_ticket", spindle, "escalatedAt owner { username }") == {
        "escalatedAt": None,
        "owner": {"username": engineer[spindle]},
    }
    (alert,) = story.client_for("sun").nodes(
        "{ myNotifications { edges { node { title kind } } } }"
    )
    assert alert == {"title": "工单超时未接单，已升级给你：刀库换刀卡刀", "kind": "escalation"}

    # Work is recorded; acceptance asks for the resolution.
    work = {"labourHours": "3.0", "partsAmount": "2680.00"}
    update(first, "service_ticket", spindle, work)
    (refused,) = first.errors(
        "mutation($id: ID!) { updateServiceTicket(id: $id, input: {status: TO_ACCEPT}) { id } }",
        {"id": spindle},
    )
    assert refused["extensions"]["field"] == "resolution"
    update(first, "service_ticket", spindle, {"status": "TO_ACCEPT", "resolution": "更换主轴轴承"})
    update(first, "service_ticket", spindle, {"status": "COMPLETED"})
    update(
        admin, "service_ticket", old, {"ownerId": story.people.ids["wu"], "status": "IN_PROGRESS"}
    )
    update(admin, "service_ticket", old, {**work, "visits": 2})
    drain(story.worker)

    done = read(admin, "service_ticket", spindle, TICKET)
    assert {k: done[k] for k in ("status", "reportedOn", "inWarranty", "completedOn")} == {
        "status": "COMPLETED",
        "reportedOn": "2026-06-01",
        "inWarranty": True,
        "completedOn": "2026-06-01",
    }
    # Under warranty labour is free; parts are charged.
    assert (done["labourCharge"], done["totalCharge"], done["firstTimeFix"]) == (
        "0.00",
        "2680.00",
        True,
    )
    assert done["device"] == {
        "serialNumber": "HR2605-0520",
        "saleOrderNumber": "SO-HR2605-0520",
        "soldOn": "2026-05-20",
        "serviceTickets": {"totalCount": 1},
    }
    assert [e["node"] for e in done["followUpTasks"]["edges"]] == [
        {
            "subject": "回访：主轴异响，加工面有振纹",
            "kind": "CALLBACK",
            "owner": {"username": engineer[spindle]},
            "account": {"name": "昆山华通模具有限公司"},
        }
    ]
    (suggestion,) = story.client_for("xu").nodes(
        "{ myNotifications { edges { node { title kind } } } }"
    )
    assert suggestion == {
        "title": "保养建议：昆山华通模具有限公司 的 立式加工中心 HR-VMC850",
        "kind": "maintenance_suggestion",
    }
    # Out of warranty since 2025-09-11: three hours at 300.00.
    charged = read(admin, "service_ticket", old, "inWarranty labourCharge totalCharge")
    assert charged == {"inWarranty": False, "labourCharge": "900.00", "totalCharge": "3580.00"}


def maintenance_tickets(client: GraphQLClient) -> list[dict[str, Any]]:
    found = client.data(
        """{ serviceTickets(filter: {ticketType: {eq: MAINTENANCE}}, orderBy: [{field: DUE_ON}])
           { edges { node { id number subject status dueOn serialNumber onTime
             owner { username } device { serialNumber } customer { name } } } } }"""
    )
    return [e["node"] for e in found["serviceTickets"]["edges"]]


def test_a_maintenance_plan_opens_one_ticket_per_due_date(
    qiao_client: GraphQLClient,
    replay: Replay,
    qiao_worker: Worker,
    site: dict[str, Any],
) -> None:
    admin = qiao_client
    replay.set(OPENED)
    plan = {
        "name": "HR2605-0520 季度保养",
        "deviceId": site["devices"]["HR2605-0520"],
        "interval": 90,
        "intervalUnit": "DAY",
        "horizonDays": 7,
    }
    plan_id = create(admin, "maintenance_plan", plan)["id"]
    drain(qiao_worker)  # 保养计划起算: counted from the install date
    # Installed 2026-05-20: due 90 days later, opened 7 days ahead (at midnight, 08-11).
    assert read(admin, "maintenance_plan", plan_id, "startsOn anchorOn nextDueOn") == {
        "startsOn": "2026-05-20",
        "anchorOn": "2026-05-20",
        "nextDueOn": "2026-08-18",
    }

    replay.set(dt.datetime(2026, 8, 10, 23, 59, tzinfo=SHANGHAI))
    drain(qiao_worker)
    assert maintenance_tickets(admin) == []
    replay.advance("1m")
    drain(qiao_worker)
    for _ in range(3):  # the days go by and the jobs run again: no second ticket
        replay.advance("1d")
        drain(qiao_worker)
    (first,) = maintenance_tickets(admin)
    assert {k: first[k] for k in ("subject", "status", "dueOn", "serialNumber")} == {
        "subject": "保养：HR2605-0520 季度保养",
        "status": "TO_DISPATCH",
        "dueOn": "2026-08-18",
        "serialNumber": "HR2605-0520",
    }
    assert first["number"] == "GD-2026-000001"
    assert first["owner"]["username"] in {"zhou", "wu"}
    assert (first["device"], first["customer"]) == (
        {"serialNumber": "HR2605-0520"},
        {"name": "昆山华通模具有限公司"},
    )
    occurrences = admin.data(
        '{ planOccurrences(filter: {plan: {eq: "maintenance_plan_tickets"}}) '
        "{ edges { node { recordId dueOn createdId } } } }"
    )["planOccurrences"]["edges"]
    assert [e["node"] for e in occurrences] == [
        {"recordId": plan_id, "dueOn": "2026-08-18", "createdId": first["id"]}
    ]

    # Done two days late: the next one counts from the completion.
    replay.set(dt.datetime(2026, 8, 20, 15, 0, tzinfo=SHANGHAI))
    for step in (
        {"status": "IN_PROGRESS"},
        {"status": "TO_ACCEPT", "resolution": "更换导轨润滑油"},
        {"status": "COMPLETED"},
    ):
        update(admin, "service_ticket", first["id"], step)
    assert read(admin, "maintenance_plan", plan_id, "lastDoneOn nextDueOn") == {
        "lastDoneOn": "2026-08-20",
        "nextDueOn": "2026-11-18",
    }
    replay.set(dt.datetime(2026, 11, 10, 23, 0, tzinfo=SHANGHAI))
    drain(qiao_worker)
    assert len(maintenance_tickets(admin)) == 1
    replay.advance("1h")
    drain(qiao_worker)
    done, due = maintenance_tickets(admin)
    assert (done["dueOn"], done["onTime"]) == ("2026-08-18", False)
    assert (due["dueOn"], due["status"], due["number"]) == (
        "2026-11-18",
        "TO_DISPATCH",
        "GD-2026-000002",
    )


CODE = """mutation($id: ID!, $base: String!) {
  intakeCode(form: "device_repair", entity: "device", id: $id, baseUrl: $base) { url svg } }"""
LABEL = """mutation($id: ID!, $base: String!) {
  renderDocument(template: "device_label", id: $id, baseUrl: $base) { filename content } }"""
REPORT = {
    "subject": "液压站压力报警",
    "description": "开机后液压站压力报警，无法换刀",
    "contact_name": "陆工",
    "contact_phone": "13757436621",
}


def test_a_devices_qr_code_opens_its_repair_page_and_the_request_becomes_a_ticket(
    qiao_client: GraphQLClient,
    qiao_server: LiveServer,
    replay: Replay,
    qiao_worker: Worker,
    site: dict[str, Any],
) -> None:
    admin = qiao_client
    replay.set(OPENED)
    device, other = site["devices"]["HR2605-0520"], site["devices"]["HR2409-0321"]
    ref = {"id": device, "base": qiao_server.url}
    code = admin.data(CODE, ref)["intakeCode"]
    assert code["url"].startswith(f"{qiao_server.url}/intake/device_repair?r={device}&s=")
    assert "<svg" in code["svg"]
    label = admin.data(LABEL, ref)["renderDocument"]
    assert label["filename"] == "报修标签-HR2605-0520.html"
    assert "出厂编号：HR2605-0520" in label["content"] and "<svg" in label["content"]

    url = code["url"]
    tampered = url[:-1] + ("0" if url[-1] != "0" else "1")
    with httpx.Client(timeout=30.0) as phone:  # no account: the customer scanned the label
        page = phone.get(url)
        assert page.status_code == 200
        assert "设备报修" in page.text and "HR2605-0520" in page.text
        assert phone.get(f"{qiao_server.url}/intake/device_repair").status_code == 403
        assert phone.get(tampered).status_code == 403
        assert phone.post(tampered, json=REPORT).status_code == 403
        # The signature of one machine does not open another's page.
        assert phone.post(url.replace(device, other), json=REPORT).status_code == 403
        done = phone.post(url, json=REPORT)
        assert done.status_code == 201 and done.json()["status"] == "received"
    replay.advance("5s")
    drain(qiao_worker)

    fields = """number status ticketType subject serialNumber region contactPhone reportedOn
      device { serialNumber } customer { name } dealer { name } owner { username }"""
    ticket = read(admin, "service_ticket", done.json()["id"], fields)
    owner = ticket.pop("owner")
    assert ticket == {
        "number": "GD-2026-000001",
        "status": "TO_DISPATCH",
        "ticketType": "REPAIR",
        "subject": "液压站压力报警",
        "serialNumber": "HR2605-0520",
        "region": "华东",
        "contactPhone": "+8613757436621",
        "reportedOn": "2026-06-01",
        "device": {"serialNumber": "HR2605-0520"},
        "customer": {"name": "昆山华通模具有限公司"},
        "dealer": {"name": "苏州锐达数控设备有限公司"},
    }
    assert owner["username"] in {"zhou", "wu"}  # dispatched like any other ticket

    # A new secret withdraws every printed code of the form; a code made now opens again.
    (form,) = admin.data(
        '{ intakeForms(filter: {name: {eq: "device_repair"}}) { edges { node { id } } } }'
    )["intakeForms"]["edges"]
    update(admin, "intake_form", form["node"]["id"], {"secret": "5e" * 32})
    with httpx.Client(timeout=30.0) as phone:
        assert phone.get(url).status_code == 403
        assert phone.post(url, json=REPORT).status_code == 403
        assert phone.get(admin.data(CODE, ref)["intakeCode"]["url"]).status_code == 200
    tickets = admin.data("{ serviceTickets { totalCount } }")["serviceTickets"]["totalCount"]
    assert tickets == 1

"""S5 as far as the template owns it: a signed agreement's stamping (合同用印) decided in
DingTalk, a field engineer's ticket worked offline in a factory and synced later, dealer
orders from a WeChat mini-program, a device's drawing in the object store, and SAP's
business partners pulled into accounts.

The DingTalk side is the local fake speaking DingTalk's published protocol
(tests/plugins/connectors/fakes/dingtalk.py): the connector starts an approval instance
for the step, and DingTalk's callback that it was agreed approves the request in Qiao as
the channel manager the step waits for. Offline work goes through ``syncPull`` and
``syncPush`` (docs/sync.md) under the engineer's own rules and the ticket pipeline. The
mini-program is a client of the GraphQL API signed in as a dealer-portal user; the object
store is the local-disk kind; SAP is the local fake of its OData API (fakes/sap.py).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from fpdf import FPDF
from pypdf import PdfReader

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker
from tests.plugins.connectors.deployment import add_connector, add_sap
from tests.plugins.connectors.dingtalk_approvals import connect, finish
from tests.plugins.connectors.fakes.dingtalk import FakeDingTalk
from tests.plugins.connectors.fakes.sap import FakeSap

from .conftest import Replay, Story, create, read

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 5, 18, 10, 30, tzinfo=SHANGHAI)


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "connectors", "manufacturing_dealers")


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    """No recording channel: the connectors plugin brings the real WeCom and DingTalk ones."""
    return ()


@pytest.fixture
def dingtalk(qiao_clock: TestClock) -> Iterator[FakeDingTalk]:
    with FakeDingTalk(lambda: qiao_clock().timestamp()).serve() as fake:
        yield fake


@pytest.fixture
def sap(qiao_clock: TestClock) -> Iterator[FakeSap]:
    with FakeSap(lambda: qiao_clock().timestamp()).serve() as fake:
        yield fake


def test_an_agreements_stamping_is_decided_in_dingtalk(
    story: Story,
    qiao_server: LiveServer,
    dingtalk: FakeDingTalk,
) -> None:
    story.replay.set(NOW)
    story.people.team("恒锐华东大区", "华东")
    story.people.channel_manager(dingtalkUserid="zhaoqm")
    story.people.east_manager(dingtalkUserid="xuht")
    stamping_form = {"协议编号": "agreement_number", "协议名称": "name"}
    connect(story.admin, dingtalk, "contract_stamping", "zhao", stamping_form)
    xu = story.client_for("xu")
    dealer = create(xu, "account", {"name": "苏州锐达", "kind": "DEALER"})["id"]
    agreement = {"agreementNumber": "SA-2026-017", "name": "苏州锐达 2026 年度销售协议"}
    agreement |= {"dealerId": dealer, "startsOn": "2026-06-01", "endsOn": "2026-12-31"}
    agreement_id = create(xu, "sales_agreement", agreement)["id"]
    xu.data(
        'mutation($id: ID!) { submitForApproval(entity: "SalesAgreement", id: $id, '
        'process: "contract_stamping") { id } }',
        {"id": agreement_id},
    )
    drain(story.worker)
    [(instance, started)] = list(dingtalk.instances.items())
    assert started["request"]["processCode"] == "PROC-SEAL-01"
    assert started["request"]["originatorUserId"] == "xuht"
    # By name: PostgreSQL keeps the settings' JSON with its keys in its own order.
    form = sorted(started["request"]["formComponentValues"], key=lambda c: c["name"])
    assert form == [
        {"name": "协议名称", "value": "苏州锐达 2026 年度销售协议"},
        {"name": "协议编号", "value": "SA-2026-017"},
    ]
    assert read(xu, "sales_agreement", agreement_id, "stampedOn") == {"stampedOn": None}

    # Agreed in DingTalk: its callback decides the step in Qiao, as the channel manager.
    dingtalk.finish(instance, "COMPLETED", "agree")
    finish(qiao_server, instance)  # DingTalk's callback, signed and encrypted
    drain(story.worker)
    assert read(xu, "sales_agreement", agreement_id, "stampedOn") == {"stampedOn": "2026-05-18"}
    decisions = story.admin.nodes(
        "{ approvalDecisions { edges { node { decision comment approver { username } } } } }"
    )
    assert decisions == [
        {
            "decision": "APPROVED",
            "comment": f"钉钉审批 {instance}：同意",
            "approver": {"username": "zhao"},
        }
    ]


PULL = """query($cursor: String) { syncPull(entities: ["ServiceTicket"], cursor: $cursor) {
  upserts { entity id version fields } tombstones { entity id } cursor hasMore resetRequired } }"""

PUSH = """mutation($edits: [SyncEdit!]!) { syncPush(edits: $edits) {
  clientMutationId status id version record { fields } error { code field } } }"""


def test_a_ticket_worked_offline_syncs_through_the_pipeline(story: Story) -> None:
    story.replay.set(dt.datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI))
    story.people.team("华东服务站", "华东")
    story.people.user("wu", "吴磊", "field_engineer", team="华东服务站")
    ticket = {"subject": "刀库换刀卡刀", "status": "TO_DISPATCH", "region": "华东"}
    ticket_id = create(story.admin, "service_ticket", ticket)["id"]
    drain(story.worker)  # dispatched to wu, the region's only engineer
    wu = story.client_for("wu")
    pulled = wu.data(PULL)["syncPull"]
    (copy,) = pulled["upserts"]
    assert (copy["id"], copy["fields"]["status"], copy["fields"]["subject"]) == (
        ticket_id,
        "TO_DISPATCH",
        "刀库换刀卡刀",
    )

    # In the factory, without a signal: started, then finished, the first try without
    # the resolution acceptance asks for. Pushed when back at 15:00.
    story.replay.set(dt.datetime(2026, 6, 1, 15, 0, tzinfo=SHANGHAI))
    version = copy["version"]
    edits = [
        {"clientMutationId": "wu-pad-1", "entity": "ServiceTicket", "operation": "UPDATE",
         "id": ticket_id, "expectedVersion": version, "values": {"status": "IN_PROGRESS"}},
    ]  # fmt: skip
    (started,) = wu.data(PUSH, {"edits": edits})["syncPush"]
    assert started["status"] == "APPLIED"
    finished = [
        {"clientMutationId": "wu-pad-2", "entity": "ServiceTicket", "operation": "UPDATE",
         "id": ticket_id, "expectedVersion": started["version"],
         "values": {"status": "TO_ACCEPT"}},
        {"clientMutationId": "wu-pad-3", "entity": "ServiceTicket", "operation": "UPDATE",
         "id": ticket_id, "expectedVersion": started["version"],
         "values": {"status": "TO_ACCEPT", "resolution": "更换刀库定位销", "visits": 1}},
    ]  # fmt: skip
    refused, accepted = wu.data(PUSH, {"edits": finished})["syncPush"]
    assert (refused["status"], refused["error"]) == (
        "REFUSED",
        {"code": "BAD_USER_INPUT", "field": "resolution"},
    )
    assert accepted["status"] == "APPLIED"
    assert accepted["record"]["fields"]["status"] == "TO_ACCEPT"
    # A retry of the same batch (the answer was lost) applies nothing twice.
    again = wu.data(PUSH, {"edits": finished})["syncPush"]
    assert [(a["status"], a["version"]) for a in again] == [
        (refused["status"], refused["version"]),
        (accepted["status"], accepted["version"]),
    ]
    done = read(
        story.admin, "service_ticket", ticket_id, "status resolution startedAt owner { username }"
    )
    assert done["status"] == "TO_ACCEPT" and done["resolution"] == "更换刀库定位销"
    assert done["owner"] == {"username": "wu"}
    assert dt.datetime.fromisoformat(done["startedAt"]) == dt.datetime(
        2026, 6, 1, 15, 0, tzinfo=SHANGHAI
    )
    # The next pull brings the ticket at its new version.
    later = wu.data(PULL, {"cursor": pulled["cursor"]})["syncPull"]
    assert [(u["id"], u["version"]) for u in later["upserts"]] == [(ticket_id, accepted["version"])]


CREATE_LINE = """mutation($input: PurchaseLineCreateInput!) {
  createPurchaseLine(input: $input) { id orderNumber dealer { name } quantity unitPrice amount
    paidAmount lineType } }"""


def test_a_dealers_mini_program_orders_for_its_own_dealer_only(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 6, 3, 9, 15, tzinfo=SHANGHAI))
    story.people.east_manager()
    xu = story.client_for("xu")
    ruida = create(xu, "account", {"name": "苏州锐达", "kind": "DEALER"})["id"]
    jinggong = create(xu, "account", {"name": "无锡精工", "kind": "DEALER"})["id"]
    vmc = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})["id"]
    agreements = {}
    for dealer, number in ((ruida, "SA-2026-017"), (jinggong, "SA-2026-018")):
        values = {"agreementNumber": number, "name": f"{number} 年度销售协议", "dealerId": dealer}
        values |= {"startsOn": "2026-06-01", "endsOn": "2026-12-31"}
        agreements[dealer] = create(xu, "sales_agreement", values)["id"]
    # The mini-program signs in as a portal user of 苏州锐达 and places two orders.
    story.people.user("wx.ruida", "苏州锐达-订货小程序", "dealer_portal", dealerId=ruida)
    shop = story.client_for("wx.ruida")
    order = {"dealerId": ruida, "productId": vmc, "salesAgreementId": agreements[ruida]}
    order |= {"orderedOn": "2026-06-03", "recordedOn": "2026-06-03", "unitPrice": "262400.00"}
    first = shop.data(
        CREATE_LINE,
        {"input": order | {"orderNumber": "WX-0603-01", "quantity": 2, "amount": "524800.00"}},
    )["createPurchaseLine"]
    assert {k: v for k, v in first.items() if k != "id"} == {
        "orderNumber": "WX-0603-01",
        "dealer": {"name": "苏州锐达"},
        "quantity": 2,
        "unitPrice": "262400.00",
        "amount": "524800.00",
        "paidAmount": "0.00",
        "lineType": "SHIPMENT",
    }
    second = {"orderNumber": "WX-0603-02", "quantity": 1, "amount": "262400.00"}
    shop.data(CREATE_LINE, {"input": order | second})
    assert read(shop, "sales_agreement", agreements[ruida], "actualAmount") == {
        "actualAmount": "787200.00"
    }

    # Another dealer's order is refused as if that dealer did not exist (the portal cannot
    # see it), so is an order against another dealer's agreement; a payment the dealer
    # books for itself is refused by its field rules. None of them writes anything.
    theirs = order | {"orderNumber": "WX-0603-03", "quantity": 1, "amount": "262400.00"}
    (other,) = shop.errors(CREATE_LINE, {"input": theirs | {"dealerId": jinggong}})
    missing = str(uuid.uuid4())
    (absent,) = shop.errors(CREATE_LINE, {"input": theirs | {"dealerId": missing}})
    assert other["extensions"] == {"code": "BAD_USER_INPUT", "field": "dealer"}
    assert other["message"].replace(jinggong, "<id>") == absent["message"].replace(missing, "<id>")
    (agreement,) = shop.errors(
        CREATE_LINE, {"input": theirs | {"salesAgreementId": agreements[jinggong]}}
    )
    assert agreement["extensions"] == {"code": "BAD_USER_INPUT", "field": "salesAgreement"}
    (paid,) = shop.errors(CREATE_LINE, {"input": theirs | {"paidAmount": "262400.00"}})
    assert paid["extensions"]["code"] == "FORBIDDEN", paid
    lines = admin.nodes(
        "{ purchaseLines(orderBy: [{field: ORDER_NUMBER}]) "
        "{ edges { node { orderNumber dealer { name } amount } } } }"
    )
    assert lines == [
        {"orderNumber": "WX-0603-01", "dealer": {"name": "苏州锐达"}, "amount": "524800.00"},
        {"orderNumber": "WX-0603-02", "dealer": {"name": "苏州锐达"}, "amount": "262400.00"},
    ]
    assert read(admin, "sales_agreement", agreements[jinggong], "actualAmount") == {
        "actualAmount": "0.00"
    }
    # The mini-program's order list: its own dealer's lines, not those finance books for
    # another dealer.
    booked = {"dealerId": jinggong, "salesAgreementId": agreements[jinggong]}
    create(admin, "purchase_line", theirs | booked | {"orderNumber": "SO-0603-01"})
    assert shop.data("{ purchaseLines { totalCount } }") == {"purchaseLines": {"totalCount": 2}}


def drawing() -> bytes:
    """A one-page PDF drawing, made here so its text can be read back after the round trip."""
    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("Helvetica", size=14)
    pdf.cell(text="HR-VMC850 spindle housing, drawing DWG-850-017 rev B")
    return bytes(pdf.output())


ATTACHMENTS = """query($id: ID!) { recordAttachments(entity: "Device", id: $id) {
  filename contentType size sha256 downloadUrl } }"""


def test_a_devices_drawing_is_kept_in_the_object_store_under_the_devices_rules(
    story: Story,
    qiao_server: LiveServer,
    tmp_path: Path,
) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 6, 2, 14, 0, tzinfo=SHANGHAI))
    add_connector(
        admin,
        name="图纸存储",
        vendor="OBJECTSTORE",
        settings={
            "kind": "local",
            "directory": str(tmp_path / "drawings"),
            "encrypt": True,
            "link_base": qiao_server.url,
        },
    )
    story.people.team("华东服务站", "华东")
    story.people.user("wu", "吴磊", "field_engineer", team="华东服务站")
    ruida = create(admin, "account", {"name": "苏州锐达", "kind": "DEALER"})["id"]
    jinggong = create(admin, "account", {"name": "无锡精工", "kind": "DEALER"})["id"]
    customer = create(admin, "account", {"name": "昆山恒通精密"})["id"]
    vmc = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})["id"]
    device = {"serialNumber": "VMC850-26-0412", "modelId": vmc, "dealerId": ruida}
    device_id = create(admin, "device", device | {"customerId": customer})["id"]
    body = drawing()
    uploaded = admin.http.post(
        f"/attachments/Device/{device_id}",
        params={"filename": "主轴箱图纸 DWG-850-017.pdf"},
        content=body,
        headers={"content-type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    # Sealed with SM4 on disk: not even the PDF's header is there in clear.
    stored = tmp_path / "drawings" / "attachments" / uploaded.json()["id"]
    assert body[:64] not in stored.read_bytes()

    wu = story.client_for("wu")
    (item,) = wu.data(ATTACHMENTS, {"id": device_id})["recordAttachments"]
    assert (item["filename"], item["contentType"], item["size"]) == (
        "主轴箱图纸 DWG-850-017.pdf",
        "application/pdf",
        len(body),
    )
    assert item["sha256"] == hashlib.sha256(body).hexdigest()
    fetched = httpx.get(item["downloadUrl"])
    assert fetched.content == body
    text = PdfReader(io.BytesIO(fetched.content)).pages[0].extract_text()
    assert "DWG-850-017 rev B" in text

    # The selling dealer's portal sees it; another dealer's learns nothing of it.
    story.people.user("portal.ruida", "苏州锐达-陈静", "dealer_portal", dealerId=ruida)
    story.people.user("portal.jinggong", "无锡精工-王芳", "dealer_portal", dealerId=jinggong)
    own = story.client_for("portal.ruida").data(ATTACHMENTS, {"id": device_id})["recordAttachments"]
    assert [a["filename"] for a in own] == ["主轴箱图纸 DWG-850-017.pdf"]
    (hidden,) = story.client_for("portal.jinggong").errors(ATTACHMENTS, {"id": device_id})
    assert hidden["extensions"]["code"] == "NOT_FOUND"


ACCOUNTS = """{ accounts(orderBy: [{field: ERP_CODE}]) {
  edges { node { erpCode name kind } } } }"""


def test_sap_business_partners_arrive_as_accounts(
    qiao_client: GraphQLClient, replay: Replay, qiao_worker: Worker, sap: FakeSap
) -> None:
    replay.set(dt.datetime(2026, 6, 1, 2, 0, tzinfo=SHANGHAI))
    for key, name, day in (
        ("1000101", "苏州锐达数控设备有限公司", 0),
        ("1000102", "无锡精工机床销售有限公司", 1),
        ("1000103", "宁波海联机械有限公司", 2),
    ):
        sap.partners[key] = {
            "BusinessPartner": key,
            "BusinessPartnerFullName": name,
            "LastChangeDate": f"/Date({1779840000000 + day * 86_400_000})/",
        }
        sap.versions[key] = 1
    add_sap(qiao_client, sap)
    qiao_client.data('mutation { syncConnector(name: "SAP") }')
    drain(qiao_worker)
    assert qiao_client.nodes(ACCOUNTS) == [
        {"erpCode": "1000101", "name": "苏州锐达数控设备有限公司", "kind": "CUSTOMER"},
        {"erpCode": "1000102", "name": "无锡精工机床销售有限公司", "kind": "CUSTOMER"},
        {"erpCode": "1000103", "name": "宁波海联机械有限公司", "kind": "CUSTOMER"},
    ]

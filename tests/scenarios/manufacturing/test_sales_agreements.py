"""Sales agreements: Draft -> Approved -> Activated (by the daily job on the start date)
-> Expired, with a revision approved again on the way; planned against actual per product
and period, the actuals rolled up from the order lines.
"""

from __future__ import annotations

import datetime as dt

from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.worker import drain

from .conftest import Story, create, read, rearm, update

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
SUBMIT = """mutation($id: ID!) {
  submitForApproval(entity: "SalesAgreement", id: $id, process: "sales_agreement_approval")
  { status } }"""
APPROVE = 'mutation($id: ID!) { approveRequest(id: $id, comment: "同意") { status } }'


def approve_all(client: GraphQLClient) -> None:
    for request in client.nodes("{ pendingApprovals { edges { node { id } } } }"):
        client.data(APPROVE, {"id": request["id"]})


def status(client: GraphQLClient, agreement: str) -> str:
    return read(client, "sales_agreement", agreement, "status")["status"]


def test_an_agreement_is_approved_activated_revised_and_expires(story: Story) -> None:
    admin = story.admin
    story.replay.set(dt.datetime(2026, 3, 20, 10, 0, tzinfo=SHANGHAI))
    for rule in ("销售协议到期生效", "销售协议到期失效"):
        rearm(admin, rule)
    story.people.team("恒锐华东大区", "华东")
    story.people.channel_manager()
    story.people.east_manager()
    xu, zhao = story.client_for("xu"), story.client_for("zhao")
    dealer = create(xu, "account", {"name": "苏州锐达数控设备有限公司", "kind": "DEALER"})["id"]
    vmc = create(admin, "product", {"name": "立式加工中心 HR-VMC850", "sku": "HR-VMC850"})["id"]
    tck = create(admin, "product", {"name": "斜床身数控车床 HR-TCK56", "sku": "HR-TCK56"})["id"]
    agreement = create(
        xu,
        "sales_agreement",
        {
            "agreementNumber": "HR-SA-2026-001",
            "name": "苏州锐达 2026 二季度销售协议",
            "dealerId": dealer,
            "startsOn": "2026-04-01",
            "endsOn": "2026-06-30",
        },
        "id status",
    )
    assert agreement["status"] == "DRAFT"
    agreement_id = agreement["id"]
    lines = {}
    for product, quantity, amount in ((vmc, 4, "1049600.00"), (tck, 2, "377600.00")):
        values = {
            "agreementId": agreement_id,
            "productId": product,
            "periodStart": "2026-04-01",
            "periodEnd": "2026-06-30",
            "plannedQuantity": quantity,
            "plannedAmount": amount,
        }
        lines[product] = create(xu, "agreement_line", values)["id"]

    (skipped,) = xu.errors(
        "mutation($id: ID!) { updateSalesAgreement(id: $id, input: {status: ACTIVATED}) { id } }",
        {"id": agreement_id},
    )
    assert skipped["extensions"]["allowed"] == ["APPROVED", "REJECTED", "CANCELLED"]
    assert xu.data(SUBMIT, {"id": agreement_id}) == {"submitForApproval": {"status": "PENDING"}}
    approve_all(zhao)
    assert status(admin, agreement_id) == "APPROVED"

    story.replay.set(dt.datetime(2026, 3, 31, 23, 59, tzinfo=SHANGHAI))
    drain(story.worker)
    assert status(admin, agreement_id) == "APPROVED"
    story.replay.set(dt.datetime(2026, 4, 1, 1, 0, tzinfo=SHANGHAI))  # the daily job, 01:00
    drain(story.worker)
    assert read(admin, "sales_agreement", agreement_id, "status activatedOn") == {
        "status": "ACTIVATED",
        "activatedOn": "2026-04-01",
    }

    # Orders against the schedule lines: three machines in the quarter, one after it.
    for product, on, quantity, amount in (
        (vmc, "2026-04-08", 2, "524800.00"),
        (vmc, "2026-05-18", 1, "262400.00"),
        (vmc, "2026-07-02", 1, "262400.00"),
        (tck, "2026-06-30", 1, "188800.00"),
    ):
        values = {
            "orderNumber": f"SO-{on}",
            "dealerId": dealer,
            "productId": product,
            "salesAgreementId": agreement_id,
            "scheduleLineId": lines[product],
            "orderedOn": on,
            "recordedOn": on,
            "quantity": quantity,
            "unitPrice": "262400.00" if product == vmc else "188800.00",
            "amount": amount,
        }
        create(admin, "purchase_line", values)
    fields = "plannedQuantity actualQuantity plannedAmount actualAmount attainment"
    assert read(admin, "agreement_line", lines[vmc], fields) == {
        "plannedQuantity": 4,
        "actualQuantity": 3,
        "plannedAmount": "1049600.00",
        "actualAmount": "787200.00",
        "attainment": "0.7500",
    }
    assert read(admin, "agreement_line", lines[tck], "actualQuantity attainment") == {
        "actualQuantity": 1,
        "attainment": "0.5000",
    }
    totals = read(admin, "sales_agreement", agreement_id, "plannedAmount actualAmount")
    assert totals == {"plannedAmount": "1427200.00", "actualAmount": "1238400.00"}

    # A revision in May is approved again and the daily job activates it again.
    story.replay.set(dt.datetime(2026, 5, 8, 15, 0, tzinfo=SHANGHAI))
    update(xu, "sales_agreement", agreement_id, {"status": "UNDER_REVISION"})
    update(xu, "agreement_line", lines[tck], {"plannedQuantity": 3, "plannedAmount": "566400.00"})
    xu.data(SUBMIT, {"id": agreement_id})
    approve_all(zhao)
    story.replay.set(dt.datetime(2026, 5, 9, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    assert read(admin, "sales_agreement", agreement_id, "status activatedOn") == {
        "status": "ACTIVATED",
        "activatedOn": "2026-05-09",
    }
    story.replay.set(dt.datetime(2026, 6, 30, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    assert status(admin, agreement_id) == "ACTIVATED"
    story.replay.set(dt.datetime(2026, 7, 1, 1, 0, tzinfo=SHANGHAI))
    drain(story.worker)
    assert status(admin, agreement_id) == "EXPIRED"

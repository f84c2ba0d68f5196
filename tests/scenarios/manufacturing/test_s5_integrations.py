"""S5 as far as the template owns it: a signed agreement's stamping (合同用印) decided in
DingTalk, and a field engineer's ticket worked offline in a factory and synced later.

The DingTalk side is the local fake speaking DingTalk's published protocol
(tests/plugins/connectors/fakes/dingtalk.py): the connector starts an approval instance
for the step, and DingTalk's callback that it was agreed approves the request in Qiao as
the channel manager the step waits for. Offline work goes through ``syncPull`` and
``syncPush`` (docs/sync.md) under the engineer's own rules and the ticket pipeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from qiao.core.events.worker import Worker
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from tests.plugins.connectors.deployment import add_connector
from tests.plugins.connectors.fakes import dingtalk as dingtalk_fake
from tests.plugins.connectors.fakes.dingtalk import FakeDingTalk
from tests.plugins.connectors.test_wired_approvals import AES_KEY, TOKEN, finish

from .conftest import People, Replay, create, read

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


def test_an_agreements_stamping_is_decided_in_dingtalk(
    qiao_client: GraphQLClient,
    qiao_server: LiveServer,
    replay: Replay,
    qiao_worker: Worker,
    people: People,
    dingtalk: FakeDingTalk,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    replay.set(NOW)
    people.team("恒锐华东大区", "华东")
    people.user("zhao", "赵启明", "channel_manager", dingtalkUserid="zhaoqm")
    people.user("xu", "徐海涛", "regional_manager", team="恒锐华东大区", dingtalkUserid="xuht")
    add_connector(
        qiao_client,
        name="钉钉",
        vendor="DINGTALK",
        baseUrl=dingtalk.url,
        settings={
            "app_key": dingtalk_fake.APP_KEY,
            "agent_id": dingtalk_fake.AGENT_ID,
            "approvals": {
                "contract_stamping": {
                    "process_code": "PROC-SEAL-01",
                    "decided_by": "zhao",
                    "form": {"协议编号": "agreement_number", "协议名称": "name"},
                }
            },
        },
        appSecret=dingtalk_fake.APP_SECRET,
        callbackToken=TOKEN,
        callbackAesKey=AES_KEY,
    )
    xu = client_for("xu")
    dealer = create(xu, "account", {"name": "苏州锐达", "kind": "DEALER"})["id"]
    agreement = {"agreementNumber": "SA-2026-017", "name": "苏州锐达 2026 年度销售协议"}
    agreement |= {"dealerId": dealer, "startsOn": "2026-06-01", "endsOn": "2026-12-31"}
    agreement_id = create(xu, "sales_agreement", agreement)["id"]
    xu.data(
        'mutation($id: ID!) { submitForApproval(entity: "SalesAgreement", id: $id, '
        'process: "contract_stamping") { id } }',
        {"id": agreement_id},
    )
    drain(qiao_worker)
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
    drain(qiao_worker)
    assert read(xu, "sales_agreement", agreement_id, "stampedOn") == {"stampedOn": "2026-05-18"}
    decisions = qiao_client.nodes(
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


def test_a_ticket_worked_offline_syncs_through_the_pipeline(
    qiao_client: GraphQLClient,
    replay: Replay,
    qiao_worker: Worker,
    people: People,
    client_for: Callable[[str], GraphQLClient],
) -> None:
    replay.set(dt.datetime(2026, 6, 1, 9, 0, tzinfo=SHANGHAI))
    people.team("华东服务站", "华东")
    people.user("wu", "吴磊", "field_engineer", team="华东服务站")
    ticket = {"subject": "刀库换刀卡刀", "status": "TO_DISPATCH", "region": "华东"}
    ticket_id = create(qiao_client, "service_ticket", ticket)["id"]
    drain(qiao_worker)  # dispatched to wu, the region's only engineer
    wu = client_for("wu")
    pulled = wu.data(PULL)["syncPull"]
    (copy,) = pulled["upserts"]
    assert (copy["id"], copy["fields"]["status"], copy["fields"]["subject"]) == (
        ticket_id,
        "TO_DISPATCH",
        "刀库换刀卡刀",
    )

    # In the factory, without a signal: started, then finished, the first try without
    # the resolution acceptance asks for. Pushed when back at 15:00.
    replay.set(dt.datetime(2026, 6, 1, 15, 0, tzinfo=SHANGHAI))
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
        qiao_client, "service_ticket", ticket_id, "status resolution startedAt owner { username }"
    )
    assert done["status"] == "TO_ACCEPT" and done["resolution"] == "更换刀库定位销"
    assert done["owner"] == {"username": "wu"}
    assert dt.datetime.fromisoformat(done["startedAt"]) == dt.datetime(
        2026, 6, 1, 15, 0, tzinfo=SHANGHAI
    )
    # The next pull brings the ticket at its new version.
    later = wu.data(PULL, {"cursor": pulled["cursor"]})["syncPull"]
    assert [(u["id"], u["version"]) for u in later["upserts"]] == [(ticket_id, accepted["version"])]

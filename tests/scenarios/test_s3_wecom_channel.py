"""S3 with WeCom as the channel: the engineer's phone buzzes at once, the supervisor's at 2 h.

The story of test_s3_ticket_escalation.py, with the connectors plugin's real WeCom
channel instead of a recording one: notifications leave through the outbox as WeCom app
messages to a server that speaks WeCom's protocol on 127.0.0.1, to the members the
engineer and the supervisor are mapped to (``user.wecom_userid``). Through GraphQL on the
live server, on SQLite and PostgreSQL, with the runtime's clock stopped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from plugins.connectors.fakes import wecom as wecom_fake
from plugins.connectors.fakes.wecom import FakeWeCom

from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.worker import drain
from qiao.core.worker import Worker

from .test_s3_ticket_escalation import DISPATCH, ESCALATE, OPENED, RULE, TICKET, org, tokens

pytestmark = pytest.mark.storage
__all__ = ["org", "tokens"]


@pytest.fixture
def qiao_enabled_plugins() -> tuple[str, ...]:
    return ("crm", "connectors")


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return ()


@pytest.fixture
def server(qiao_clock: TestClock) -> Iterator[FakeWeCom]:
    with FakeWeCom(lambda: qiao_clock().timestamp()).serve() as fake:
        yield fake


def test_the_engineer_and_then_the_supervisor_are_told_on_wecom(
    qiao_client: GraphQLClient,
    qiao_runtime: Runtime,
    qiao_clock: TestClock,
    qiao_worker: Worker,
    server: FakeWeCom,
    org: dict[str, Any],
) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.update(ctx, "user", org["id"]["zhou"], {"wecom_userid": "zhangsan"})
        records.update(ctx, "user", org["id"]["sun"], {"wecom_userid": "lisi"})
    qiao_client.data(
        "mutation($input: ConnectorCreateInput!) { createConnector(input: $input) { id } }",
        {
            "input": {
                "name": "企业微信",
                "vendor": "WECOM",
                "baseUrl": server.url,
                "settings": {"corp_id": wecom_fake.CORP_ID, "agent_id": wecom_fake.AGENT_ID},
                "appSecret": wecom_fake.SECRET,
            }
        },
    )
    for rule in (DISPATCH, ESCALATE):
        qiao_client.data(RULE, {"input": rule})
    scanned = {
        "subject": "注塑机液压报警",
        "serialNumber": "HX-2026-0815",
        "accountId": org["account"],
    }
    qiao_client.data(TICKET, {"input": scanned})

    qiao_clock.advance(seconds=5)
    drain(qiao_worker)
    [first] = server.sent
    assert first["to"] == ["zhangsan"]
    assert first["text"]["content"] == (
        "新服务工单：注塑机液压报警\n客户 宁波精工模具，设备序列号 HX-2026-0815"
    )
    assert qiao_clock() - OPENED <= dt.timedelta(seconds=30)  # sent by the worker's first pass

    qiao_clock.set(OPENED + dt.timedelta(hours=2))
    drain(qiao_worker)
    assert [m["to"] for m in server.sent] == [["zhangsan"], ["lisi"]]
    assert server.sent[1]["text"]["content"].startswith(
        "工单超时未受理，已升级给你：注塑机液压报警"
    )

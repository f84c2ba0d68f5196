"""No plaintext through side doors: a lead's life with every personal field encrypted.

Leads come in through a signed webhook, a web form, GraphQL and an import with a duplicate; one is
edited, merged with its duplicate and converted; the worker runs an automation rule that
notifies and calls a webhook with the lead, timers, and an outbound webhook of every event.
Then every table (read with raw SQL, the outbox and the audit log among them), the SQLite
database file itself, the webhook deliveries and the captured logs are searched for the
personal values: none may be found.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import qiao.plugins.crm
from qiao.core.events import signing, webhooks
from qiao.core.records.context import Actor, Source
from qiao.core.redaction import REDACTED, install_log_scrubber
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.plaintext import found_in, plaintext_hits
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain

from .test_api import _post_webhook
from .test_encrypted_dedupe import encrypted_manifest

PERSONAL = frozenset(
    {
        ("lead", "mobile"),
        ("lead", "email"),
        ("contact", "mobile"),
        ("contact", "phone"),
        ("contact", "email"),
        ("contact", "wechat"),
    }
)
#: Every personal value the scenario writes, in each form that could be stored or logged.
SECRETS = (
    "13857412096",
    "3857412096",
    "86901158",
    "13961127735",
    "chen.gong@yongye.example.com",
    "chen.gong",
    "lin.xy@donghai.example.cn",
    "lin.xy",
    "hy-sales-0574",
    "13952741180",
    "zhao.min",
)


class EncryptedPersonal:
    """Names the deployment's variant, so its test databases are not shared with others."""

    __name__ = "encrypted_personal"


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encrypted_manifest(tmp_path_factory.mktemp("crm"), PERSONAL)


@pytest.fixture
def qiao_extra_plugins(manifest: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sequence[Any]]:
    crm = qiao.plugins.crm
    monkeypatch.setattr(crm, "MANIFESTS", (manifest, *crm.MANIFESTS[1:]))
    yield [EncryptedPersonal()]


@pytest.fixture
def outbound() -> Iterator[tuple[str, list[bytes]]]:
    """A webhook receiver: its URL and the bodies it received."""
    bodies: list[bytes] = []
    lock = threading.Lock()

    async def hook(request: Request) -> Response:
        body = await request.body()
        with lock:
            bodies.append(body)
        return Response(status_code=204)

    with LiveServer(Starlette(routes=[Route("/hook", hook, methods=["POST"])])) as server:
        yield f"{server.url}/hook", bodies


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record at DEBUG, scrubbed as the ``qiao`` command scrubs them."""
    factory = logging.getLogRecordFactory()
    install_log_scrubber()
    caplog.set_level(logging.DEBUG)
    yield caplog
    logging.setLogRecordFactory(factory)


def hits(haystack: str) -> list[str]:
    return found_in(haystack, SECRETS)


def test_personal_values_are_nowhere_in_clear(
    qiao_runtime: Runtime,
    qiao_server: LiveServer,
    qiao_client: GraphQLClient,
    qiao_worker: Any,
    create: Callable[..., Any],
    get: Callable[..., Any],
    outbound: tuple[str, list[bytes]],
    logs: pytest.LogCaptureFixture,
) -> None:
    url, bodies = outbound
    with qiao_runtime.db.write() as conn:
        webhooks.add_endpoint(conn, url, None, signing.new_secret(), qiao_runtime.records.clock())
    rule = {
        "name": "线索更新提醒",
        "entity": "lead",
        "trigger": {"updated": {}},
        "actions": [
            {"notify": {"fields": ["owner"], "title": "跟进 {name}：{mobile}", "body": "{email}"}},
            {"webhook": {"url": url, "secret": signing.new_secret()}},
        ],
    }
    with qiao_runtime.records.transaction(Actor.system(), Source.CLI) as ctx:
        qiao_runtime.records.create(ctx, "automation_rule", rule)
    channel = create("lead_channel", name="公众号表单", kind="WEBHOOK", source="WECHAT")
    inbound = _post_webhook(
        qiao_server,
        channel,
        {"姓名": "陈工", "手机": "0574-8690 1158", "公司": "宁波甬液液压件有限公司"},
    )
    assert inbound.status_code == 201, inbound.text
    site = create("lead_channel", name="官网", allowed_origins=["https://www.example.com"])
    form = httpx.post(
        f"{qiao_server.url}/leads/forms/{site['key']}",
        data={"name": "赵敏", "mobile": "13952741180", "email": "zhao.min@shuguang.example.cn"},
        headers={"origin": "https://www.example.com"},
    )
    assert form.status_code == 201, form.text

    kept = qiao_client.data(
        "mutation($i: LeadCreateInput!) { createLead(input: $i) { id mobile } }",
        {"i": {"name": "陈工 (展会)", "mobile": "138 5741 2096", "company": "宁波甬液"}},
    )["createLead"]
    assert kept["mobile"] == "+8613857412096"
    csv = (
        "姓名,手机,邮箱,公司\n"
        "陈工,13857412096,chen.gong@yongye.example.com,宁波甬液液压件有限公司\n"
        "林晓燕,13961127735,lin.xy@donghai.example.cn,宁波东海\n"
    )
    imported = qiao_client.data(
        'mutation($f: String!) { importLeads(fileBase64: $f, filename: "a.csv") '
        "{ created duplicates problems { row kind reason } } }",
        {"f": base64.b64encode(csv.encode()).decode()},
    )["importLeads"]
    assert (imported["created"], imported["duplicates"]) == (1, 1)  # the duplicate skipped
    assert not any(hits(p["reason"]) for p in imported["problems"])
    duplicate = qiao_client.data(
        "mutation($i: LeadCreateInput!) { createLead(input: $i) { id duplicateOf { id } } }",
        {"i": {"name": "陈工", "mobile": "13857412096", "email": "chen.gong@yongye.example.com"}},
    )["createLead"]
    assert duplicate["duplicateOf"] == {"id": kept["id"]}
    found = qiao_client.data(
        '{ leads(filter: {email: {eq: "Chen.Gong@yongye.example.com"}}) { edges { node { id } } } }'
    )["leads"]["edges"]
    assert found == [{"node": {"id": duplicate["id"]}}]
    qiao_client.data(
        'mutation($id: ID!) { updateLead(id: $id, input: {description: "要液压阀样品"}) { id } }',
        {"id": kept["id"]},
    )
    merged = qiao_client.data(
        "mutation($k: ID!, $m: ID!) { mergeLeads(keepId: $k, mergeId: $m) }",
        {"k": kept["id"], "m": duplicate["id"]},
    )["mergeLeads"]
    snapshot = merged["mergedFrom"][0]["values"]
    assert snapshot["mobile"] == snapshot["email"] == REDACTED and snapshot["name"] == "陈工"
    assert get("lead", kept["id"])["email"] == "chen.gong@yongye.example.com"  # filled in

    conversion = qiao_client.data(
        'mutation($id: ID!) { convertLead(id: $id, amount: "86000.00") { contactId } }',
        {"id": kept["id"]},
    )["convertLead"]
    contact = qiao_client.data(
        'mutation($id: ID!) { updateContact(id: $id, input: {wechat: "hy-sales-0574"}) '
        "{ mobile email wechat } }",
        {"id": conversion["contactId"]},
    )["updateContact"]
    assert contact == {
        "mobile": "+8613857412096",
        "email": "chen.gong@yongye.example.com",
        "wechat": "hy-sales-0574",
    }
    drain(qiao_worker)
    assert bodies, "the outbound webhook received the events"
    with qiao_runtime.db.read() as conn:
        titles = conn.execute(text("SELECT title FROM notification")).scalars().all()
    assert f"跟进 陈工 (展会)：{REDACTED}" in titles
    logging.getLogger("qiao.test").info("converted lead %s", get("lead", kept["id"])["mobile"])

    assert plaintext_hits(qiao_runtime, SECRETS) == {}
    with qiao_runtime.db.read() as conn:
        for table in ("qiao_event", "qiao_audit_entry"):
            count = conn.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar_one()
            assert count > 0, f"{table} holds the scenario's changes"
    assert [hits(b.decode()) for b in bodies if hits(b.decode())] == []
    assert hits(logs.text) == []

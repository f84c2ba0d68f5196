"""Documents rendered from records and QR codes of intake links, through GraphQL."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pypdf import PdfReader

from qiao.core.documents.qr import qr_png, qr_svg
from qiao.core.documents.render import render_document
from qiao.core.errors import BadUserInput
from qiao.core.intake import links
from qiao.core.records.context import Actor, Source

MACHINE = "mutation($i: MachineCreateInput!) { createMachine(input: $i) { id } }"
RENDER = (
    "mutation($t: String!, $id: ID!, $base: String) { renderDocument(template: $t, id: $id, "
    "baseUrl: $base) { id filename contentType content } }"
)


def _machine(client) -> str:
    values = {"serial": "HT-2026-0042", "customer": "宁波<东海>机械", "installedOn": "2026-03-01"}
    return client.data(MACHINE, {"i": values})["createMachine"]["id"]


def test_a_trial_report_is_rendered_kept_and_carries_a_working_repair_code(
    qiao_client, qiao_clock, qiao_server, qiao_runtime
):
    qiao_clock.set(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    machine = _machine(qiao_client)
    doc = qiao_client.data(RENDER, {"t": "trial_report", "id": machine, "base": qiao_server.url})[
        "renderDocument"
    ]
    assert doc["filename"] == "试机报告-HT-2026-0042.html"
    assert doc["contentType"] == "text/html; charset=utf-8"
    content = doc["content"]
    assert "<h1>设备试机报告</h1>" in content and "出厂编号：HT-2026-0042" in content
    assert "宁波&lt;东海&gt;机械" in content  # record values are escaped
    assert "出具日期：2026-03-02" in content and "<svg" in content

    (url,) = re.findall(r'<p class="link">([^<]+)</p>', content)
    url = unescape(url)
    query = parse_qs(urlsplit(url).query)
    assert query["r"] == [machine]
    with qiao_runtime.db.read() as conn:
        (form,) = qiao_runtime.records.list(conn, "intake_form", actor=Actor.system()).records
        (kept,) = qiao_runtime.records.list(conn, "document", actor=Actor.system()).records
    assert links.verify(form["secret"], "machine_repair", machine, query["s"][0])
    assert qr_svg(url) in content  # the code in the report encodes exactly this link
    assert (kept["record_id"], kept["filename"]) == (machine, doc["filename"])
    page = httpx.get(url, timeout=30.0)  # the code opens the machine's repair form
    assert page.status_code == 200 and "HT-2026-0042" in page.text


def test_a_pdf_report_carries_chinese_text_and_the_code(qiao_client, qiao_clock, qiao_server):
    qiao_clock.set(dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC))
    machine = _machine(qiao_client)
    variables = {"t": "trial_report_pdf", "id": machine, "base": qiao_server.url}
    doc = qiao_client.data(RENDER, variables)["renderDocument"]
    assert (doc["filename"], doc["contentType"]) == ("试机报告-HT-2026-0042.pdf", "application/pdf")
    pdf = PdfReader(io.BytesIO(base64.b64decode(doc["content"])))
    (page,) = pdf.pages
    text = page.extract_text()
    for line in (
        "设备试机报告",
        "出厂编号：HT-2026-0042",
        "客户：宁波<东海>机械",
        "出具日期：2026-03-02",
    ):
        assert line in text
    assert len(page.images) == 1  # the repair QR code
    fonts = {f["/BaseFont"] for f in page["/Resources"]["/Font"].values()}
    assert any("WenQuanYi" in str(f) or "CJK" in str(f) for f in fonts)  # embedded, not assumed


def test_a_document_is_sent_through_the_notification_channels(qiao_client, qiao_runtime):
    machine = _machine(qiao_client)
    sent = qiao_client.data(
        'mutation($id: ID!) { renderDocument(template: "trial_report_pdf", id: $id, '
        'sendTo: ["admin"]) { id filename } }',
        {"id": machine},
    )["renderDocument"]
    with qiao_runtime.db.read() as conn:
        (note,) = qiao_runtime.records.list(conn, "notification", actor=Actor.system()).records
    assert (note["kind"], note["link_entity"], note["link_id"]) == (
        "document",
        "document",
        sent["id"],
    )
    assert note["title"] == "设备试机报告：试机报告-HT-2026-0042.pdf"
    (error,) = qiao_client.errors(
        'mutation($id: ID!) { renderDocument(template: "trial_report", id: $id, '
        'sendTo: ["nobody"]) { id } }',
        {"id": machine},
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "sendTo"}


def test_intake_codes_come_as_svg_and_png(qiao_client, qiao_server):
    machine = _machine(qiao_client)
    code = qiao_client.data(
        'mutation($id: ID!, $base: String!) { intakeCode(form: "machine_repair", '
        'entity: "machine", id: $id, baseUrl: $base) { url svg pngBase64 } }',
        {"id": machine, "base": qiao_server.url},
    )["intakeCode"]
    assert code["url"].startswith(qiao_server.url + "/intake/machine_repair?r=" + machine)
    assert code["svg"] == qr_svg(code["url"])
    png = base64.b64decode(code["pngBase64"])
    assert png.startswith(b"\x89PNG") and png == qr_png(code["url"])


def test_template_mistakes_and_unknown_records_are_clear_errors(qiao_client):
    machine = _machine(qiao_client)
    (error,) = qiao_client.errors(RENDER, {"t": "broken", "id": machine})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "template"}
    assert "no_such_field" in error["message"]
    (error,) = qiao_client.errors(RENDER, {"t": "nothing", "id": machine})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert qiao_client.data("{ documents { totalCount } }") == {"documents": {"totalCount": 0}}


def test_a_document_shows_only_what_its_reader_may_see(qiao_runtime):
    records = qiao_runtime.records
    rights = {
        "entities": {"machine": {"read": "all"}, "document": {"create": "all", "read": "own"}},
        "fields": {"machine": {"customer": "masked"}},
    }
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        masked = records.create(ctx, "role", {"name": "engineer", "rights": rights})
        hidden = records.create(
            ctx,
            "role",
            {"name": "intern", "rights": rights | {"fields": {"machine": {"customer": "none"}}}},
        )
        users = {}
        for username, role in (("sun", masked), ("li", hidden)):
            user = records.create(ctx, "user", {"username": username, "display_name": username})
            records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
            users[username] = Actor(user_id=user["id"], username=username)
        machine = records.create(ctx, "machine", {"serial": "HT-1", "customer": "宁波东海机械"})
    with records.transaction(users["sun"], Source.GRAPHQL) as ctx:
        doc = render_document(ctx, "trial_report", machine["id"])
    assert "客户：****" in doc["content"] and "宁波" not in doc["content"]
    with pytest.raises(BadUserInput), records.transaction(users["li"], Source.GRAPHQL) as ctx:
        render_document(ctx, "trial_report", machine["id"])


def test_a_document_lists_the_rows_behind_a_rollup_as_its_reader_reads_them(qiao_runtime):
    records = qiao_runtime.records
    rights = {
        "entities": {
            "machine": {"read": "all"},
            "service_call": {"read": {"filter": {"urgency": {"eq": "URGENT"}}}},
            "document": {"create": "all", "read": "own"},
        }
    }
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        role = records.create(ctx, "role", {"name": "escalations", "rights": rights})
        user = records.create(ctx, "user", {"username": "zhou", "display_name": "周"})
        records.create(ctx, "role_assignment", {"user": user["id"], "role": role["id"]})
        machine = records.create(ctx, "machine", {"serial": "HT-7"})
        other = records.create(ctx, "machine", {"serial": "HT-8"})
        for target, description, urgency in (
            (machine, "主轴异响", "URGENT"),
            (machine, "冷却液泄漏", "NORMAL"),
            (other, "导轨磨损", "URGENT"),
        ):
            values = {"machine": target["id"], "description": description, "urgency": urgency}
            records.create(ctx, "service_call", values)
        everyone = render_document(ctx, "service_history", machine["id"])["content"]
    assert "<h1>HT-7：2 次报修</h1>" in everyone
    assert "<p>主轴异响|紧急|HT-7</p>" in everyone and "<p>冷却液泄漏|一般|HT-7</p>" in everyone
    assert everyone.index("主轴异响") < everyone.index("冷却液泄漏")  # ordered by description
    assert "导轨磨损" not in everyone  # another machine's call
    zhou = Actor(user_id=user["id"], username="zhou")
    with records.transaction(zhou, Source.GRAPHQL) as ctx:
        seen = render_document(ctx, "service_history", machine["id"])["content"]
    assert "主轴异响" in seen and "冷却液泄漏" not in seen  # the total counts what rows hide
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        for name, word in (("not_a_relation", "relation"), ("not_a_rollup", "rollup")):
            with pytest.raises(BadUserInput) as error:
                render_document(ctx, name, machine["id"])
            assert error.value.field == "template" and word in error.value.message

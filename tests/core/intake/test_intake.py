"""Public intake forms on a live server: signed links, validation shown, rate limits."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from qiao.core.hookmarkers import hookimpl
from qiao.core.intake import links
from qiao.core.records.context import Actor, Source
from qiao.core.storage import system

from .conftest import SERVICE

FORM = {"contact_name": "刘师傅", "mobile": "13812345678", "description": "主轴异响，无法启动"}


def _device_and_link(runtime) -> tuple[str, str]:
    records = runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        device = records.create(ctx, "device", {"serial": "HT-2026-0042"})
    with records.db.read() as conn:
        (form,) = records.list(conn, "intake_form", actor=Actor.system()).records
    return device["id"], links.intake_path(form["secret"], "repair", device["id"])


def test_a_signed_link_opens_the_form_and_a_submission_is_stored(qiao_runtime, browser):
    device, link = _device_and_link(qiao_runtime)
    assert browser.get("/intake/repair").status_code == 403  # only through the device's code
    page = browser.get(link)
    assert page.status_code == 200
    assert "设备报修" in page.text and "HT-2026-0042" in page.text and "故障描述" in page.text

    done = browser.post(link, data=FORM)
    assert done.status_code == 201 and "已收到" in done.text
    records = qiao_runtime.records
    with records.db.read() as conn:
        (stored,) = records.list(conn, "repair_request", actor=Actor.system()).records
        entries = system.audit_entry
        trail = conn.execute(
            select(entries.c.source, entries.c.actor).where(entries.c.record_id == stored["id"])
        ).all()
    assert stored["device_id"] == device and stored["channel"] == "QR"
    assert stored["mobile"] == "+8613812345678" and stored["created_by_id"] is None
    assert [tuple(t) for t in trail] == [("intake", "扫码报修")]


def test_errors_are_shown_beside_their_field_and_nothing_is_stored(qiao_runtime, browser):
    _, link = _device_and_link(qiao_runtime)
    refused = browser.post(link, data=FORM | {"mobile": "12345"})
    assert refused.status_code == 400
    assert 'id="mobile-error"' in refused.text and "not a valid phone number" in refused.text
    assert 'value="刘师傅"' in refused.text  # what was typed is kept
    missing = browser.post(link, json={"contact_name": "刘师傅", "mobile": "13812345678"})
    assert missing.status_code == 400
    assert missing.json() == {"error": "description is required", "field": "description"}
    extra = browser.post(link, json=FORM | {"channel": "WEB"})
    assert extra.json()["field"] == "channel"  # only the form's fields may be filled in
    records = qiao_runtime.records
    with records.db.read() as conn:
        assert records.list(conn, "repair_request", actor=Actor.system()).records == []


def test_links_cannot_be_altered_and_submissions_are_limited(qiao_runtime, browser):
    device, link = _device_and_link(qiao_runtime)
    other, _ = _device_and_link(qiao_runtime)
    assert browser.get(link.replace(device, other)).status_code == 403
    assert browser.get(link[:-1] + ("0" if link[-1] != "0" else "1")).status_code == 403
    assert browser.get("/intake/nothing").status_code == 404
    foreign = browser.post(link, data=FORM, headers={"Origin": "https://evil.example"})
    assert foreign.status_code == 403
    robot = browser.post(link, data=FORM | {"website_url": "http://spam"})
    assert robot.status_code == 201  # answered as if stored
    assert browser.post(link, data=FORM).status_code == 201
    assert browser.post(link, data=FORM).status_code == 201
    limited = browser.post(link, data=FORM)  # the fourth this minute; the form allows 3
    assert limited.status_code == 429 and limited.headers["retry-after"] == "60"
    records = qiao_runtime.records
    with records.db.read() as conn:
        assert len(records.list(conn, "repair_request", actor=Actor.system()).records) == 2


class Captcha:
    """Lets a submission through only with the token a CAPTCHA widget would add."""

    __name__ = "captcha"

    @hookimpl
    def qiao_intake_challenge(self, form, fields, client):
        if fields.get("challenge_token") == "solved" and client:
            return None
        return "请先完成人机验证"


@pytest.mark.parametrize("qiao_extra_plugins", [[SERVICE, Captcha()]])
def test_a_plugin_can_ask_for_proof_of_a_person(qiao_runtime, browser):
    _, link = _device_and_link(qiao_runtime)
    refused = browser.post(link, json=FORM)
    assert refused.status_code == 400
    assert refused.json() == {"error": "请先完成人机验证", "field": "challenge"}
    page = browser.post(link, data=FORM)
    assert page.status_code == 400 and "请先完成人机验证" in page.text
    assert browser.post(link, data=FORM | {"challenge_token": "solved"}).status_code == 201
    records = qiao_runtime.records
    with records.db.read() as conn:
        (stored,) = records.list(conn, "repair_request", actor=Actor.system()).records
    assert stored["description"] == FORM["description"]

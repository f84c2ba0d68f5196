"""Standard personal fields encrypted at rest: declared by ``qiao init``, converted online."""

from __future__ import annotations

import base64
import json
import time
import tomllib
from pathlib import Path

import httpx
from sqlalchemy import MetaData, Table, select

from qiao.core.crypto import is_sealed
from qiao.core.records.context import Actor, Source
from qiao.core.storage.database import Database
from qiao.core.testing.deployment import Deployment, init
from qiao.plugins.leads.inbound.channels import SECRET_PREFIX
from qiao.plugins.leads.inbound.signatures import sign

from .test_backup import tomllib_url
from .test_keys import runtime_of

SYSTEM = Actor.system()


def column(site: Deployment, table: str, name: str) -> list[str | None]:
    """The stored values of one column, as the database holds them."""
    db = Database(tomllib_url(site.config))
    try:
        with db.read() as conn:
            stored = Table(table, MetaData(), autoload_with=conn)
            return [r[0] for r in conn.execute(select(stored.c[name]))]
    finally:
        db.dispose()


def test_init_encrypts_contact_details_and_import_still_finds_duplicates(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init(tmp_path / "site", qiao_empty_database_url, "--plugin", "crm", "--plugin", "leads")
    assert '"lead.mobile"' in site.config.read_text(encoding="utf-8")
    sheet = tmp_path / "show.csv"
    sheet.write_text(
        "姓名,手机,邮箱\n王芳,13800138000,wang@example.cn\n李强,13900139000,li@example.cn\n",
        encoding="utf-8",
    )
    assert "created 2" in site.run("import", str(sheet)).stdout
    again = tmp_path / "again.csv"
    again.write_text("姓名,手机,邮箱\n王芳,138 0013 8000,WANG@example.cn\n", encoding="utf-8")
    out = site.run("import", str(again)).stdout
    assert "created 0" in out and "1 duplicates" in out
    mobiles = column(site, "lead", "mobile")
    assert len(mobiles) == 2 and all(is_sealed(m) for m in mobiles)
    assert all(is_sealed(e) for e in column(site, "lead", "email"))


def test_encrypt_field_converts_a_plain_standard_field_online_and_resumably(
    qiao_deployment: Deployment,
) -> None:
    site = qiao_deployment
    with runtime_of(site.config) as runtime, runtime.records.transaction(SYSTEM, Source.CLI) as ctx:
        for i in range(5):
            runtime.records.create(ctx, "account", {"name": f"客户{i}", "phone": "02151234567"})
        runtime.records.create(ctx, "account", {"name": "无电话"})
    assert column(site, "account", "phone").count("+862151234567") == 5
    out = site.run("keys", "encrypt-field", "account.phone", "--batch", "2", "--settle", "0")
    assert "account.phone: 5 values sealed; 0 left in plaintext" in out.stdout
    assert '"account.phone"' in site.config.read_text(encoding="utf-8")
    phones = [p for p in column(site, "account", "phone") if p is not None]
    assert len(phones) == 5 and all(is_sealed(p) for p in phones)
    again = site.run("keys", "encrypt-field", "account.phone", "--settle", "0").stdout
    assert "account.phone: 0 values sealed; 0 left in plaintext" in again
    history = site.run("metadata", "history").stdout
    assert "encrypt_field" in history and "account" in history
    with runtime_of(site.config) as runtime, runtime.db.read() as conn:
        found = runtime.records.list(
            conn, "account", filter={"phone": {"eq": "021-5123 4567"}}, actor=SYSTEM
        ).records
    assert sorted(a["name"] for a in found) == [f"客户{i}" for i in range(5)]
    assert {a["phone"] for a in found} == {"+862151234567"}


def test_init_with_the_clinics_template_encrypts_patients_phone_and_allergies(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init(tmp_path / "site", qiao_empty_database_url, "--template", "clinics", "--demo")
    fields = tomllib.loads(site.config.read_text(encoding="utf-8"))["encryption"]["fields"]
    assert fields[-2:] == ["patient.phone", "patient.allergies"] and "lead.mobile" in fields
    phones = [p for p in column(site, "patient", "phone") if p is not None]
    allergies = [a for a in column(site, "patient", "allergies") if a is not None]
    assert phones and allergies and all(is_sealed(v) for v in [*phones, *allergies])
    with runtime_of(site.config) as runtime, runtime.db.read() as conn:
        found = runtime.records.list(
            conn, "patient", filter={"phone": {"eq": "136 8801 2345"}}, actor=SYSTEM
        ).records
    assert [(p["name"], p["allergies"]) for p in found] == [("刘晓梅", "青霉素过敏")]


def webhook_calls(site: Deployment, key: str, secret: str) -> tuple[int, int]:
    """The statuses of a call signed with ``secret`` and of one signed with another, sent to
    ``site`` served by ``qiao serve``."""
    body = json.dumps({"姓名": "陈工", "手机": "13905740001"}, ensure_ascii=False).encode()
    stamp = str(int(time.time()))
    with site.serve() as served, httpx.Client(base_url=served.url, timeout=60) as http:

        def post(signed_with: str, message_id: str) -> httpx.Response:
            headers = {
                "webhook-id": message_id,
                "webhook-timestamp": stamp,
                "webhook-signature": sign(signed_with, message_id, stamp, body),
            }
            return http.post(f"/leads/webhooks/{key}", content=body, headers=headers)

        accepted = post(secret, "msg_1")
        forged = post(SECRET_PREFIX + base64.b64encode(b"x" * 32).decode(), "msg_2")
    return accepted.status_code, forged.status_code


def new_channel(site: Deployment) -> tuple[str, str]:
    """A webhook channel made through the records service: (its secret, its key)."""
    with runtime_of(site.config) as runtime, runtime.records.transaction(SYSTEM, Source.CLI) as ctx:
        channel = runtime.records.create(ctx, "lead_channel", {"name": "官网", "kind": "WEBHOOK"})
    return str(channel["secret"]), str(channel["key"])


def test_a_new_deployment_seals_its_webhook_secrets_and_receives_webhooks(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init(tmp_path / "site", qiao_empty_database_url, "--plugin", "crm", "--plugin", "leads")
    secret, key = new_channel(site)
    (stored,) = column(site, "lead_channel", "secret")
    assert stored is not None and is_sealed(stored) and secret not in stored
    assert webhook_calls(site, key, secret) == (201, 401)
    assert len(column(site, "lead", "id")) == 1


def test_secrets_stored_while_undeclared_are_sealed_and_webhooks_keep_coming(
    qiao_empty_database_url: str, tmp_path: Path
) -> None:
    site = init(tmp_path / "site", qiao_empty_database_url, "--plugin", "crm", "--plugin", "leads")
    settings = site.config.read_text(encoding="utf-8")
    undeclared = settings.replace(', "lead_channel.secret"]', "]")
    assert undeclared != settings
    site.config.write_text(undeclared, encoding="utf-8")
    secret, key = new_channel(site)
    assert column(site, "lead_channel", "secret") == [secret]
    out = site.run("keys", "encrypt-field", "lead_channel.secret", "--settle", "0").stdout
    assert "lead_channel.secret is encrypted from now on" in out
    assert "lead_channel.secret: 1 values sealed; 0 left in plaintext" in out
    assert '"lead_channel.secret"' in site.config.read_text(encoding="utf-8")
    (stored,) = column(site, "lead_channel", "secret")
    assert stored is not None and is_sealed(stored)
    assert webhook_calls(site, key, secret) == (201, 401)
    assert len(column(site, "lead", "id")) == 1

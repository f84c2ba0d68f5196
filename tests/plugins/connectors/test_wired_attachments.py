"""Attachments over a live server: uploaded over HTTP, listed in GraphQL with links that
expire, kept in moto's S3 server or on local disk, sealed with SM4, under the record's
rules, and removed with their record."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qiao.core import outbound
from qiao.core.auth.tokens import create_token
from qiao.core.records.context import Actor, Source
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain
from qiao.plugins.connectors.objectstore.s3 import S3Store

from .deployment import add_connector
from .fakes import sigv4

ACCESS, SECRET, REGION = "qiao-access", "qiao-secret-key-000000", "us-east-1"
PDF = b"%PDF-1.7\n% mould drawing " + os.urandom(2048) + b"\n%%EOF\n"
MAX_BYTES = 64 * 1024
LINK_SECONDS = 300
LIST = """
query($entity: String!, $id: ID!) {
  recordAttachments(entity: $entity, id: $id) {
    id filename contentType size sha256 uploadedBy downloadUrl expiresInSeconds
  }
}
"""


class Deployment:
    """The live server, the administrator's client and users with tokens of their own."""

    def __init__(self, runtime: Any, server: LiveServer, admin: GraphQLClient) -> None:
        self.runtime, self.server, self.admin = runtime, server, admin
        self.clients: list[GraphQLClient] = []

    def user(
        self, username: str, role: str | None = None, team: str | None = None
    ) -> GraphQLClient:
        records = self.runtime.records
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            values = {"username": username, "display_name": username, "team": team}
            user = records.create(ctx, "user", values)
            if role:
                found = records.list(
                    ctx.connection, "role", filter={"name": {"eq": role}}, actor=Actor.system()
                )
                records.create(
                    ctx, "role_assignment", {"user": user["id"], "role": found.records[0]["id"]}
                )
            token = create_token(ctx.connection, self.runtime.current(), username)
        client = GraphQLClient(self.server.url, token)
        self.clients.append(client)
        return client

    def account(self, client: GraphQLClient, name: str = "苏州精密模具") -> str:
        data = client.data(
            "mutation($input: AccountCreateInput!) { createAccount(input: $input) { id } }",
            {"input": {"name": name}},
        )
        return str(data["createAccount"]["id"])


@pytest.fixture
def deployment(
    qiao_runtime: Any, qiao_server: LiveServer, qiao_client: GraphQLClient
) -> Iterator[Deployment]:
    made = Deployment(qiao_runtime, qiao_server, qiao_client)
    yield made
    for client in made.clients:
        client.close()


def upload(
    client: GraphQLClient, record_id: str, body: bytes, filename: str = "模具图纸.pdf"
) -> httpx.Response:
    return client.http.post(
        f"/attachments/Account/{record_id}",
        params={"filename": filename},
        content=body,
        headers={"content-type": "application/octet-stream"},
    )


def listed(client: GraphQLClient, record_id: str) -> list[dict[str, Any]]:
    return list(client.data(LIST, {"entity": "Account", "id": record_id})["recordAttachments"])


def s3_store(endpoint: str, bucket: str) -> S3Store:
    return S3Store(endpoint, ACCESS, SECRET, bucket, region=REGION, secure=False)


def objects(endpoint: str, bucket: str) -> list[str]:
    answer = httpx.get(f"http://{endpoint}/{bucket}?list-type=2", verify=outbound.tls_context())
    return [part.split("</Key>")[0] for part in answer.text.split("<Key>")[1:]]


@pytest.fixture
def bucket(moto_endpoint: str) -> str:
    name = f"att-{uuid.uuid4().hex[:12]}"
    s3_store(moto_endpoint, name).ensure_bucket()
    return name


def add_s3(deployment: Deployment, endpoint: str, bucket: str, encrypt: bool) -> str:
    return add_connector(
        deployment.admin,
        name="文件存储",
        vendor="OBJECTSTORE",
        settings={
            "kind": "s3",
            "endpoint": endpoint,
            "bucket": bucket,
            "access_key": ACCESS,
            "secure": False,
            "encrypt": encrypt,
            "max_bytes": MAX_BYTES,
            "link_seconds": LINK_SECONDS,
            "link_base": deployment.server.url,
        },
        appSecret=SECRET,
    )


def test_an_sm4_sealed_upload_is_listed_downloaded_and_its_link_expires(
    deployment: Deployment, moto_endpoint: str, bucket: str, clock: TestClock
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=True)
    rep = deployment.user("zhang", "sales_rep")
    account = deployment.account(rep)
    answer = upload(rep, account, PDF)
    assert answer.status_code == 201, answer.text
    created = answer.json()
    assert created["filename"] == "模具图纸.pdf" and created["contentType"] == "application/pdf"

    (item,) = listed(rep, account)
    assert item["size"] == len(PDF) and item["uploadedBy"] == "zhang"
    assert item["downloadUrl"].startswith(deployment.server.url + "/attachments/download?")
    got = httpx.get(item["downloadUrl"])
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/pdf"
    assert "filename*=UTF-8''%E6%A8%A1" in got.headers["content-disposition"]

    (key,) = objects(moto_endpoint, bucket)
    sealed = s3_store(moto_endpoint, bucket).get(key)
    assert PDF[:32] not in sealed and PDF[-600:] not in sealed and len(sealed) == len(PDF) + 28

    forged = item["downloadUrl"].replace("expires=", "expires=9")
    assert httpx.get(forged).status_code == 403
    clock.advance(seconds=LINK_SECONDS + 1)
    expired = httpx.get(item["downloadUrl"])
    assert (
        expired.status_code == 410 and expired.json()["errors"][0]["extensions"]["code"] == "GONE"
    )


def test_a_plain_s3_store_hands_out_presigned_links_that_expire(
    deployment: Deployment, moto_endpoint: str, bucket: str, clock: TestClock
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=False)
    account = deployment.account(deployment.admin)
    assert (
        upload(
            deployment.admin,
            account,
            b"name,city\n\xe5\xbc\xa0\xe4\xb8\x89,\xe8\x8b\x8f\xe5\xb7\x9e\n",
            "客户.csv",
        ).status_code
        == 201
    )
    (item,) = listed(deployment.admin, account)
    assert item["contentType"] == "text/csv" and item["filename"] == "客户.csv"
    url = item["downloadUrl"]
    assert url.startswith(f"http://{moto_endpoint}/{bucket}/attachments/")
    assert httpx.get(url).content.decode() == "name,city\n张三,苏州\n"
    now = clock().timestamp()
    sigv4.verify(url, ACCESS, SECRET, REGION, now=now + LINK_SECONDS - 1)
    with pytest.raises(sigv4.PresignError, match="expired"):
        sigv4.verify(url, ACCESS, SECRET, REGION, now=now + LINK_SECONDS + 1)


def test_a_user_who_cannot_read_the_record_learns_nothing_of_its_files(
    deployment: Deployment, moto_endpoint: str, bucket: str
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=True)
    owner = deployment.user("zhang", "sales_rep")
    stranger = deployment.user("zhao")
    account = deployment.account(owner)
    assert upload(owner, account, PDF).status_code == 201
    missing = str(uuid.uuid4())

    def same(text: str, record_id: str) -> str:
        return text.replace(record_id, "<id>")

    def variables(rid: str) -> dict[str, str]:
        return {"entity": "Account", "id": rid}

    hidden = stranger.post(LIST, variables(account))
    absent = stranger.post(LIST, variables(missing))
    assert hidden["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert same(json.dumps(hidden), account) == same(json.dumps(absent), missing)

    refused, nothing = upload(stranger, account, PDF), upload(stranger, missing, PDF)
    assert refused.status_code == nothing.status_code == 404
    assert same(refused.text, account) == same(nothing.text, missing)
    assert len(listed(owner, account)) == 1 and len(objects(moto_endpoint, bucket)) == 1


def test_oversized_and_unwanted_files_are_refused_and_leave_nothing(
    deployment: Deployment, moto_endpoint: str, bucket: str
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=True)
    account = deployment.account(deployment.admin)
    too_big = upload(deployment.admin, account, b"%PDF-1.7\n" + b"0" * MAX_BYTES)
    assert too_big.status_code == 413
    assert too_big.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"
    program = upload(deployment.admin, account, b"MZ\x90\x00\x03" + os.urandom(512), "报价.pdf")
    assert program.status_code == 415
    assert program.json()["errors"][0]["extensions"]["code"] == "UNSUPPORTED_MEDIA_TYPE"
    unnamed = upload(deployment.admin, account, PDF, "../..")
    assert unnamed.status_code == 400
    assert unnamed.json()["errors"][0]["extensions"]["field"] == "filename"
    assert listed(deployment.admin, account) == []
    assert objects(moto_endpoint, bucket) == []
    count = deployment.admin.data("{ attachments { totalCount } }")["attachments"]["totalCount"]
    assert count == 0


def test_names_are_made_safe_and_deleting_the_record_removes_its_objects(
    deployment: Deployment, moto_endpoint: str, bucket: str, qiao_worker: Any
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=True)
    account = deployment.account(deployment.admin)
    answer = upload(deployment.admin, account, PDF, "..\\C:\\temp/../合同\u202e扫描件.pdf")
    assert answer.json()["filename"] == "合同扫描件.pdf"
    assert upload(deployment.admin, account, PDF, "第二份.pdf").status_code == 201
    assert len(objects(moto_endpoint, bucket)) == 2
    deployment.admin.data("mutation($id: ID!) { deleteAccount(id: $id) }", {"id": account})
    count = deployment.admin.data("{ attachments { totalCount } }")["attachments"]["totalCount"]
    assert count == 0
    drain(qiao_worker)
    assert objects(moto_endpoint, bucket) == []


def test_the_local_disk_store_seals_files_and_serves_them_through_signed_links(
    deployment: Deployment, tmp_path: Path, qiao_worker: Any
) -> None:
    add_connector(
        deployment.admin,
        name="本地存储",
        vendor="OBJECTSTORE",
        settings={
            "kind": "local",
            "directory": str(tmp_path / "files"),
            "encrypt": True,
            "link_base": deployment.server.url,
        },
    )
    account = deployment.account(deployment.admin)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(1024)
    created = upload(deployment.admin, account, png, "现场照片.png").json()
    on_disk = (tmp_path / "files" / "attachments" / created["id"]).read_bytes()
    assert png[8:64] not in on_disk
    (item,) = listed(deployment.admin, account)
    assert httpx.get(item["downloadUrl"]).content == png
    deployment.admin.data("mutation($id: ID!) { removeAttachment(id: $id) }", {"id": created["id"]})
    assert listed(deployment.admin, account) == []
    drain(qiao_worker)
    assert not (tmp_path / "files" / "attachments" / created["id"]).exists()
    assert httpx.get(item["downloadUrl"]).status_code == 404


def test_a_connector_without_what_its_kind_needs_is_refused(deployment: Deployment) -> None:
    errors = deployment.admin.errors(
        "mutation($input: ConnectorCreateInput!) { createConnector(input: $input) { id } }",
        {"input": {"name": "存储", "vendor": "OBJECTSTORE", "settings": {"kind": "s3"}}},
    )
    assert errors[0]["extensions"]["field"] == "settings"
    assert "endpoint" in errors[0]["message"]


def test_an_erased_record_takes_its_objects_along_though_its_events_carry_no_values(
    deployment: Deployment, moto_endpoint: str, bucket: str, qiao_worker: Any
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=False)
    account = deployment.account(deployment.admin)
    assert upload(deployment.admin, account, PDF).status_code == 201
    records = deployment.runtime.records
    with records.transaction(Actor.system(), Source.ERASURE) as ctx:
        records.delete(ctx, "account", account)
    drain(qiao_worker)
    assert objects(moto_endpoint, bucket) == []


def test_a_colleague_who_reads_the_record_but_may_not_change_it_lists_but_cannot_upload(
    deployment: Deployment, moto_endpoint: str, bucket: str
) -> None:
    add_s3(deployment, moto_endpoint, bucket, encrypt=True)
    records = deployment.runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        team = records.create(ctx, "team", {"name": "苏州组", "code": "suzhou", "kind": "TEAM"})
    owner = deployment.user("zhang", "sales_rep", team["id"])
    colleague = deployment.user("li", "sales_rep", team["id"])
    account = deployment.account(owner)
    assert upload(owner, account, PDF).status_code == 201
    (seen,) = listed(colleague, account)
    assert httpx.get(seen["downloadUrl"]).content == PDF
    refused = upload(colleague, account, PDF)
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    errors = colleague.errors(
        "mutation($id: ID!) { removeAttachment(id: $id) }", {"id": seen["id"]}
    )
    assert errors[0]["extensions"]["code"] == "FORBIDDEN"
    assert len(listed(owner, account)) == 1

"""The IMAP inbox as a sync, through the worker against the fake IMAP4rev1 server: mail
into activities matched to contacts (one by a sealed e-mail field's blind index),
attachments kept in the object store, each message once."""

from __future__ import annotations

import email.utils
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest

from qiao.core.events.queue import list_deliveries
from qiao.core.hookmarkers import hookimpl
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.server import LiveServer
from qiao.core.testing.worker import drain

from .deployment import add_connector, calls, connector_command
from .fakes.imap import FakeImap

USER, PASSWORD = "crm@hengtong.cn", "imap-pw"
PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" + bytes(range(256))
ACTIVITIES = (
    "{ activities(orderBy: [{field: OCCURRED_AT}]) { edges { node { "
    "id subject kind channel emailMessageId contact { name } lead { email } } } } }"
)
ATTACHMENTS = """
query($id: ID!) { recordAttachments(entity: "Activity", id: $id) { filename size downloadUrl } }
"""


class PrivateEmail:
    """Adds a sealed, searchable ``contact.private_email``."""

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [Path(__file__).with_name("private_email.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return (PrivateEmail(),)


@pytest.fixture
def imap() -> Iterator[FakeImap]:
    with FakeImap(USER, PASSWORD).serve() as fake:
        yield fake


def mail(
    sender: str,
    subject: str,
    message_id: str | None,
    attachment: tuple[str, bytes] | None = None,
    day: int = 1,
) -> bytes:
    message = EmailMessage()
    message["From"] = email.utils.formataddr(("客户", sender))
    message["To"] = USER
    message["Subject"] = subject
    message["Date"] = f"Mon, {day:02d} Jun 2026 09:00:00 +0800"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("您好，附件是模具图纸，请查收。")
    if attachment:
        name, data = attachment
        message.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    return message.as_bytes()


def add_inbox(client: GraphQLClient, fake: FakeImap, password: str = PASSWORD, **more: Any) -> str:
    return add_connector(
        client,
        name="销售邮箱",
        vendor="IMAP",
        settings={"host": "127.0.0.1", "port": fake.port, "username": USER, "ssl": False, **more},
        appSecret=password,
    )


def add_store(client: GraphQLClient, server: LiveServer, folder: Path) -> None:
    add_connector(
        client,
        name="文件存储",
        vendor="OBJECTSTORE",
        settings={
            "kind": "local",
            "directory": str(folder),
            "encrypt": True,
            "link_base": server.url,
        },
    )


def sync(client: GraphQLClient, worker: Any) -> None:
    client.data('mutation { syncConnector(name: "销售邮箱") }')
    drain(worker)


def activities(client: GraphQLClient) -> list[dict[str, Any]]:
    return [e["node"] for e in client.data(ACTIVITIES)["activities"]["edges"]]


def contact(client: GraphQLClient, name: str, **values: Any) -> None:
    client.data(
        "mutation($input: ContactCreateInput!) { createContact(input: $input) { id } }",
        {"input": {"name": name, **values}},
    )


def test_mail_from_contacts_becomes_activities_with_their_attachments(
    qiao_client: GraphQLClient,
    qiao_worker: Any,
    qiao_server: LiveServer,
    imap: FakeImap,
    tmp_path: Path,
) -> None:
    contact(qiao_client, "王经理", privateEmail="Wang.Jingli@Example.cn")
    contact(qiao_client, "李工", email="li.gong@example.cn")
    add_store(qiao_client, qiao_server, tmp_path / "files")
    box = imap.boxes["INBOX"]
    box.add(mail("wang.jingli@example.cn", "模具图纸", "<a1@example.cn>", ("图纸.pdf", PDF)))
    box.add(mail("li.gong@example.cn", "报价确认", "<a2@example.cn>", day=2))
    add_inbox(qiao_client, imap)
    sync(qiao_client, qiao_worker)

    found = activities(qiao_client)
    assert [(a["subject"], a["contact"]["name"]) for a in found] == [
        ("模具图纸", "王经理"),
        ("报价确认", "李工"),
    ]
    assert found[0]["kind"] == "EMAIL" and found[0]["emailMessageId"] == "<a1@example.cn>"
    (kept,) = qiao_client.data(ATTACHMENTS, {"id": found[0]["id"]})["recordAttachments"]
    assert (kept["filename"], kept["size"]) == ("图纸.pdf", len(PDF))
    assert httpx.get(kept["downloadUrl"]).content == PDF
    sealed = next((tmp_path / "files" / "attachments").iterdir()).read_bytes()
    assert PDF[:40] not in sealed


def test_reruns_and_a_renumbered_mailbox_take_nothing_twice(
    qiao_client: GraphQLClient, qiao_worker: Any, imap: FakeImap
) -> None:
    contact(qiao_client, "李工", email="li.gong@example.cn")
    box = imap.boxes["INBOX"]
    box.add(mail("li.gong@example.cn", "第一封", "<b1@example.cn>"))
    box.add(mail("li.gong@example.cn", "无编号", None, day=2))
    add_inbox(qiao_client, imap)
    sync(qiao_client, qiao_worker)
    assert len(activities(qiao_client)) == 2
    sync(qiao_client, qiao_worker)
    assert len(activities(qiao_client)) == 2
    assert imap.commands.count("UID FETCH") == 2

    box.renumber()
    sync(qiao_client, qiao_worker)
    assert len(activities(qiao_client)) == 2
    assert imap.commands.count("UID FETCH") == 4  # read again from the start, kept once

    box.add(mail("li.gong@example.cn", "第三封", "<b3@example.cn>", day=3))
    sync(qiao_client, qiao_worker)
    assert [a["subject"] for a in activities(qiao_client)] == ["第一封", "无编号", "第三封"]
    assert imap.commands.count("UID FETCH") == 5


def test_mail_from_nobody_known_is_logged_or_made_a_lead(
    qiao_client: GraphQLClient, qiao_worker: Any, imap: FakeImap
) -> None:
    box = imap.boxes["INBOX"]
    box.add(mail("new.buyer@example.cn", "询价", "<c1@example.cn>"))
    connector = add_inbox(qiao_client, imap)
    sync(qiao_client, qiao_worker)
    assert activities(qiao_client) == []
    assert ("match mail", "PARTIAL", None) in calls(qiao_client)

    qiao_client.data(
        "mutation($id: ID!, $input: ConnectorUpdateInput!) "
        "{ updateConnector(id: $id, input: $input) { id } }",
        {
            "id": connector,
            "input": {
                "settings": {
                    "host": "127.0.0.1",
                    "port": imap.port,
                    "username": USER,
                    "ssl": False,
                    "unmatched": "lead",
                }
            },
        },
    )
    box.add(mail("new.buyer@example.cn", "再次询价", "<c2@example.cn>", day=2))
    sync(qiao_client, qiao_worker)
    (made,) = activities(qiao_client)
    assert made["subject"] == "再次询价" and made["lead"] == {"email": "new.buyer@example.cn"}


def test_a_refused_login_is_logged_and_waits_in_the_outbox(
    qiao_client: GraphQLClient, qiao_worker: Any, imap: FakeImap, qiao_runtime: Any
) -> None:
    imap.boxes["INBOX"].add(mail("li.gong@example.cn", "第一封", "<d1@example.cn>"))
    add_inbox(qiao_client, imap, password="wrong")
    sync(qiao_client, qiao_worker)
    assert activities(qiao_client) == []
    assert ("fetch", "ERROR", None) in calls(qiao_client)
    with qiao_runtime.db.read() as conn:
        waiting = list_deliveries(conn, statuses=("pending", "failed"))
    assert [d["handler"] for d in waiting] == ["connectors.sync"]
    status = qiao_client.data('{ connectorStatus(name: "销售邮箱") { lastError } }')
    assert "LOGIN refused" in status["connectorStatus"][0]["lastError"]


def test_the_cli_adds_an_inbox_and_syncs_it(
    qiao_runtime: Any, qiao_config: Any, qiao_worker: Any, imap: FakeImap, qiao_client: Any
) -> None:
    contact(qiao_client, "李工", email="li.gong@example.cn")
    imap.boxes["INBOX"].add(mail("li.gong@example.cn", "命令行", "<e1@example.cn>"))
    run = connector_command(qiao_config.path)
    settings = ["host=127.0.0.1", f"port={imap.port}", f"username={USER}", "ssl=false"]
    pairs = [arg for pair in settings for arg in ("--setting", pair)]
    run("add", "imap", "销售邮箱", *pairs, "--secret", "app_secret", input=f"{PASSWORD}\n")
    assert "sync of 销售邮箱 requested" in run("sync", "销售邮箱")
    drain(qiao_worker)
    assert [a["subject"] for a in activities(qiao_client)] == ["命令行"]
    assert "销售邮箱 (imap) active" in run("status", "销售邮箱")

"""SMTP sending against aiosmtpd, IMAP fetching against a small IMAP4rev1 server."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from qiao.core.testing.deployment import free_port
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.common.calls import CallRecord
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    RecipientsRejectedError,
    UnavailableError,
)
from qiao.plugins.connectors.email.imap import ImapInbox, ImapSettings, Watermark
from qiao.plugins.connectors.email.smtp import Attachment, Mail, SmtpSender, SmtpSettings

from .conftest import statuses
from .fakes.imap import FakeImap

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n" + bytes(range(256))


class Inbox:
    """aiosmtpd handler: refuses unknown mailboxes at RCPT TO, keeps what it accepts."""

    def __init__(self) -> None:
        self.known = {"li.na@example.cn", "zhang.wei@example.cn"}
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.greylist = 0

    async def handle_RCPT(
        self, server: Any, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.greylist:
            self.greylist -= 1
            return "451 4.7.1 Greylisted, try again later"
        if address not in self.known:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


def authenticate(
    server: Any, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        b"crm",
        b"pw",
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox, hostname="127.0.0.1", port=port, authenticator=authenticate, auth_require_tls=False
    )
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def sender(port: int, wiring: Wiring, password: str = "pw") -> SmtpSender:
    settings = SmtpSettings(
        "127.0.0.1",
        port,
        "noreply@crm.example.cn",
        username="crm",
        password=password,
        security="none",
        timeout=5,
    )
    return SmtpSender(settings, wiring=wiring)


def test_a_mail_with_a_pdf_reaches_the_server_intact(
    smtp: tuple[Inbox, int], wiring: Wiring, calls: list[CallRecord]
) -> None:
    inbox, port = smtp
    mail = Mail(
        to=("li.na@example.cn",),
        subject="发票 INV-2026-001",
        text="请查收附件。",
        html="<p>请查收附件。</p>",
        bcc=("zhang.wei@example.cn",),
        attachments=(Attachment("发票.pdf", PDF, "application/pdf"),),
    )
    sent = sender(port, wiring).send(mail)
    ((recipients, message),) = inbox.received
    assert recipients == ["li.na@example.cn", "zhang.wei@example.cn"]
    assert message["Subject"] == "发票 INV-2026-001" and "Bcc" not in message
    assert message["Message-ID"] == sent.message_id and sent.refused == {}
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "发票.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_payload(decode=True) == PDF
    assert message.get_body(("html",)).get_content().strip() == "<p>请查收附件。</p>"
    assert statuses(calls, "send") == ["ok"]


def test_refused_recipients_are_reported_and_the_rest_delivered(
    smtp: tuple[Inbox, int], wiring: Wiring, calls: list[CallRecord]
) -> None:
    inbox, port = smtp
    mail = Mail(to=("li.na@example.cn", "nobody@example.cn"), subject="通知", text="正文")
    sent = sender(port, wiring).send(mail)
    assert list(sent.refused) == ["nobody@example.cn"]
    assert sent.refused["nobody@example.cn"].startswith("550")
    assert inbox.received[0][0] == ["li.na@example.cn"]
    assert statuses(calls, "send") == ["partial"]


def test_all_recipients_refused_is_a_failure(smtp: tuple[Inbox, int], wiring: Wiring) -> None:
    inbox, port = smtp
    with pytest.raises(RecipientsRejectedError, match=r"nobody@example\.cn: 550"):
        sender(port, wiring).send(Mail(to=("nobody@example.cn",), subject="s", text="t"))
    assert inbox.received == []


def test_greylisting_is_retried_after_a_pause(
    smtp: tuple[Inbox, int], wiring: Wiring, calls: list[CallRecord]
) -> None:
    inbox, port = smtp
    inbox.greylist = 1
    sender(port, wiring).send(Mail(to=("li.na@example.cn",), subject="s", text="t"))
    assert statuses(calls, "send") == ["error:451", "ok"]
    assert len(inbox.received) == 1


def test_a_wrong_password_is_an_authentication_error(
    smtp: tuple[Inbox, int], wiring: Wiring
) -> None:
    _, port = smtp
    with pytest.raises(AuthenticationError) as caught:
        sender(port, wiring, password="wrong").send(
            Mail(to=("li.na@example.cn",), subject="s", text="t")
        )
    assert caught.value.code == "535"


def test_an_unreachable_server_is_retried_then_reported(
    wiring: Wiring, calls: list[CallRecord]
) -> None:
    with pytest.raises(UnavailableError):
        sender(free_port(), wiring).send(Mail(to=("li.na@example.cn",), subject="s", text="t"))
    assert len(statuses(calls, "send")) == 4


def make_mail(n: int, attachment: bytes | None = None) -> bytes:
    message = EmailMessage()
    message["From"] = "王家长 <Parent.Wang@Example.cn>"
    message["To"] = "admissions@school.example.cn"
    message["Subject"] = f"咨询 {n}"
    message["Message-ID"] = f"<m{n}@example.cn>"
    message["Date"] = "Thu, 01 Jan 2026 08:00:00 +0800"
    message.set_content(f"第{n}封：请问暑期班还有名额吗？")
    if attachment is not None:
        message.add_attachment(
            attachment, maintype="application", subtype="pdf", filename="成绩单.pdf"
        )
    return message.as_bytes()


@pytest.fixture
def imap() -> Iterator[FakeImap]:
    with FakeImap("admissions", "imap-pw").serve() as server:
        yield server


def inbox_of(server: FakeImap, wiring: Wiring, password: str = "imap-pw") -> ImapInbox:
    settings = ImapSettings(
        "127.0.0.1", server.port, "admissions", password, use_ssl=False, timeout=5
    )
    return ImapInbox(settings, wiring=wiring)


def test_new_mail_is_fetched_with_attachments_after_the_watermark(
    imap: FakeImap, wiring: Wiring
) -> None:
    box = imap.boxes["INBOX"]
    box.add(make_mail(1, PDF))
    box.add(make_mail(2))
    reader = inbox_of(imap, wiring)
    first, watermark = reader.fetch_new(None)
    assert [m.uid for m in first] == [101, 102]
    mail = first[0]
    assert mail.sender == "parent.wang@example.cn" and mail.subject == "咨询 1"
    assert mail.message_id == "<m1@example.cn>" and mail.to == ("admissions@school.example.cn",)
    assert mail.text is not None and "暑期班" in mail.text
    (attachment,) = mail.attachments
    assert (attachment.filename, attachment.content) == ("成绩单.pdf", PDF)
    assert watermark == Watermark(box.uidvalidity, 102)
    again, same = reader.fetch_new(watermark)
    assert again == [] and same == watermark
    box.add(make_mail(3))
    third, later = reader.fetch_new(watermark)
    assert [m.subject for m in third] == ["咨询 3"] and later.last_uid == 103
    assert "UID SEARCH" in imap.commands and "EXAMINE" in imap.commands


def test_fetching_pages_to_the_end_in_batches(
    imap: FakeImap, wiring: Wiring, calls: list[CallRecord]
) -> None:
    for n in range(7):
        imap.boxes["INBOX"].add(make_mail(n))
    mails = list(inbox_of(imap, wiring).fetch_all_new(None, limit=3))
    assert [m.subject for m in mails] == [f"咨询 {n}" for n in range(7)]
    assert statuses(calls, "fetch") == ["ok", "ok", "ok"]


def test_a_new_uidvalidity_reads_the_mailbox_again(imap: FakeImap, wiring: Wiring) -> None:
    box = imap.boxes["INBOX"]
    box.add(make_mail(1))
    box.add(make_mail(2))
    reader = inbox_of(imap, wiring)
    _, watermark = reader.fetch_new(None)
    box.renumber()
    mails, renewed = reader.fetch_new(watermark)
    assert [m.uid for m in mails] == [1, 2]
    assert renewed == Watermark(box.uidvalidity, 2)


def test_a_refused_login_is_an_authentication_error(imap: FakeImap, wiring: Wiring) -> None:
    with pytest.raises(AuthenticationError, match="Invalid credentials"):
        inbox_of(imap, wiring, password="wrong").fetch_new(None)

"""Sending mail over SMTP (RFC 5321) with attachments, through the common caller.

SMTP reports per recipient: a server may accept some RCPT TO and refuse others, and
still take the message for the accepted ones. That is reported like WeCom's invalid
users (a partial result, recorded as such), while a message no recipient accepted is a
failure. Reply codes decide retrying: 4xx is transient (greylisting, a full queue), 5xx
is final. A connection that breaks after DATA may have delivered the message, so sends
are not retried then.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Literal

from qiao.plugins.connectors.common.caller import Caller, Wiring
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ConnectorError,
    RecipientsRejectedError,
    UnavailableError,
    VendorError,
)
from qiao.plugins.connectors.common.ratelimit import RateLimits
from qiao.plugins.connectors.common.retry import RetryPolicy

VENDOR = "smtp"
Security = Literal["ssl", "starttls", "none"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    content_type: str = "application/octet-stream"


@dataclass(frozen=True)
class Mail:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    reply_to: str | None = None


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    security: Security = "starttls"
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None


@dataclass(frozen=True)
class Sent:
    message_id: str
    refused: dict[str, str] = field(default_factory=dict)


class SmtpSender:
    """Sends :class:`Mail` through one SMTP server, one connection per message."""

    def __init__(
        self,
        settings: SmtpSettings,
        *,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
        limits: RateLimits | None = None,
    ) -> None:
        self._settings = settings
        wiring = wiring or Wiring()
        self._caller = Caller(VENDOR, wiring, retry=retry, limits=limits)

    def build(self, mail: Mail) -> EmailMessage:
        """The MIME message for ``mail`` (Bcc recipients are not written into it)."""
        if not (mail.to or mail.cc or mail.bcc):
            raise ValueError("a mail needs at least one recipient")
        message = EmailMessage()
        message["From"] = self._settings.sender
        if mail.to:
            message["To"] = ", ".join(mail.to)
        if mail.cc:
            message["Cc"] = ", ".join(mail.cc)
        if mail.reply_to:
            message["Reply-To"] = mail.reply_to
        message["Subject"] = mail.subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self._settings.sender.rpartition("@")[2] or None)
        message.set_content(mail.text)
        if mail.html is not None:
            message.add_alternative(mail.html, subtype="html")
        for attachment in mail.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            message.add_attachment(
                attachment.content,
                maintype=maintype,
                subtype=subtype or "octet-stream",
                filename=attachment.filename,
            )
        return message

    def send(self, mail: Mail) -> Sent:
        """Send ``mail``; recipients the server refused are listed in the result."""
        message = self.build(mail)
        recipients = [*mail.to, *mail.cc, *mail.bcc]
        refused = self._caller.call(
            "send",
            lambda _t: self._deliver(message, recipients),
            payload=message.as_bytes(),
            idempotent=False,
            partial=_shortfall,
        )
        return Sent(str(message["Message-ID"]), refused)

    def _deliver(self, message: EmailMessage, recipients: Sequence[str]) -> dict[str, str]:
        settings = self._settings
        try:
            with self._connect() as smtp:
                if settings.username is not None:
                    smtp.login(settings.username, settings.password or "")
                refused = smtp.send_message(message, to_addrs=list(recipients))
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            detail = "; ".join(f"{r}: {c} {_text(m)}" for r, (c, m) in error.recipients.items())
            if all(400 <= code < 500 for code in codes):
                raise UnavailableError(
                    VENDOR, f"recipients deferred: {detail}", code=codes[0]
                ) from None
            raise RecipientsRejectedError(VENDOR, f"every recipient refused: {detail}") from None
        except smtplib.SMTPAuthenticationError as error:
            raise AuthenticationError(
                VENDOR, _text(error.smtp_error), code=error.smtp_code
            ) from None
        except smtplib.SMTPResponseException as error:
            raise _reply_error(error.smtp_code, _text(error.smtp_error)) from None
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            raise UnavailableError(
                VENDOR, f"SMTP connection failed: {error}", maybe_processed=True
            ) from None
        return {r: f"{c} {_text(m)}" for r, (c, m) in refused.items()}

    def _connect(self) -> smtplib.SMTP:
        s = self._settings
        context = s.ssl_context or ssl.create_default_context()
        try:
            if s.security == "ssl":
                return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.security == "starttls":
                smtp.starttls(context=context)
            return smtp
        except (smtplib.SMTPConnectError, OSError) as error:
            raise UnavailableError(VENDOR, f"cannot reach {s.host}:{s.port}: {error}") from None


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _reply_error(code: int, message: str) -> ConnectorError:
    if 400 <= code < 500:
        return UnavailableError(VENDOR, message, code=code)
    return VendorError(VENDOR, message, code=code)


def _shortfall(refused: dict[str, str]) -> str | None:
    return f"{len(refused)} recipients refused" if refused else None

"""Fetching new mail over IMAP4rev1 (RFC 3501) since a UID watermark.

A mailbox's messages have UIDs that only grow, within one UIDVALIDITY. The watermark is
the pair (UIDVALIDITY, last UID fetched): ``UID SEARCH UID n+1:*`` finds what came
since, and ``UID FETCH uid (UID RFC822)`` reads each message whole, attachments
included, without the side effects of a sequence-number fetch. Two traps handled here:
``n+1:*`` always matches the newest message even when its UID is ``n`` or lower (RFC
3501, 6.4.8), so UIDs at or below the watermark are dropped; and a changed UIDVALIDITY
means the UIDs were renumbered, so the mailbox is read again from the start (the sync
dedupes on Message-ID).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import imaplib
import re
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import getaddresses, parsedate_to_datetime
from typing import Any

from qiao.plugins.connectors.common.caller import Caller, Wiring
from qiao.plugins.connectors.common.errors import (
    AuthenticationError,
    ProtocolError,
    UnavailableError,
    VendorError,
)
from qiao.plugins.connectors.common.retry import RetryPolicy

VENDOR = "imap"
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")
_UID = re.compile(rb"UID (\d+)")


@dataclass(frozen=True)
class Watermark:
    uidvalidity: int
    last_uid: int


@dataclass(frozen=True)
class FetchedAttachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True)
class FetchedMail:
    uid: int
    message_id: str | None
    sender: str | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    subject: str
    date: Any
    text: str | None
    html: str | None
    attachments: tuple[FetchedAttachment, ...]
    raw: bytes


@dataclass(frozen=True)
class ImapSettings:
    host: str
    port: int
    username: str
    password: str
    mailbox: str = "INBOX"
    use_ssl: bool = True
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None


class ImapInbox:
    """Reads one mailbox of one account, read-only (nothing is marked or moved)."""

    def __init__(
        self,
        settings: ImapSettings,
        *,
        wiring: Wiring | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._settings = settings
        self._caller = Caller(VENDOR, wiring or Wiring(), retry=retry)

    def fetch_new(
        self, since: Watermark | None, limit: int = 50
    ) -> tuple[list[FetchedMail], Watermark]:
        """Up to ``limit`` messages after ``since``, oldest first, and the new watermark.

        Call again with the returned watermark until it comes back with no messages.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        return self._caller.call(
            "fetch",
            lambda _t: self._fetch(since, limit),
            payload={"mailbox": self._settings.mailbox, "since": since and since.last_uid},
        )

    def fetch_all_new(self, since: Watermark | None, limit: int = 50) -> Iterator[FetchedMail]:
        """Every message after ``since``, batch by batch, to the end."""
        watermark = since
        while True:
            batch, watermark = self.fetch_new(watermark, limit)
            yield from batch
            if len(batch) < limit:
                return

    def _fetch(self, since: Watermark | None, limit: int) -> tuple[list[FetchedMail], Watermark]:
        s = self._settings
        try:
            client = self._open()
            try:
                self._login(client)
                _ok(client.select(_quote(s.mailbox), readonly=True), "SELECT")
                uidvalidity = self._uidvalidity(client)
                start = 0
                if since is not None and since.uidvalidity == uidvalidity:
                    start = since.last_uid
                typ, data = client.uid("SEARCH", f"UID {start + 1}:*")
                _ok((typ, data), "UID SEARCH")
                uids = sorted(int(u) for u in (data[0] or b"").split() if int(u) > start)[:limit]
                mails = [self._message(client, uid) for uid in uids]
                last = uids[-1] if uids else start
                return mails, Watermark(uidvalidity, last)
            finally:
                # What was read stands; a failed goodbye only leaves the server to time out.
                with contextlib.suppress(imaplib.IMAP4.error, OSError):
                    client.logout()
        except imaplib.IMAP4.abort as error:
            raise UnavailableError(VENDOR, f"IMAP connection dropped: {error}") from None
        except imaplib.IMAP4.error as error:
            raise VendorError(VENDOR, str(error)) from None
        except OSError as error:
            raise UnavailableError(VENDOR, f"cannot reach {s.host}:{s.port}: {error}") from None

    def _login(self, client: imaplib.IMAP4) -> None:
        try:
            client.login(self._settings.username, self._settings.password)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as error:
            text = error.args[0] if error.args else error
            text = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
            raise AuthenticationError(VENDOR, f"LOGIN refused: {text}") from None

    def _open(self) -> imaplib.IMAP4:
        s = self._settings
        if s.use_ssl:
            context = s.ssl_context or ssl.create_default_context()
            return imaplib.IMAP4_SSL(s.host, s.port, ssl_context=context, timeout=s.timeout)
        return imaplib.IMAP4(s.host, s.port, timeout=s.timeout)

    def _uidvalidity(self, client: imaplib.IMAP4) -> int:
        _, data = client.response("UIDVALIDITY")
        if data and data[0]:
            return int(data[0])
        typ, status = client.status(_quote(self._settings.mailbox), "(UIDVALIDITY)")
        match = _UIDVALIDITY.search(status[0] or b"") if typ == "OK" and status else None
        if match is None:
            raise ProtocolError(VENDOR, "the server reported no UIDVALIDITY")
        return int(match.group(1))

    def _message(self, client: imaplib.IMAP4, uid: int) -> FetchedMail:
        typ, data = client.uid("FETCH", str(uid), "(UID RFC822)")
        _ok((typ, data), "UID FETCH")
        for part in data:
            if isinstance(part, tuple) and _UID.search(part[0]):
                return parse_mail(uid, part[1])
        raise ProtocolError(VENDOR, f"UID FETCH {uid} returned no message")


def parse_mail(uid: int, raw: bytes) -> FetchedMail:
    """A fetched message's headers, bodies and attachments (decoded, names unfolded)."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    if not isinstance(message, EmailMessage):
        raise ProtocolError(VENDOR, f"message {uid} could not be parsed")
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    attachments = tuple(
        FetchedAttachment(
            part.get_filename() or "attachment",
            part.get_content_type(),
            _content(part),
        )
        for part in message.iter_attachments()
    )
    date = message["Date"]
    return FetchedMail(
        uid=uid,
        message_id=str(message["Message-ID"]) if message["Message-ID"] else None,
        sender=_addresses(message, "From")[0] if message["From"] else None,
        to=_addresses(message, "To"),
        cc=_addresses(message, "Cc"),
        subject=str(message["Subject"] or ""),
        date=parsedate_to_datetime(str(date)) if date else None,
        text=text.get_content() if text is not None else None,
        html=html.get_content() if html is not None else None,
        attachments=attachments,
        raw=raw,
    )


def _content(part: EmailMessage) -> bytes:
    """An attachment's decoded bytes; empty for one with no content to decode (an attached
    multipart message, whose payload is its parts)."""
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _addresses(message: EmailMessage, header: str) -> tuple[str, ...]:
    return tuple(addr.lower() for _, addr in getaddresses(message.get_all(header, [])) if addr)


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _ok(answer: tuple[str, Any], command: str) -> None:
    typ, data = answer
    if typ != "OK":
        text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
        raise VendorError(VENDOR, f"{command} failed: {text}")

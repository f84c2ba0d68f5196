"""A small IMAP4rev1 server (RFC 3501): LOGIN, SELECT/EXAMINE, UID SEARCH, UID FETCH, LOGOUT.

Enough of the protocol for a client reading new mail by UID, including the rule that
trips clients: a UID range ``n:*`` with ``n`` above every UID still matches the newest
message (``*`` is the largest UID and a range is the same both ways round).
"""

from __future__ import annotations

import re
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

_TOKEN = re.compile(rb'"((?:[^"\\]|\\.)*)"|(\S+)')


def parse_args(line: bytes) -> list[bytes]:
    return [
        re.sub(rb"\\(.)", rb"\1", m.group(1)) if m.group(1) is not None else m.group(2)
        for m in _TOKEN.finditer(line)
    ]


@dataclass
class Mailbox:
    uidvalidity: int = 3_857_529_045
    messages: list[tuple[int, bytes]] = field(default_factory=list)
    next_uid: int = 101

    def add(self, raw: bytes) -> int:
        uid = self.next_uid
        self.messages.append((uid, raw))
        self.next_uid += 1
        return uid

    def renumber(self) -> None:
        """What a server does after a rebuild: new UIDVALIDITY, UIDs from 1."""
        self.uidvalidity += 1
        self.messages = [(i + 1, raw) for i, (_, raw) in enumerate(self.messages)]
        self.next_uid = len(self.messages) + 1


class FakeImap:
    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password
        self.boxes = {"INBOX": Mailbox()}
        self.commands: list[str] = []
        self.port = 0

    @contextmanager
    def serve(self) -> Iterator[FakeImap]:
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                Session(fake, self.rfile, self.wfile).run()

        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            server.shutdown()
            server.server_close()


class Session:
    def __init__(self, fake: FakeImap, rfile: object, wfile: object) -> None:
        self.fake, self.rfile, self.wfile = fake, rfile, wfile
        self.user: str | None = None
        self.box: Mailbox | None = None

    def send(self, data: bytes) -> None:
        self.wfile.write(data)  # type: ignore[attr-defined]

    def run(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1] fake server ready\r\n")
        while True:
            line = self.rfile.readline()  # type: ignore[attr-defined]
            if not line:
                return
            tag, _, rest = line.rstrip(b"\r\n").partition(b" ")
            command, _, args = rest.partition(b" ")
            name = command.upper().decode()
            self.fake.commands.append(
                name if name != "UID" else "UID " + args.split(b" ")[0].upper().decode()
            )
            if not self.dispatch(tag, name, args):
                return

    def dispatch(self, tag: bytes, name: str, args: bytes) -> bool:
        if name == "CAPABILITY":
            self.send(
                b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + tag + b" OK CAPABILITY completed\r\n"
            )
        elif name == "NOOP":
            self.send(tag + b" OK NOOP completed\r\n")
        elif name == "LOGOUT":
            self.send(b"* BYE logging out\r\n" + tag + b" OK LOGOUT completed\r\n")
            return False
        elif name == "LOGIN":
            user, password = (a.decode() for a in parse_args(args)[:2])
            if (user, password) != (self.fake.username, self.fake.password):
                self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials\r\n")
            else:
                self.user = user
                self.send(tag + b" OK LOGIN completed\r\n")
        elif self.user is None:
            self.send(tag + b" BAD command not allowed before LOGIN\r\n")
        elif name in ("SELECT", "EXAMINE"):
            self.select(tag, name, parse_args(args)[0].decode())
        elif name == "UID" and self.box is not None:
            self.uid_command(tag, args)
        else:
            self.send(tag + b" BAD unknown or misplaced command\r\n")
        return True

    def select(self, tag: bytes, name: str, mailbox: str) -> None:
        box = self.fake.boxes.get(mailbox)
        if box is None:
            self.send(tag + b" NO [NONEXISTENT] no such mailbox\r\n")
            return
        self.box = box
        mode = b"READ-ONLY" if name == "EXAMINE" else b"READ-WRITE"
        self.send(
            b"* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)\r\n"
            + b"* %d EXISTS\r\n* 0 RECENT\r\n" % len(box.messages)
            + b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % box.uidvalidity
            + b"* OK [UIDNEXT %d] Predicted next UID\r\n" % box.next_uid
            + tag
            + b" OK ["
            + mode
            + b"] "
            + name.encode()
            + b" completed\r\n"
        )

    def uids_in(self, spec: str) -> list[int]:
        assert self.box is not None
        uids = [uid for uid, _ in self.box.messages]
        largest = max(uids, default=0)
        chosen: set[int] = set()
        for item in spec.split(","):
            low, _, high = item.partition(":")
            a = largest if low == "*" else int(low)
            b = a if not high else largest if high == "*" else int(high)
            lo, hi = min(a, b), max(a, b)
            chosen.update(u for u in uids if lo <= u <= hi)
        return sorted(chosen)

    def uid_command(self, tag: bytes, args: bytes) -> None:
        assert self.box is not None
        parts = parse_args(args)
        verb = parts[0].upper()
        if verb == b"SEARCH" and len(parts) == 3 and parts[1].upper() == b"UID":
            found = self.uids_in(parts[2].decode())
            listed = b" ".join(str(u).encode() for u in found)
            self.send(
                b"* SEARCH"
                + (b" " + listed if listed else b"")
                + b"\r\n"
                + tag
                + b" OK SEARCH completed\r\n"
            )
        elif verb == b"FETCH" and len(parts) >= 3 and b"RFC822" in args.upper():
            wanted = set(self.uids_in(parts[1].decode()))
            for seq, (uid, raw) in enumerate(self.box.messages, start=1):
                if uid in wanted:
                    self.send(
                        b"* %d FETCH (UID %d RFC822 {%d}\r\n" % (seq, uid, len(raw))
                        + raw
                        + b")\r\n"
                    )
            self.send(tag + b" OK FETCH completed\r\n")
        else:
            self.send(tag + b" BAD unsupported UID command\r\n")

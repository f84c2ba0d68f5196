"""Headless Chromium driven over the DevTools protocol, for tests that need a real browser.

Chromium speaks the protocol on a pair of pipes (``--remote-debugging-pipe``:
it reads commands on fd 3 and writes answers and events on fd 4, each a JSON
message ending in a NUL byte), so no port, no WebSocket library and no
network is involved. One page is opened and attached to; everything it
requests and every error it logs is recorded for the test to inspect.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: The flags the tests launch with: no background traffic of Chromium's own.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,900",
    "--remote-debugging-pipe",
)


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or did not answer in time."""


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def chromium(
    profile: Path,
    log: Path,
    prefix: Sequence[str] = (),
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> Iterator[Chromium]:
    """A started :class:`Chromium` with its page open, stopped on leaving."""
    browser = Chromium(profile, log, prefix, env, timeout)
    try:
        browser.attach()
        yield browser
    finally:
        browser.close()


class Chromium:
    """One headless Chromium with one page (see :func:`chromium`)."""

    def __init__(
        self,
        profile: Path,
        log: Path,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Start Chromium with a fresh profile folder, its output going to ``log``.

        ``prefix`` is a command to run it under (e.g. ``nsenter --net=...``), ``env``
        its environment.
        """
        executable = find_chromium()
        if executable is None:
            raise BrowserError("no chromium executable on PATH")
        to_browser, self._commands = os.pipe()
        self._events, from_browser = os.pipe()

        def wire_pipes() -> None:
            """In the child, before exec: the pipes become fds 3 and 4 (moved out of the way
            first, as either may be 3 or 4 already); every other descriptor of ours is
            close-on-exec, as Python makes them."""
            reads = fcntl.fcntl(to_browser, fcntl.F_DUPFD_CLOEXEC, 10)
            writes = fcntl.fcntl(from_browser, fcntl.F_DUPFD_CLOEXEC, 10)
            os.dup2(reads, 3)
            os.dup2(writes, 4)

        self.log = log
        with log.open("wb") as output:
            self.process = subprocess.Popen(
                [*prefix, executable, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                env=env,
                close_fds=False,
                preexec_fn=wire_pipes,
            )
        os.close(to_browser)
        os.close(from_browser)
        self.timeout = timeout
        self._buffer = b""
        self._next_id = 0
        self._session: str | None = None
        self._closed = False
        #: Every URL the page requested, in order.
        self.requests: list[str] = []
        #: Errors the page logged: failed loads, policy violations, uncaught exceptions.
        self.errors: list[str] = []

    def attach(self) -> None:
        """Open a page and record what it requests and logs."""
        target = self.command("Target.createTarget", url="about:blank")["targetId"]
        attached = self.command("Target.attachToTarget", targetId=target, flatten=True)
        self._session = attached["sessionId"]
        for domain in ("Page", "Network", "Log", "Runtime"):
            self.command(f"{domain}.enable")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._closed:
            os.close(self._commands)
            os.close(self._events)
            self._closed = True

    # -- the protocol -------------------------------------------------------------------

    def command(self, method: str, **params: Any) -> dict[str, Any]:
        """Send ``method`` (to the page once attached) and wait for its answer."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if self._session is not None and not method.startswith("Target."):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        answer = self._wait(lambda m: m.get("id") == self._next_id, f"the answer to {method}")
        if "error" in answer:
            raise BrowserError(f"{method}: {answer['error'].get('message')}")
        return answer.get("result", {})

    def wait_for_event(self, method: str) -> dict[str, Any]:
        return self._wait(lambda m: m.get("method") == method, method)["params"]

    def _wait(self, wanted: Any, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                self._record(message)
                if wanted(message):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([self._events], [], [], remaining)[0]:
                raise BrowserError(f"no {what} within {self.timeout} s")
            chunk = os.read(self._events, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium exited while waiting for {what}: {self._stderr()}")
            self._buffer += chunk

    def _record(self, message: dict[str, Any]) -> None:
        method, params = message.get("method"), message.get("params", {})
        if method == "Network.requestWillBeSent":
            self.requests.append(params["request"]["url"])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            self.errors.append(f"{entry.get('source')}: {entry['text']} {entry.get('url', '')}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            self.errors.append(f"exception: {details.get('exception', details).get('description')}")
        elif method == "Runtime.consoleAPICalled" and params["type"] == "error":
            self.errors.append("console: " + " ".join(str(a.get("value")) for a in params["args"]))

    def _stderr(self) -> str:
        self.process.kill()
        return self.log.read_text(errors="replace")[-2000:]

    # -- what a test does with the page -------------------------------------------------

    def open(self, url: str) -> None:
        """Load ``url`` and wait for its load event."""
        self.command("Page.navigate", url=url)
        self.wait_for_event("Page.loadEventFired")

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.command(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} failed: {result['exceptionDetails']['text']}")
        return result["result"].get("value")

    def wait_until(self, expression: str, what: str) -> Any:
        """Poll ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + self.timeout
        while not (value := self.evaluate(expression)):
            if time.monotonic() > deadline:
                raise BrowserError(f"the page did not show {what} within {self.timeout} s")
            time.sleep(0.1)
        return value

    def click(self, selector: str) -> None:
        """A left click in the middle of the element ``selector`` names, as a user's mouse."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for kind in ("mousePressed", "mouseReleased"):
            self.command(
                "Input.dispatchMouseEvent",
                type=kind,
                x=box[0],
                y=box[1],
                button="left",
                clickCount=1,
            )

    def type_text(self, text: str) -> None:
        """Text typed into the focused element."""
        self.command("Input.insertText", text=text)

    def select_all(self) -> None:
        """Ctrl+A in the focused element."""
        for kind in ("rawKeyDown", "keyUp"):
            self.command(
                "Input.dispatchKeyEvent",
                type=kind,
                modifiers=2,
                key="a",
                code="KeyA",
                windowsVirtualKeyCode=65,
                commands=["selectAll"] if kind == "rawKeyDown" else [],
            )

    def screenshot(self, path: Path) -> Path:
        data = self.command("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

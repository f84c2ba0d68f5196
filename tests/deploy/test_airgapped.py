"""Qiao on a machine with no network: installed from the offline bundle, served, used in GraphiQL.

The bundle is built here with scripts/bundle (from the package index or pip's
cache) and unpacked from its archive. Everything after that runs in a network
namespace of its own that has nothing but a loopback interface (``unshare
--net``, which needs root): install.sh into a fresh virtual environment,
``qiao init --demo`` with the leads plugin (whose intent tagging loads jieba's
dictionary), ``qiao serve`` without any system time zone data, and headless
Chromium, which loads /graphql, pastes the token into GraphiQL's Headers tab,
reloads the schema into the documentation explorer, types a mutation into the
editor and presses the run button. Anything that
tried to reach another host would fail in there; the test also checks that
the page asked for nothing but Qiao's own addresses and logged no error. The
screenshot is kept in build/test-artefacts/ (or $QIAO_TEST_ARTEFACTS).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from .chromium import BrowserError, chromium, find_chromium

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PORT = 8000  # the namespace is new: nothing else can hold the port
BASE = f"http://127.0.0.1:{PORT}"
#: Debian packages the browser half needs: the browser, and a font with Chinese glyphs
#: so the screenshot shows the demo's names (Qiao itself serves no fonts).
BROWSER_PACKAGES = ("chromium", "fonts-wqy-microhei")
MUTATION = (
    'mutation { createLead(input: {name: "王工", company: "苏州精密机床厂", '
    'mobile: "13800138000", description: "急需液压阀样品，下周采购"}) '
    "{ name intentScore intentTags } }"
)


def test_the_bundle_installs_and_graphiql_works_with_no_network(
    tmp_path: Path, artefacts: Path
) -> None:
    chromium_ready()
    bundle = build_and_unpack(tmp_path)
    home, tmp = tmp_path / "home", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "TMPDIR": str(tmp),
        "LANG": "C.UTF-8",
        "PYTHONTZPATH": "",  # no system time zone data, as on minimal images
    }
    with no_network() as inside:
        unreachable = run(inside, env, sys.executable, "-c", PROBE, check=False)
        assert unreachable.returncode == 0, f"the namespace reaches out: {unreachable.stdout}"

        venv = tmp_path / "venv"
        run(inside, env, "bash", str(bundle / "install.sh"), str(venv))
        assert installed(venv) <= wheels_of(bundle)  # all from the bundle, nothing else
        qiao = str(venv / "bin" / "qiao")
        site = tmp_path / "site"
        made = run(
            inside, env, qiao, "init", str(site), "--demo", "--plugin", "crm", "--plugin", "leads"
        )
        token = re.search(r"^\s+(qiao_\S+)$", made.stdout, re.MULTILINE)
        assert token, made.stdout
        assert (tmp / "jieba.cache").is_file()  # jieba's dictionary, prepared locally

        with serving(inside, env, qiao, site, tmp_path / "serve.log"):
            result, requests, errors = use_graphiql(
                inside, env, token.group(1), tmp_path, artefacts / "graphiql.png"
            )

    print(f"\nscreenshot of GraphiQL with no network: {artefacts / 'graphiql.png'}")
    lead = json.loads(result)["data"]["createLead"]
    assert lead["name"] == "王工"
    assert lead["intentScore"] >= 70 and "高意向" in lead["intentTags"]
    outside = [url for url in requests if not url.startswith((BASE + "/", "data:"))]
    assert not outside, f"the page asked for other hosts: {outside}"
    assert f"{BASE}/graphql" in requests and any("/static/" in url for url in requests)
    assert not errors, errors
    assert (artefacts / "graphiql.png").stat().st_size > 10_000


#: Run inside the namespace: succeeds only if a public address cannot be reached.
PROBE = """
import socket
try:
    socket.create_connection(("1.1.1.1", 443), timeout=3)
except OSError as exc:
    print("unreachable:", exc)
else:
    raise SystemExit("connected to 1.1.1.1")
"""


def chromium_ready() -> None:
    """Chromium and a Chinese font, installed with apt-get when missing."""
    fonts = subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True, check=False)
    if find_chromium() and fonts.stdout.strip():
        return
    apt = ["apt-get", "install", "-y", "--no-install-recommends", *BROWSER_PACKAGES]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in (apt, ["apt-get", "update"], apt):
        done = subprocess.run(attempt, capture_output=True, text=True, env=env, check=False)
        if attempt is apt and done.returncode == 0:
            return
    pytest.fail(f"could not install {' '.join(BROWSER_PACKAGES)}: {done.stderr[-1000:]}")


def build_and_unpack(tmp_path: Path) -> Path:
    """scripts/bundle's archive, unpacked where nothing else lies; the bundle folder."""
    out = tmp_path / "dist"
    built = subprocess.run(
        [
            str(ROOT / "scripts" / "bundle"),
            "--out",
            str(out),
            "--python",
            sys.executable,
            "--no-image",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (archive,) = out.glob("qiao-*-offline-*.tar.gz")
    shutil.rmtree(out / archive.name.removesuffix(".tar.gz"))  # only the archive travels
    site = tmp_path / "transferred"
    with tarfile.open(archive) as tar:
        tar.extractall(site, filter="data")
    (bundle,) = site.iterdir()
    listed = (bundle / "BUNDLE.txt").read_text(encoding="utf-8")
    for wheel in ("qiao_crm-", "jieba-", "tzdata-", "psycopg_binary-"):
        assert f"  {wheel}" in listed, listed
    assert (bundle / "helm").glob("qiao-*.tgz")
    return bundle


def installed(venv: Path) -> set[tuple[str, str]]:
    """(name, version) of each distribution in ``venv`` but those ``venv`` itself puts there."""
    listed = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        (_normal(d["name"]), d["version"])
        for d in json.loads(listed.stdout)
        if _normal(d["name"]) not in ("pip", "setuptools")
    }


def wheels_of(bundle: Path) -> set[tuple[str, str]]:
    return {
        (_normal(wheel.name.split("-")[0]), wheel.name.split("-")[1])
        for wheel in (bundle / "wheels").glob("*.whl")
    }


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@contextmanager
def no_network() -> Iterator[list[str]]:
    """A network namespace with only loopback, up; yields the prefix that runs a command in it."""
    try:
        holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up && echo up && exec sleep 3600"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    except FileNotFoundError:
        pytest.fail("this test needs util-linux's unshare and nsenter, and iproute2's ip")
    assert holder.stdout is not None and holder.stderr is not None
    if holder.stdout.readline().strip() != "up":
        holder.wait()
        pytest.fail(f"no network namespace (root is needed): {holder.stderr.read()}")
    try:
        yield ["nsenter", f"--net=/proc/{holder.pid}/ns/net", "--"]
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
        holder.stderr.close()


def run(
    prefix: Sequence[str], env: dict[str, str], *command: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [*prefix, *command], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    if check:
        assert done.returncode == 0, f"{command}: {done.stdout[-3000:]}{done.stderr[-3000:]}"
    return done


@contextmanager
def serving(
    prefix: Sequence[str], env: dict[str, str], qiao: str, site: Path, log: Path
) -> Iterator[None]:
    """``qiao serve`` in the namespace until /healthz answers; stopped afterwards."""
    config = str(site / "qiao.toml")
    with log.open("wb") as output:
        server = subprocess.Popen(
            [*prefix, qiao, "--config", config, "serve", "--port", str(PORT)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 60
        probe = f"import urllib.request; urllib.request.urlopen('{BASE}/healthz', timeout=1)"
        while run(prefix, env, sys.executable, "-c", probe, check=False).returncode != 0:
            assert server.poll() is None, log.read_text(errors="replace")
            assert time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def use_graphiql(
    prefix: Sequence[str], env: dict[str, str], token: str, work: Path, screenshot: Path
) -> tuple[str, list[str], list[str]]:
    """Run MUTATION through GraphiQL as a person would; the answer shown, requests, errors."""
    # Chromium's own sockets live in TMPDIR, whose path must be short.
    with (
        tempfile.TemporaryDirectory(prefix="qiao-") as short,
        chromium(
            work / "profile", work / "chromium.log", prefix=prefix, env={**env, "TMPDIR": short}
        ) as browser,
    ):
        browser.open(f"{BASE}/graphql")
        browser.wait_until(
            "!!document.querySelector('.graphiql-query-editor .CodeMirror')", "the editor"
        )
        browser.click(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror-lines")
        browser.type_text(json.dumps({"Authorization": f"Bearer {token}"}))
        time.sleep(1)  # GraphiQL takes edits of the Headers tab in after 500 ms
        browser.click("button[aria-label='Re-fetch GraphQL schema']")
        browser.click("button[aria-label='Show Documentation Explorer']")
        browser.wait_until(
            "document.querySelector('.graphiql-doc-explorer')?.innerText.includes("
            "'mutation: Mutation')",
            "the schema in the documentation explorer",
        )
        browser.click(".graphiql-query-editor .CodeMirror-lines")
        browser.select_all()
        browser.type_text(MUTATION)
        browser.click("button[aria-label^='Prettify']")
        browser.click(".graphiql-execute-button")
        response = "document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue()"
        try:
            shown = browser.wait_until(
                f"(() => {{ const text = {response}; "
                "return text.includes('createLead') ? text : ''; })()",
                "the mutation's answer",
            )
        except BrowserError as exc:
            pytest.fail(f"{exc}; the response pane shows: {browser.evaluate(response)}")
        finally:
            browser.screenshot(screenshot)
        return shown, list(browser.requests), list(browser.errors)

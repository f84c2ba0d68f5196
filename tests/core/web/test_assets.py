"""Qiao's static files: content addresses, caching, compression, and nothing outside the folder.

Served by the real endpoint over a real HTTP server; the committed files from
npm are checked against the record scripts/web-assets keeps of them.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from qiao.core.app import create_app
from qiao.core.config import Config
from qiao.core.errors import ConfigurationError
from qiao.core.hookmarkers import hookimpl
from qiao.core.runtime import Runtime
from qiao.core.testing.server import LiveServer
from qiao.core.web.assets import IMMUTABLE, ROUTE, STATIC, StaticFiles

ROOT = Path(__file__).resolve().parents[3]
VENDOR = STATIC / "vendor"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "static"
    (folder / "vendor").mkdir(parents=True)
    (folder / "app.js").write_text("console.log('qiao');\n" * 200, encoding="utf-8")
    (folder / "tiny.css").write_text("body { margin: 0 }\n", encoding="utf-8")
    (folder / "vendor" / "lib.js").write_text("var lib = 1;\n", encoding="utf-8")
    (folder / ".hidden").write_text("secret", encoding="utf-8")
    (tmp_path / "outside.txt").write_text("not served", encoding="utf-8")
    return folder


@pytest.fixture
def served(folder: Path) -> Iterator[tuple[StaticFiles, httpx.Client]]:
    files = StaticFiles(folder)
    app = Starlette(routes=[Route(ROUTE, files.endpoint, methods=["GET"])])
    with LiveServer(app) as server, httpx.Client(base_url=server.url) as http:
        yield files, http


def test_a_file_is_served_at_its_content_address_and_cached_for_good(
    served: tuple[StaticFiles, httpx.Client], folder: Path
) -> None:
    files, http = served
    url = files.url("app.js")
    digest = hashlib.sha256((folder / "app.js").read_bytes()).hexdigest()[:16]
    assert url == f"/static/{digest}/app.js"
    answer = http.get(url, headers={"accept-encoding": "identity"})
    assert answer.status_code == 200
    assert answer.content == (folder / "app.js").read_bytes()
    assert answer.headers["cache-control"] == IMMUTABLE
    assert answer.headers["content-type"] == "text/javascript; charset=utf-8"
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert "content-encoding" not in answer.headers
    nested = http.get(files.url("vendor/lib.js"))
    assert nested.text == "var lib = 1;\n"


def test_gzip_is_sent_to_browsers_that_accept_it_when_it_is_smaller(
    served: tuple[StaticFiles, httpx.Client], folder: Path
) -> None:
    files, http = served
    raw = http.build_request("GET", files.url("app.js"), headers={"accept-encoding": "gzip, br"})
    answer = http.send(raw, stream=True)
    body = answer.read()  # httpx undoes the compression...
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["vary"] == "Accept-Encoding"
    assert int(answer.headers["content-length"]) < len(body)  # ...which was real
    assert body == (folder / "app.js").read_bytes()
    refused = http.get(files.url("app.js"), headers={"accept-encoding": "gzip;q=0, br"})
    assert "content-encoding" not in refused.headers
    tiny = http.get(files.url("tiny.css"), headers={"accept-encoding": "gzip"})
    assert "content-encoding" not in tiny.headers
    assert tiny.headers["content-type"] == "text/css; charset=utf-8"


def test_old_digests_unknown_files_and_paths_out_of_the_folder_are_not_found(
    served: tuple[StaticFiles, httpx.Client],
) -> None:
    files, http = served
    current = files.url("app.js").split("/")[2]
    for path in (
        "/static/0000000000000000/app.js",  # an earlier version's address
        f"/static/{current}/missing.js",
        f"/static/{current}/.hidden",
        f"/static/{current}/vendor",  # a folder
        f"/static/{current}/%2e%2e/outside.txt",
        f"/static/{current}/vendor/%2e%2e/%2e%2e/outside.txt",
    ):
        answer = http.get(path)
        assert answer.status_code == 404, path
        assert answer.headers["cache-control"] == "no-store"
    assert files.find("../outside.txt") is None
    assert files.find("/etc/passwd") is None
    with pytest.raises(KeyError):
        files.url("missing.js")


def test_plugins_cannot_claim_qiaos_static_paths(tmp_path: Path) -> None:
    class Claimer:
        __name__ = "claimer"

        @hookimpl
        def qiao_routes(self) -> list[Route]:
            async def mine(_: Request) -> PlainTextResponse:
                return PlainTextResponse("mine")

            return [Route("/static/logo.png", mine)]

    runtime = Runtime(Config(database_url=f"sqlite:///{tmp_path}/q.db"), extra_plugins=[Claimer()])
    try:
        with pytest.raises(ConfigurationError) as refused:
            create_app(runtime)
        assert refused.value.message == (
            "a plugin route claims /static/logo.png, which Qiao serves itself"
        )
    finally:
        runtime.close()


def test_the_files_from_npm_are_those_their_record_names() -> None:
    """sources.json (written by scripts/web-assets) matches the files, the lock and the docs."""
    sources = json.loads((VENDOR / "sources.json").read_text(encoding="utf-8"))
    shipped = {p.name for p in VENDOR.iterdir()} - {"sources.json", "LICENSES.txt"}
    assert shipped == set(sources)
    lock = json.loads((ROOT / "web" / "package-lock.json").read_text(encoding="utf-8"))
    pinned = json.loads((ROOT / "web" / "package.json").read_text(encoding="utf-8"))
    licences = (VENDOR / "LICENSES.txt").read_text(encoding="utf-8")
    docs = (ROOT / "docs" / "web-assets.md").read_text(encoding="utf-8")
    for name, source in sources.items():
        data = (VENDOR / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == source["sha256"], name
        package, version = source["package"], source["version"]
        assert lock["packages"][f"node_modules/{package}"]["version"] == version
        assert pinned["dependencies"][package] == version
        assert pinned["qiaoAssets"][name] == f"{package}/{source['path']}"
        assert f"\n{package} {version} (" in licences
        assert f"| `{name}` | {package} | {version} | {source['licence']} |" in docs
        assert b"sourceMappingURL" not in data[-200:]  # no map is shipped to point to


@pytest.mark.slow
def test_the_committed_files_are_what_the_lock_gives() -> None:
    """scripts/web-assets --check: a fresh ``npm ci`` of the lock gives the same bytes."""
    checked = subprocess.run(
        [str(ROOT / "scripts" / "web-assets"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_gzip_of_a_file_is_the_same_every_time(folder: Path) -> None:
    """No timestamp in the compressed form, so every process sends the same bytes."""
    first, second = StaticFiles(folder).find("app.js"), StaticFiles(folder).find("app.js")
    assert first is not None and second is not None and first.gzipped is not None
    assert first.gzipped == second.gzipped
    assert gzip.decompress(first.gzipped) == first.body

"""The pages Qiao serves load everything from Qiao: no script, style, font or image elsewhere.

The pages are found by asking every GET route of the app that takes no path
parameter (plugins' routes included) for HTML, as a browser would; each page
and each style sheet it links is searched for references to other hosts.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html.parser import HTMLParser
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from qiao.core.testing.server import LiveServer
from qiao.core.web.graphiql import SCRIPTS, STYLES

#: Attributes through which a page makes the browser fetch something.
FETCHING = {"src", "href", "srcset", "action", "formaction", "poster", "data", "background"}
#: Elements whose ``href`` is followed only when clicked: links, not loads.
NAVIGATING = {"a", "area"}
#: ``url(...)`` and ``@import "..."`` in CSS; ``import ... from "..."``/``import("...")`` in JS.
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")\s]+)|@import\s+['"]([^'"]+)""", re.IGNORECASE)
JS_IMPORT = re.compile(r"""\bimport\s*(?:\(|[^'"();]*?\bfrom)?\s*['"]([^'"]+)['"]""")


def is_outside(reference: str) -> bool:
    """Whether ``reference`` names another host (``http(s)://...`` or ``//host/...``)."""
    parts = urlsplit(reference.strip())
    return parts.scheme.lower() in ("http", "https", "ws", "wss", "ftp") or (
        not parts.scheme and reference.strip().startswith("//")
    )


class References(HTMLParser):
    """Every address an HTML page makes a browser load, with where it was found."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, str]] = []
        self._element = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._element = tag
        for name, value in attrs:
            if value is None:
                continue
            if name in FETCHING and tag not in NAVIGATING:
                for candidate in value.split(",") if name == "srcset" else [value]:
                    self.found.append((f"<{tag} {name}>", candidate.strip().split(" ")[0]))
            elif name == "style":
                self.found += [(f"<{tag} style>", url) for url in css_references(value)]
            elif tag == "meta" and name == "content" and "url=" in value.lower():
                self.found.append(("<meta refresh>", value.lower().split("url=", 1)[1]))

    def handle_data(self, data: str) -> None:
        if self._element == "style":
            self.found += [("<style>", url) for url in css_references(data)]
        elif self._element == "script":
            self.found += [("<script> import", url) for url in JS_IMPORT.findall(data)]

    def handle_endtag(self, tag: str) -> None:
        self._element = ""


def css_references(css: str) -> list[str]:
    return [a or b for a, b in CSS_URL.findall(css)]


def outside_references(html: str) -> list[tuple[str, str]]:
    parser = References()
    parser.feed(html)
    parser.close()
    return [(where, url) for where, url in parser.found if is_outside(url)]


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ["crm", "leads"]


def test_no_page_refers_to_another_host(qiao_app: Starlette, qiao_server: LiveServer) -> None:
    pages: dict[str, str] = {}
    with httpx.Client(base_url=qiao_server.url) as http:
        for route in qiao_app.routes:
            path = getattr(route, "path", "")
            if "GET" not in (getattr(route, "methods", None) or ()) or "{" in path:
                continue
            answer = http.get(path, headers={"accept": "text/html"})
            if answer.headers.get("content-type", "").startswith("text/html"):
                pages[path] = answer.text
        assert "/graphql" in pages
        for path, html in pages.items():
            assert outside_references(html) == [], path
            parser = References()
            parser.feed(html)
            sheets = [
                u for where, u in parser.found if where == "<link href>" and u.endswith(".css")
            ]
            for sheet in sheets:
                css = http.get(sheet)
                assert css.status_code == 200, sheet
                assert [u for u in css_references(css.text) if is_outside(u)] == [], sheet


def test_the_search_finds_every_kind_of_outside_reference() -> None:
    page = """<!doctype html><html><head>
      <meta http-equiv="refresh" content="5; url=https://example.com/">
      <link rel="stylesheet" href="https://unpkg.com/graphiql/graphiql.min.css">
      <link rel="icon" href="//cdn.example.com/favicon.ico">
      <style>@import "https://fonts.googleapis.com/css2?family=Roboto"; body { color: red }</style>
      <script src="https://unpkg.com/react@18/umd/react.production.min.js"></script>
      <script type="module">import { x } from "https://esm.sh/x"; import("http://a.test/y.js");</script>
      </head><body style="background: url('https://img.example.com/bg.png')">
      <img src="/static/abc/logo.png" srcset="/static/abc/a.png 1x, https://cdn.test/b.png 2x">
      <a href="https://docs.example.com/">a link is not a load</a>
      <form action="https://collect.example.com/"></form>
    </body></html>"""
    found = {url for _, url in outside_references(page)}
    assert found == {
        "https://example.com/",
        "https://unpkg.com/graphiql/graphiql.min.css",
        "//cdn.example.com/favicon.ico",
        "https://fonts.googleapis.com/css2?family=Roboto",
        "https://unpkg.com/react@18/umd/react.production.min.js",
        "https://esm.sh/x",
        "http://a.test/y.js",
        "https://img.example.com/bg.png",
        "https://cdn.test/b.png",
        "https://collect.example.com/",
    }


def test_graphiql_is_qiaos_own_page_with_a_strict_policy(qiao_server: LiveServer) -> None:
    with httpx.Client(base_url=qiao_server.url) as http:
        page = http.get("/graphql", headers={"accept": "text/html,application/xhtml+xml"})
        assert page.status_code == 200
        policy = dict(
            part.strip().split(" ", 1)
            for part in page.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'"
        assert policy["script-src"] == policy["connect-src"] == "'self'"
        assert policy["frame-ancestors"] == "'none'"
        assert page.headers["cache-control"] == "no-cache"
        parser = References()
        parser.feed(page.text)
        loaded = [url for _, url in parser.found if url.startswith("/static/")]
        # Every file the page names, in order, each at the address of its current content.
        named = [re.sub(r"^/static/[0-9a-f]{16}/", "", url) for url in loaded]
        assert named == [*STYLES, *SCRIPTS]
        for url in loaded:
            answer = http.get(url)
            assert answer.status_code == 200, url
            assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
        # API clients asking for JSON still get GraphQL.
        api = http.get("/graphql", params={"query": "{ __typename }"})
        assert api.headers["content-type"] == "application/json"

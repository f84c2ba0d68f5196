"""GraphiQL's page: Qiao's own HTML, loading only Qiao's own files.

Browsers get it from ``GET /graphql`` (they ask for HTML; API clients ask for
JSON). The page names its scripts and styles by their content addresses
(:mod:`qiao.core.web.assets`), so it is revalidated on every load while the
files themselves are cached for good. Its Content-Security-Policy lets it
load and send requests to Qiao's own origin only.
"""

from __future__ import annotations

import functools
from html import escape
from pathlib import Path
from string import Template

from starlette.responses import HTMLResponse

from qiao.core.web.assets import FILES, StaticFiles

PAGE = Path(__file__).with_name("graphiql.html")
STYLES = ("vendor/graphiql.min.css", "vendor/graphiql-plugin-explorer.css", "graphiql.css")
#: In load order: GraphiQL needs React, the Explorer needs GraphiQL, the page needs all.
SCRIPTS = (
    "vendor/react.production.min.js",
    "vendor/react-dom.production.min.js",
    "vendor/graphiql.min.js",
    "vendor/graphiql-plugin-explorer.umd.js",
    "graphiql.js",
)
#: GraphiQL sets inline styles and embeds its fonts and icons as data: URLs.
POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "font-src 'self' data:",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


def graphiql_page() -> HTMLResponse:
    return HTMLResponse(render(FILES), headers=HEADERS)


@functools.cache
def render(files: StaticFiles) -> str:
    """The page's HTML, addressing each file by its digest (once per process)."""
    styles = "\n".join(
        f'    <link rel="stylesheet" href="{escape(files.url(path))}">' for path in STYLES
    )
    scripts = "\n".join(
        f'    <script src="{escape(files.url(path))}"></script>' for path in SCRIPTS
    )
    return Template(PAGE.read_text(encoding="utf-8")).substitute(styles=styles, scripts=scripts)

"""Which settings of a deployment name hosts outside its own network (for ``qiao doctor``).

Qiao itself fetches nothing at run time; what it reaches is what its settings
name. On a network with no way out (docs/deploy-airgapped.md) a setting that
names a public host cannot work, so the doctor lists them: the database URL
as the process will use it (QIAO_DATABASE_URL included), every URL in
qiao.toml, and every URL in a QIAO_* environment variable. Webhook and
connector addresses are the administrator's explicit choice of a
destination, so tables named for them are not searched.

A host is inside when it is an address of a private, loopback or link-local
network, a name without dots (a Kubernetes service, an /etc/hosts entry), or
a name under a suffix reserved for private use (``.internal``, ``.local``,
``.lan``, ``.corp``, ``.home.arpa``, ``.svc``, ...). Any other name is
reported: it may resolve inside through the site's own DNS, which only the
administrator knows.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from qiao.core.config import Config

#: Tables whose addresses are destinations chosen on purpose, never reported.
EXEMPT_TABLES = frozenset({"connectors", "connector", "webhooks", "webhook"})
INTERNAL_SUFFIXES = (
    ".internal",
    ".intranet",
    ".local",
    ".localdomain",
    ".lan",
    ".corp",
    ".home.arpa",
    ".svc",
    ".test",
    ".example",
    ".invalid",
    ".localhost",
)


def outside_settings(
    config: Config, settings: Mapping[str, Any], env: Mapping[str, str]
) -> list[str]:
    """``"<setting> -> <host>"`` for each setting naming a host outside the network."""
    found = []
    for where, value in _addresses(config, settings, env):
        host = _host(value)
        if host and not is_inside(host):
            found.append(f"{where} -> {host}")
    return found


def is_inside(host: str) -> bool:
    """Whether ``host`` (a name or an address) belongs to the site's own network."""
    host = host.strip("[]").rstrip(".").lower()
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." not in host or host.endswith(INTERNAL_SUFFIXES)
    return not address.is_global


def _addresses(
    config: Config, settings: Mapping[str, Any], env: Mapping[str, str]
) -> Iterator[tuple[str, str]]:
    database = "QIAO_DATABASE_URL" if env.get("QIAO_DATABASE_URL") else "[database] url"
    yield database, config.database_url
    for path, value in _strings(settings, ()):
        if path != ("database", "url") and "://" in value:
            yield f"[{'.'.join(path[:-1])}] {path[-1]}" if len(path) > 1 else path[0], value
    for name, value in sorted(env.items()):
        if name.startswith("QIAO_") and name != "QIAO_DATABASE_URL" and "://" in value:
            yield name, value


def _strings(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if str(key).lower() not in EXEMPT_TABLES:
                yield from _strings(item, (*path, str(key)))
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item, path)
    elif isinstance(value, str):
        yield path, value


def _host(url: str) -> str | None:
    """The host a URL names; None for URLs without one (``sqlite:///...``, a socket path)."""
    try:
        return urlsplit(url.strip()).hostname
    except ValueError:  # e.g. a malformed IPv6 literal; not a host anyone can reach
        return None

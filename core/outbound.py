"""Outgoing HTTP clients, sharing one TLS context per process.

An ``httpx.Client`` made with the default ``verify=True`` loads the CA bundle into
a new TLS context: about 20 ms of CPU for every client. A rule's webhook call makes
a client per call, and a test makes one per server it talks to. Clients made here
share one context instead, made on first use with httpx's own defaults (certifi's
bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set), so servers' certificates
are verified exactly as before.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

import httpx


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's TLS context for verifying servers (safe to share between threads)."""
    return httpx.create_ssl_context()


def client(**options: Any) -> httpx.Client:
    """An ``httpx.Client`` with ``options``, verifying servers with :func:`tls_context`."""
    return httpx.Client(verify=tls_context(), **options)

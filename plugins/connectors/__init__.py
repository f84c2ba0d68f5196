"""Connectors to the systems Chinese companies already run, each against its published protocol.

Every vendor package here (``wecom``, ``dingtalk``, ``kingdee``, ``yonyou``, ``sap``,
``email``, ``objectstore``) is a pure protocol layer: it imports nothing from Qiao's core
and takes the HTTP client, the token store, the clock, the sleep function and the call-record
sink it needs by injection (see :mod:`qiao.plugins.connectors.common`). Wiring them to
settings, secrets, the sync log and the outbox is the host's job, so the protocol code can be
tested against local servers that speak each vendor's protocol, and reused by any process.
"""

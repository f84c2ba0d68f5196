"""Protocol clients built from a connector's settings and a piece of work's wiring."""

from __future__ import annotations

from typing import Literal

from qiao.api import ConfigurationError, Runtime
from qiao.plugins.connectors import host
from qiao.plugins.connectors.common.caller import Wiring
from qiao.plugins.connectors.dingtalk.client import API_BASE, OAPI_BASE, DingTalkClient
from qiao.plugins.connectors.email.imap import ImapInbox, ImapSettings
from qiao.plugins.connectors.email.smtp import Security, SmtpSender, SmtpSettings
from qiao.plugins.connectors.kingdee.client import AppSecretLogin, KingdeeClient, PasswordLogin
from qiao.plugins.connectors.sap.odata import ODataClient
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.wecom.client import BASE_URL, WeComClient
from qiao.plugins.connectors.yonyou.client import DISCOVERY_URL, YonyouClient

SECURITY: dict[str, Security] = {"starttls": "starttls", "ssl": "ssl", "none": "none"}


def wecom(runtime: Runtime, connector: Connector, wiring: Wiring) -> WeComClient:
    return WeComClient(
        str(connector.setting("corp_id")),
        connector.secret("app_secret"),
        int(connector.setting("agent_id")),
        http=host.http_client(runtime, connector.id),
        wiring=wiring,
        base_url=connector.base_url or BASE_URL,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, WeComClient.default_rates),
    )


def dingtalk(runtime: Runtime, connector: Connector, wiring: Wiring) -> DingTalkClient:
    """``base_url``, when set, serves both the new API and the old ``oapi`` (a gateway, a test)."""
    return DingTalkClient(
        str(connector.setting("app_key")),
        connector.secret("app_secret"),
        http=host.http_client(runtime, connector.id),
        wiring=wiring,
        api_base=connector.base_url or API_BASE,
        oapi_base=connector.base_url or OAPI_BASE,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, DingTalkClient.default_rates),
    )


def kingdee(runtime: Runtime, connector: Connector, wiring: Wiring) -> KingdeeClient:
    """Logs in with ``app_id`` and the app secret when ``app_id`` is set, else with the password."""
    username = str(connector.setting("username"))
    app_id = connector.settings.get("app_id")
    login: PasswordLogin | AppSecretLogin = (
        AppSecretLogin(username, str(app_id), connector.secret("app_secret"))
        if app_id
        else PasswordLogin(username, connector.secret("app_secret"))
    )
    if not connector.base_url:
        raise ConfigurationError(f"connector {connector.name!r} needs base_url (…/k3cloud/)")
    return KingdeeClient(
        connector.base_url,
        str(connector.setting("acct_id")),
        login,
        http=host.http_client(runtime, connector.id),
        wiring=wiring,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, KingdeeClient.default_rates),
    )


def yonyou(runtime: Runtime, connector: Connector, wiring: Wiring) -> YonyouClient:
    """``tenant_id`` discovers the tenant's gateway; ``base_url`` replaces the discovery host."""
    return YonyouClient(
        str(connector.setting("app_key")),
        connector.secret("app_secret"),
        http=host.http_client(runtime, connector.id),
        tenant_id=str(connector.setting("tenant_id")),
        discovery_url=connector.base_url or DISCOVERY_URL,
        wiring=wiring,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, YonyouClient.default_rates),
    )


def sap(
    runtime: Runtime, connector: Connector, wiring: Wiring, service_url: str | None = None
) -> ODataClient:
    """``base_url`` is the service root (…/API_BUSINESS_PARTNER/), or ``service_url``
    another service of the same system; HTTP basic authentication."""
    if not connector.base_url:
        raise ConfigurationError(f"connector {connector.name!r} needs base_url (the service root)")
    auth = (str(connector.setting("username")), connector.secret("app_secret"))
    version: Literal[2, 4] = 4 if str(connector.settings.get("odata_version")) == "4" else 2
    return ODataClient(
        service_url or connector.base_url,
        http=host.http_client(runtime, connector.id, auth),
        version=version,
        wiring=wiring,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, ODataClient.default_rates),
    )


def smtp(runtime: Runtime, connector: Connector, wiring: Wiring) -> SmtpSender:
    """``host``, ``port``, ``sender``, optional ``username`` (the password is ``app_secret``)
    and ``security`` (``starttls`` by default, ``ssl`` or ``none``)."""
    chosen = str(connector.settings.get("security") or "starttls")
    security = SECURITY.get(chosen)
    if security is None:
        raise ConfigurationError(f"connector {connector.name!r}: security is starttls, ssl or none")
    return SmtpSender(
        SmtpSettings(
            host=str(connector.setting("host")),
            port=int(connector.setting("port")),
            sender=str(connector.setting("sender")),
            username=connector.settings.get("username") or None,
            password=connector.secrets.get("app_secret"),
            security=security,
        ),
        wiring=wiring,
        retry=host.IN_CALL_RETRY,
        limits=host.limits(runtime, connector, ()),
    )


def imap(connector: Connector, wiring: Wiring) -> ImapInbox:
    """``host``, ``port``, ``username`` (the password is ``app_secret``), ``mailbox``
    (``INBOX`` by default) and ``ssl`` (implicit TLS, on unless ``false``)."""
    return ImapInbox(
        ImapSettings(
            host=str(connector.setting("host")),
            port=int(connector.setting("port")),
            username=str(connector.setting("username")),
            password=connector.secret("app_secret"),
            mailbox=str(connector.settings.get("mailbox") or "INBOX"),
            use_ssl=connector.settings.get("ssl", True) is not False,
        ),
        wiring=wiring,
        retry=host.IN_CALL_RETRY,
    )

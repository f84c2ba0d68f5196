"""WeCom's members matched to users, then its external contacts (客户联系) into contacts,
owned by the member who follows them.

Members are the Qiao users with a ``wecom_userid``; their customers are read 100 members
at a time (``batch/get_by_user``, paged to the end) and upserted by
``wecom_external_userid``. A customer several members follow is owned by the first.
"""

from __future__ import annotations

from typing import Any

from qiao.api import Actor, Runtime
from qiao.plugins.connectors import clients, host
from qiao.plugins.connectors.settings import Connector
from qiao.plugins.connectors.sync import directory
from qiao.plugins.connectors.sync.writing import upsert_all
from qiao.plugins.connectors.wecom.client import BATCH_USERS

SYSTEM = Actor.system()
STREAM = "external_contacts"


def members(runtime: Runtime) -> dict[str, str]:
    """WeCom user id -> Qiao user id, for every user mapped to a WeCom member."""
    found: dict[str, str] = {}
    after = None
    with runtime.db.read() as conn:
        while True:
            page = runtime.records.list(
                conn,
                "user",
                filter={"wecom_userid": {"is_null": False}},
                first=500,
                after=after,
                actor=SYSTEM,
            )
            found.update({str(u["wecom_userid"]): str(u["id"]) for u in page.records})
            if not page.has_next_page:
                return found
            after = page.cursors[-1]


def contact_of(item: dict[str, Any], owners: dict[str, str]) -> dict[str, Any]:
    profile = item.get("external_contact") or {}
    follow = item.get("follow_info") or {}
    mobiles = follow.get("remark_mobiles") or []
    values: dict[str, Any] = {
        "wecom_external_userid": profile.get("external_userid"),
        "name": profile.get("name"),
        "owner": owners.get(str(follow.get("userid"))),
    }
    if mobiles:
        values["mobile"] = mobiles[0]
    return values


def external_contacts(runtime: Runtime, connector: Connector) -> dict[str, int]:
    owners = members(runtime)
    ids = sorted(owners)
    contacts: dict[str, dict[str, Any]] = {}
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        client = clients.wecom(runtime, connector, wiring)
        for start in range(0, len(ids), BATCH_USERS):
            for item in client.external_contacts_of(ids[start : start + BATCH_USERS]):
                contact = contact_of(item, owners)
                contacts.setdefault(str(contact["wecom_external_userid"]), contact)
    written = upsert_all(
        runtime,
        connector.id,
        connector.vendor,
        "contact",
        "wecom_external_userid",
        contacts.values(),
    )
    return {STREAM: written}


def members_and_customers(runtime: Runtime, connector: Connector) -> dict[str, int]:
    """Members first, so that the customers' followers are mapped to their users."""
    return {**directory.wecom_members(runtime, connector), **external_contacts(runtime, connector)}

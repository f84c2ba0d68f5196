"""What a template's removal counts as held and takes along beyond its own tables: the
approval requests of its processes, also on records of other plugins (a CRM quote waiting on
the manufacturing template's ``quote_discount``), counted once, so that the command asks for
--purge before deleting them."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from qiao.core.market import removal
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

pytestmark = pytest.mark.storage


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "manufacturing_dealers")


def test_the_approvals_and_documents_of_a_template_are_held_and_go_with_it(
    qiao_runtime: Runtime,
) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CLI) as ctx:
        boss = records.create(ctx, "user", {"username": "boss", "display_name": "经理"})
        rep = records.create(
            ctx, "user", {"username": "rep", "display_name": "销售", "manager": boss["id"]}
        )
        account = records.create(ctx, "account", {"name": "宁波北仑汽配"})
        quote = {"name": "VMC850", "account": account["id"], "owner": rep["id"]}
        quote |= {"list_price": "200000.00", "quoted_price": "170000.00"}
        quoted = records.create(ctx, "quote", quote)
    with qiao_runtime.db.read() as conn:
        registry = qiao_runtime.build_registry(conn)
        assert removal.records_about(conn, registry, "manufacturing_dealers") == {
            "approval_request": 1
        }

    plan = removal.uninstall(qiao_runtime, "manufacturing_dealers").render(done=True)
    assert "dropped 1 approval requests of 'quote_discount'" in plan
    with qiao_runtime.db.read() as conn:
        left = records.list(conn, "approval_request", with_total=True, actor=Actor.system())
        kept = records.get(conn, "quote", quoted["id"], actor=Actor.system())
    assert left.total_count == 0
    assert kept is not None and kept["status"] == "PENDING_APPROVAL"

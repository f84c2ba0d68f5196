"""A dealer network on version 0.3.0 of the manufacturing template, with its demo records,
upgraded to 0.4.0: the records stay, playbook steps gain a product (blank: every product),
the trial rule keeps a PDF report at each change and the signal rule lists the answers and
won deals, and a trial engineer reads the trial reports the rule keeps."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

import qiao.templates_market.manufacturing_dealers as manufacturing_dealers
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime
from tests.templates_market.conftest import TemplateVersions

pytestmark = pytest.mark.storage

OLD = Path(__file__).with_name("manufacturing_dealers_0_3_0")
NEW = Path(manufacturing_dealers.__file__).parent


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm",)


def _named(runtime: Runtime, entity: str, name: str) -> dict[str, object]:
    with runtime.db.read() as conn:
        page = runtime.records.list(
            conn, entity, filter={"name": {"eq": name}}, first=1, actor=Actor.system()
        )
    (found,) = page.records
    return found


def test_a_0_3_0_network_keeps_its_records_and_gains_the_reports_and_lists(
    template_versions: TemplateVersions,
) -> None:
    old = template_versions.install(OLD)
    with old.db.read() as conn:
        before = {
            entity: old.records.list(
                conn, entity, with_total=True, actor=Actor.system()
            ).total_count
            for entity in ("playbook_step", "mould_trial", "dealer_quarter", "purchase_line")
        }
    old.close()

    new, plan = template_versions.upgrade(NEW)
    assert "migrated manufacturing_dealers from 0.3.0 to 0.4.0" in plan
    assert "created column playbook_step.product_id" in plan
    with new.db.read() as conn:
        system = Actor.system()
        after = {
            entity: new.records.list(conn, entity, with_total=True, actor=system).total_count
            for entity in before
        }
        steps = new.records.list(conn, "playbook_step", first=100, actor=system).records
    assert after == before and before["playbook_step"]
    assert {(s["product_id"], s["product_sku"]) for s in steps} == {(None, None)}
    trials = _named(new, "automation_rule", "试模状态通知")
    assert trials["actions"][0] == {"render_document": {"template": "mould_trial_report"}}
    signals = _named(new, "automation_rule", "客户意向跟进")
    lists = signals["actions"][0]["notify"]["lists"]
    assert [item["entity"] for item in lists] == ["playbook_step", "opportunity"]
    engineer = _named(new, "role", "trial_engineer")
    assert engineer["rights"]["entities"]["document"] == {
        "create": "all",
        "read": {"filter": {"entity": {"eq": "mould_trial"}}},
    }

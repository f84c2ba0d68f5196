"""A dealer network on version 0.3.0 or 0.4.0 of the manufacturing template, with its demo
records, upgraded to 0.5.0: the records stay; from 0.3.0 playbook steps gain a product
(blank: every product), the trial rule keeps a PDF report at each change and the signal rule
lists the answers and won deals, and a trial engineer reads the trial reports the rule
keeps; from either, campaigns and invoicing milestones arrive, with their rules and rights,
and deals written before count in no campaign."""

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
PREVIOUS = Path(__file__).with_name("manufacturing_dealers_0_4_0")
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


def _counts(runtime: Runtime, entities: Sequence[str]) -> dict[str, int]:
    with runtime.db.read() as conn:
        return {
            entity: runtime.records.list(
                conn, entity, with_total=True, actor=Actor.system()
            ).total_count
            for entity in entities
        }


def test_a_0_3_0_network_keeps_its_records_and_gains_the_reports_and_lists(
    template_versions: TemplateVersions,
) -> None:
    old = template_versions.install(OLD)
    before = _counts(old, ("playbook_step", "mould_trial", "dealer_quarter", "purchase_line"))
    old.close()

    new, plan = template_versions.upgrade(NEW)
    assert "migrated manufacturing_dealers from 0.3.0 to 0.5.0" in plan
    assert "created column playbook_step.product_id" in plan
    assert _counts(new, tuple(before)) == before and before["playbook_step"]
    with new.db.read() as conn:
        steps = new.records.list(conn, "playbook_step", first=100, actor=Actor.system()).records
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


def test_a_0_4_0_network_gains_campaigns_and_invoicing_milestones(
    template_versions: TemplateVersions,
) -> None:
    old = template_versions.install(PREVIOUS)
    before = _counts(old, ("opportunity", "playbook_step", "mould_trial", "dealer_quarter", "lead"))
    old.close()

    new, plan = template_versions.upgrade(NEW)
    assert "migrated manufacturing_dealers from 0.4.0 to 0.5.0" in plan
    for column in ("lead.campaign_id", "opportunity.campaign_id", "opportunity.product_id"):
        assert f"created column {column}" in plan
    assert _counts(new, tuple(before)) == before and before["opportunity"]
    system = Actor.system()
    with new.db.read() as conn:
        deals = new.records.list(conn, "opportunity", first=100, actor=system).records
        campaigns = new.records.list(conn, "campaign", with_total=True, actor=system)
    assert {(d["campaign_id"], d["playbook_adopted"]) for d in deals} == {(None, 0)}
    assert campaigns.total_count == 0
    attribution = _named(new, "automation_rule", "商机归属来源活动")
    assert attribution["actions"] == [{"set": {"campaign": "@lead.campaign"}}]
    finance = _named(new, "role", "dealer_finance")
    assert finance["rights"]["entities"]["invoice_milestone"] == {"read": "all", "update": "all"}

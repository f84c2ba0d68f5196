"""Formula fields, rollup fields and validation rules through the records service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.formula import check
from qiao.core.formula.computed import computed_fields
from qiao.core.formula.record_values import evaluate_on_record, load_values
from qiao.core.hookmarkers import hookimpl
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.clock import TestClock

MANIFEST = Path(__file__).with_name("computed.yaml")


class ComputedEntities:
    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [MANIFEST]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [ComputedEntities()]


@pytest.fixture
def records(qiao_runtime: Runtime) -> Any:
    return qiao_runtime.records


def write(records: Any, fn: Any) -> Any:
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return fn(ctx)


def make(records: Any, entity: str, **values: Any) -> dict[str, Any]:
    return write(records, lambda ctx: records.create(ctx, entity, values))


def listed(records: Any, entity: str, **options: Any) -> list[dict[str, Any]]:
    with records.db.read() as conn:
        return records.list(conn, entity, **options, actor=Actor.system()).records


def test_created_records_carry_their_formula_values(records: Any) -> None:
    account = make(records, "cf_account", name="华东经销", region="华东")
    deal = make(
        records,
        "cf_deal",
        name="机床",
        account=account["id"],
        amount="1234.56",
        discount="0.125",
        huge="3.00",
    )
    assert deal["net"] == Decimal("1080.24")  # 1234.56 * 0.875 = 1080.24
    assert deal["tag"] == "华东/机床"
    assert deal["days_left"] is None
    assert deal["share"] == Decimal("0.875000")  # 1080.24 / 1234.56
    assert deal["huge_square"] == Decimal("9.0000")
    with records.db.read() as conn:
        assert records.get(conn, "cf_deal", deal["id"], actor=Actor.system()) == deal


def test_rollups_follow_every_write_to_the_children(records: Any) -> None:
    account = make(records, "cf_account", name="A")
    assert (account["deal_total"], account["deal_count"], account["big_deals"]) == (
        Decimal("0.00"),
        0,
        0,
    )
    first = make(records, "cf_deal", name="a", account=account["id"], amount="999.99")
    make(records, "cf_deal", name="b", account=account["id"], amount="1000.00")
    write(records, lambda ctx: records.update(ctx, "cf_deal", first["id"], {"amount": "0.01"}))
    with records.db.read() as conn:
        again = records.get(conn, "cf_account", account["id"], actor=Actor.system())
    assert again is not None
    assert (again["deal_total"], again["deal_count"], again["big_deals"]) == (
        Decimal("1000.01"),
        2,
        1,
    )
    write(records, lambda ctx: records.delete(ctx, "cf_deal", first["id"]))
    (only,) = listed(records, "cf_account")
    assert (only["deal_total"], only["deal_count"]) == (Decimal("1000.00"), 1)


def test_today_in_formulas_comes_from_the_service_clock(
    records: Any, qiao_clock: TestClock
) -> None:
    # 2026-03-31 20:00 UTC is already April 1st in Shanghai.
    qiao_clock.set(dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC))
    deal = make(records, "cf_deal", name="d", closes_on="2026-04-11")
    assert deal["days_left"] == 10
    (found,) = listed(records, "cf_deal", filter={"days_left": {"eq": 10}})
    assert found["id"] == deal["id"]


def test_lists_filter_and_sort_by_formulas_and_rollups_with_keyset_cursors(records: Any) -> None:
    accounts = [make(records, "cf_account", name=f"acct {i}") for i in range(5)]
    for i, account in enumerate(accounts):
        for j in range(i % 3 + 1):
            make(
                records,
                "cf_deal",
                name=f"d{i}{j}",
                account=account["id"],
                amount=f"{i + j}00.50",
                discount="0",
            )
    by_total = sorted(accounts, key=lambda a: _total(records, a["id"]), reverse=True)
    seen: list[str] = []
    after = None
    while True:
        with records.db.read() as conn:
            page = records.list(
                conn,
                "cf_account",
                order_by=[{"field": "deal_total", "direction": "DESC"}],
                first=2,
                after=after,
                actor=Actor.system(),
            )
        seen += [r["id"] for r in page.records]
        if not page.has_next_page:
            break
        after = page.cursors[-1]
    assert seen == [a["id"] for a in by_total]
    many = listed(records, "cf_account", filter={"deal_count": {"gte": 2}})
    assert {a["name"] for a in many} == {"acct 1", "acct 2", "acct 4"}
    cheap = listed(
        records,
        "cf_deal",
        filter={"net": {"lt": "300"}},
        order_by=[{"field": "net", "direction": "ASC"}],
    )
    assert [d["net"] for d in cheap] == sorted(d["net"] for d in cheap)
    assert {d["name"] for d in cheap} == {"d00", "d10", "d11", "d20"}


def _total(records: Any, account_id: str) -> Decimal:
    deals = listed(records, "cf_deal", filter={"account_id": {"eq": account_id}})
    return sum((d["amount"] for d in deals), Decimal("0.00"))


def test_a_formula_sqlite_cannot_compute_exactly_is_read_but_not_filtered(
    records: Any, qiao_backend: str
) -> None:
    make(records, "cf_deal", name="big", huge="999999999999.99")
    (deal,) = listed(records, "cf_deal")
    assert deal["huge_square"] == Decimal("999999999999980000000000.0001")
    spec = {"huge_square": {"gt": "1"}}
    if qiao_backend == "sqlite":
        with pytest.raises(BadUserInput, match="cannot filter or sort by huge_square") as caught:
            listed(records, "cf_deal", filter=spec)
        assert caught.value.field == "huge_square"
        assert "64-bit" in caught.value.message
    else:
        assert [d["name"] for d in listed(records, "cf_deal", filter=spec)] == ["big"]


def test_computed_fields_cannot_be_set(records: Any) -> None:
    with pytest.raises(BadUserInput, match="computed") as caught:
        make(records, "cf_deal", name="x", net="1.00")
    assert caught.value.field == "net"


def test_a_broken_rule_refuses_the_write_and_names_rule_and_field(
    records: Any, count_rows: Any
) -> None:
    with pytest.raises(BadUserInput, match="折扣不能超过 30%") as caught:
        make(records, "cf_deal", name="x", amount="10.00", discount="0.3001")
    assert caught.value.field == "discount"
    assert caught.value.details == {"rule": "discount_cap"}
    assert count_rows("cf_deal") == 0
    deal = make(records, "cf_deal", name="x", amount="10.00", discount="0.3")
    with pytest.raises(BadUserInput, match="折扣"):
        write(records, lambda ctx: records.update(ctx, "cf_deal", deal["id"], {"discount": "0.5"}))
    with records.db.read() as conn:
        kept = records.get(conn, "cf_deal", deal["id"], actor=Actor.system())
    assert kept is not None and kept["discount"] == Decimal("0.3000")


def test_rules_read_related_records_as_they_are_after_the_write(records: Any) -> None:
    bare = make(records, "cf_account", name="no region")
    with pytest.raises(BadUserInput, match="十万以上") as caught:
        make(records, "cf_deal", name="x", account=bare["id"], amount="100000.00")
    assert caught.value.details == {"rule": "region_needed_for_big_deals"}
    placed = make(records, "cf_account", name="placed", region="华南")
    deal = make(records, "cf_deal", name="x", account=placed["id"], amount="100000.00")
    with pytest.raises(BadUserInput, match="十万以上"):
        write(
            records, lambda ctx: records.update(ctx, "cf_deal", deal["id"], {"account": bare["id"]})
        )


def test_load_values_follows_relations_and_reads_rollups(
    records: Any, qiao_runtime: Runtime
) -> None:
    account = make(records, "cf_account", name="A", region="西南")
    deal = make(records, "cf_deal", name="d", account=account["id"], amount="50.00")
    make(records, "cf_deal", name="e", account=account["id"], amount="150.00")
    catalog = qiao_runtime.current()
    resolver = computed_fields(catalog.registry).resolver("cf_deal")
    formula = check('IF(account.deal_total > net, account.region, "")', resolver)
    stored = {k: v for k, v in deal.items() if k not in {"net", "tag", "share"}}
    with records.db.read() as conn:
        values = load_values(conn, catalog, "cf_deal", stored, formula)
        assert values == {
            "account.region": "西南",
            "account.deal_total": Decimal("200.00"),
            "amount": Decimal("50.00"),
            "discount": None,
        }
        share = check("amount / account.deal_total", resolver)
        assert evaluate_on_record(conn, catalog, "cf_deal", stored, share) == Decimal("0.250000")

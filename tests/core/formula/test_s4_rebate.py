"""Scenario S4: a dealer's quarterly rebate, from rollups of purchases, exact to the fen.

Tiers (the top row is the scenario's; the lower rows are this test's, and the
manufacturing template is free to choose its own):

| purchases in the quarter | paid >= 95 %, new >= 30 % | paid >= 95 %, new < 30 % | paid < 95 % |
|---|---|---|---|
| over 1,500,000 CNY       | 0.042 | 0.038 | 0.035 |
| over 500,000 CNY         | 0.030 | 0.025 | 0.020 |
| up to 500,000 CNY        | 0.015 | 0.010 | 0     |

The thresholds compare by multiplication (``paid >= purchases * 0.95``), which is
exact; the rebate is ``ROUND(purchases * coefficient, 2)``, rounded half-up.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, MetaData, insert, select

from qiao.core.formula import Formula, check, compile_formula, evaluate
from qiao.core.formula.rollup import rollup_column, spec_info
from qiao.core.ids import new_id
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.rollup import RollupSpec
from qiao.core.schema.tables import build_table

D = decimal.Decimal
LABEL = {"en": "x"}
DEALER = EntityDef.model_validate(
    {"name": "s4_dealer", "plural": "s4_dealers", "label": LABEL, "fields": []}
)
PURCHASE = EntityDef.model_validate(
    {
        "name": "s4_purchase",
        "plural": "s4_purchases",
        "label": LABEL,
        "fields": [
            {"name": "dealer", "type": "relation", "target": "s4_dealer", "label": LABEL},
            {"name": "amount", "type": "decimal", "precision": 14, "scale": 2, "label": LABEL},
            {"name": "paid", "type": "decimal", "precision": 14, "scale": 2, "label": LABEL},
            {"name": "new_product", "type": "boolean", "label": LABEL},
            {"name": "ordered_on", "type": "date", "label": LABEL},
        ],
    }
)
QUARTER = {"ordered_on": {"gte": "2026-01-01", "lt": "2026-04-01"}}
ROLLUPS = {
    "purchases": RollupSpec(
        function="sum",
        entity="s4_purchase",
        link="dealer",
        field="amount",
        filter=QUARTER,
        precision=16,
    ),
    "paid": RollupSpec(
        function="sum",
        entity="s4_purchase",
        link="dealer",
        field="paid",
        filter=QUARTER,
        precision=16,
    ),
    "new_purchases": RollupSpec(
        function="sum",
        entity="s4_purchase",
        link="dealer",
        field="amount",
        filter={**QUARTER, "new_product": {"eq": True}},
        precision=16,
    ),
}
COEFFICIENT = """
IF(purchases > 1500000,
   IF(paid >= purchases * 0.95,
      IF(new_purchases >= purchases * 0.30, 0.042, 0.038),
      0.035),
IF(purchases > 500000,
   IF(paid >= purchases * 0.95,
      IF(new_purchases >= purchases * 0.30, 0.030, 0.025),
      0.020),
   IF(paid >= purchases * 0.95,
      IF(new_purchases >= purchases * 0.30, 0.015, 0.010),
      0)))
"""
REBATE = "ROUND(purchases * rebate_coefficient, 2)"
metadata = MetaData()
dealers = build_table(DEALER, metadata, with_fks=False)
purchases = build_table(PURCHASE, metadata, with_fks=False)
STAMP = dt.datetime(2026, 4, 1, tzinfo=dt.UTC)


def resolver(path: tuple[str, ...]) -> Any:
    if path == ("rebate_coefficient",):
        return coefficient
    spec = ROLLUPS.get(path[0]) if len(path) == 1 else None
    return None if spec is None else spec_info(spec, PURCHASE)


coefficient: Formula = check(COEFFICIENT, resolver)
rebate: Formula = check(REBATE, resolver)


def rebate_of(purchased: str, paid: str, new: str) -> tuple[D, D]:
    values = {"purchases": D(purchased), "paid": D(paid), "new_purchases": D(new)}
    return evaluate(coefficient, values), evaluate(rebate, values)


def test_the_scenario_top_tiers() -> None:
    assert rebate_of("1500000.01", "1425000.01", "450000.01") == (D("0.042"), D("63000.00"))
    assert rebate_of("2000000.00", "1900000.00", "599999.99") == (D("0.038"), D("76000.00"))
    assert rebate_of("2000000.00", "1899999.99", "2000000.00") == (D("0.035"), D("70000.00"))
    # Exactly 1.5M is not "over 1.5M": the next tier down.
    assert rebate_of("1500000.00", "1500000.00", "1500000.00") == (D("0.030"), D("45000.00"))


def test_rebates_round_half_up_to_the_fen() -> None:
    # 1,234,567.89 x 0.025 = 30,864.19725; 1,834,567.89 x 0.038 = 69,713.57982
    assert rebate_of("1234567.89", "1234567.89", "0.00") == (D("0.025"), D("30864.20"))
    assert rebate_of("1834567.89", "1834567.89", "0.00")[1] == D("69713.58")
    assert rebate_of("600000.10", "600000.10", "0")[1] == D("15000.00")
    assert rebate_of("600000.20", "600000.20", "0")[1] == D("15000.01")  # 15,000.005 -> up


def test_the_formula_reads_only_the_rollups() -> None:
    assert rebate.fields == ("purchases", "paid", "new_purchases")
    assert str(rebate.type) == "decimal(2)"


@pytest.fixture(scope="module")
def tables(engine: Engine) -> Iterator[Engine]:
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


AMOUNTS = st.decimals(0, 900_000, places=2, allow_nan=False, allow_infinity=False)
LINES = st.lists(
    st.tuples(
        st.integers(0, 3),
        AMOUNTS,
        st.sampled_from([D("1"), D("0.97"), D("0.95"), D("0.9")]),
        st.booleans(),
        st.dates(dt.date(2025, 12, 1), dt.date(2026, 4, 30)),
    ),
    max_size=16,
)


@settings(max_examples=60, deadline=None)
@given(lines=LINES)
def test_sql_over_rollups_equals_python_to_the_fen(
    tables: Engine, lines: list[tuple[int, D, D, bool, dt.date]]
) -> None:
    ids = [new_id() for _ in range(4)]
    system = {"created_at": STAMP, "updated_at": STAMP}
    rows = [
        {
            "id": new_id(),
            **system,
            "dealer_id": ids[dealer],
            "amount": amount,
            "paid": (amount * share).quantize(D("0.01")),
            "new_product": new,
            "ordered_on": day,
        }
        for dealer, amount, share, new, day in lines
    ]
    with tables.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(dealers), [{"id": i, **system} for i in ids])
        if rows:
            conn.execute(insert(purchases), rows)
        dialect = conn.dialect.name
        columns = {
            name: rollup_column(spec, PURCHASE, purchases, dealers.c.id, dialect)
            for name, spec in ROLLUPS.items()
        }
        sql = compile_formula(rebate, dialect=dialect, columns=columns)
        query = select(dealers.c.id, sql, *columns.values())
        got = {row[0]: row[1:] for row in conn.execute(query)}
        ordered = [
            row[0] for row in conn.execute(select(dealers.c.id).order_by(sql.desc(), dealers.c.id))
        ]
        transaction.rollback()
    quarter = [
        row for row in rows if dt.date(2026, 1, 1) <= row["ordered_on"] < dt.date(2026, 4, 1)
    ]
    for dealer_id in ids:
        amount, total, paid, new = got[dealer_id]
        mine = [row for row in quarter if row["dealer_id"] == dealer_id]
        assert total == sum((row["amount"] for row in mine), D("0.00"))
        assert paid == sum((row["paid"] for row in mine), D("0.00"))
        assert new == sum((row["amount"] for row in mine if row["new_product"]), D("0.00"))
        values = {"purchases": total, "paid": paid, "new_purchases": new}
        assert amount == evaluate(rebate, values)
    assert ordered == sorted(ids, key=lambda i: (-got[i][0], i))

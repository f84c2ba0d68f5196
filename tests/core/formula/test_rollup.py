"""Rollups in SQL equal a recomputation in Python, for every function, filter and backend."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy import Engine, MetaData, insert, select

from qiao.core.formula.rollup import check_spec, rollup_column, spec_info
from qiao.core.formula.types import INTEGER, decimal_type
from qiao.core.ids import new_id
from qiao.core.metadata.model import EntityDef
from qiao.core.metadata.rollup import RollupSpec
from qiao.core.schema.tables import build_table

D = decimal.Decimal
LABEL = {"en": "x"}
DEALER = EntityDef.model_validate(
    {"name": "ru_dealer", "plural": "ru_dealers", "label": LABEL, "fields": []}
)
PURCHASE = EntityDef.model_validate(
    {
        "name": "ru_purchase",
        "plural": "ru_purchases",
        "label": LABEL,
        "fields": [
            {"name": "dealer", "type": "relation", "target": "ru_dealer", "label": LABEL},
            {"name": "amount", "type": "decimal", "precision": 12, "scale": 2, "label": LABEL},
            {"name": "qty", "type": "integer", "label": LABEL},
            {"name": "is_new", "type": "boolean", "label": LABEL},
            {"name": "day", "type": "date", "label": LABEL},
        ],
    }
)
metadata = MetaData()
dealers = build_table(DEALER, metadata, with_fks=False)
purchases = build_table(PURCHASE, metadata, with_fks=False)
STAMP = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

#: Filters in the list-query language, each with the same condition written in Python.
FILTERS: list[tuple[dict[str, Any] | None, Callable[[dict[str, Any]], bool]]] = [
    (None, lambda row: True),
    ({"is_new": {"eq": True}}, lambda row: row["is_new"] is True),
    ({"amount": {"gte": "100.00"}}, lambda row: row["amount"] is not None and row["amount"] >= 100),
    (
        {"or": [{"is_new": {"eq": True}}, {"qty": {"lt": 0}}]},
        lambda row: row["is_new"] is True or (row["qty"] is not None and row["qty"] < 0),
    ),
    (
        {"day": {"gte": "2026-01-01", "lt": "2026-04-01"}},
        lambda row: (
            row["day"] is not None and dt.date(2026, 1, 1) <= row["day"] < dt.date(2026, 4, 1)
        ),
    ),
]


@pytest.fixture(scope="module")
def tables(engine: Engine) -> Iterator[Engine]:
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


def expected(function: str, values: list[Any], scale: int) -> Any:
    present = [v for v in values if v is not None]
    match function:
        case "count":
            return len(values)
        case "sum":
            return sum(present, D(0)).quantize(D("0.01")) if scale else sum(present)
        case "min":
            return min(present, default=None)
        case "max":
            return max(present, default=None)
    if not present:
        return None
    exact = decimal.Context(prec=100).divide(sum(present, D(0)), len(present))
    return exact.quantize(D(1).scaleb(-6), rounding=decimal.ROUND_HALF_UP)


ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "dealer": st.integers(0, 2),
            "amount": st.none()
            | st.decimals(-(10**9), 10**9, places=2, allow_nan=False, allow_infinity=False),
            "qty": st.none() | st.integers(-(2**31), 2**31 - 1),
            "is_new": st.none() | st.booleans(),
            "day": st.none() | st.dates(dt.date(2025, 10, 1), dt.date(2026, 6, 30)),
        }
    ),
    max_size=12,
)
SPECS = st.tuples(
    st.sampled_from(["count", "sum", "min", "max", "avg"]),
    st.sampled_from(["amount", "qty", "day"]),
    st.sampled_from(range(len(FILTERS))),
).filter(lambda t: not (t[0] in {"sum", "avg"} and t[1] == "day"))


@settings(max_examples=120, deadline=None)
@given(rows=ROWS, spec=SPECS)
def test_rollups_equal_a_recomputation(
    tables: Engine, rows: list[dict[str, Any]], spec: tuple[str, str, int]
) -> None:
    function, field, filter_index = spec
    spec_filter, keep = FILTERS[filter_index]
    rollup = RollupSpec(
        function=function,  # type: ignore[arg-type]
        entity="ru_purchase",
        link="dealer",
        field=None if function == "count" else field,
        filter=spec_filter,
    )
    check_spec(rollup, PURCHASE, DEALER)
    ids = [new_id() for _ in range(3)]
    system = {"created_at": STAMP, "updated_at": STAMP}
    with tables.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(dealers), [{"id": i, **system} for i in ids])
        if rows:
            conn.execute(
                insert(purchases),
                [
                    {"id": new_id(), **system, **row, "dealer_id": ids[row["dealer"]]}
                    for row in rows
                ],
            )
        column = rollup_column(rollup, PURCHASE, purchases, dealers.c.id, conn.dialect.name)
        got = dict(conn.execute(select(dealers.c.id, column)).all())
        transaction.rollback()
    for index, dealer_id in enumerate(ids):
        mine = [row for row in rows if row["dealer"] == index and keep(row)]
        values = [None if function == "count" else row[field] for row in mine]
        want = expected(function, values, 2 if field == "amount" else 0)
        assert got[dealer_id] == want, (rollup, mine)
        if isinstance(want, D):
            assert str(got[dealer_id]) == str(want)


def test_a_sum_beyond_its_declared_precision_stops_the_query_on_sqlite(tables: Engine) -> None:
    rollup = RollupSpec(
        function="sum", entity="ru_purchase", link="dealer", field="amount", precision=5
    )
    dealer = new_id()
    system = {"created_at": STAMP, "updated_at": STAMP}
    with tables.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(dealers), [{"id": dealer, **system}])
        conn.execute(
            insert(purchases),
            [{"id": new_id(), **system, "dealer_id": dealer, "amount": D("600.00")}] * 1
            + [{"id": new_id(), **system, "dealer_id": dealer, "amount": D("500.00")}],
        )
        column = rollup_column(rollup, PURCHASE, purchases, dealers.c.id, conn.dialect.name)
        query = select(column)
        if conn.dialect.name == "sqlite":
            with pytest.raises(Exception, match="integer overflow"):
                conn.execute(query).scalar_one()
        else:
            assert conn.execute(query).scalar_one() == D("1100.00")
        transaction.rollback()


def test_what_formulas_know_of_a_rollup() -> None:
    def info(**spec: Any) -> Any:
        return spec_info(RollupSpec(entity="ru_purchase", link="dealer", **spec), PURCHASE)

    assert info(function="count").type == INTEGER
    assert info(function="sum", field="amount", precision=14).type == decimal_type(2)
    assert info(function="sum", field="amount", precision=14).precision == 14
    assert info(function="avg", field="amount").type == decimal_type(6)
    assert info(function="avg", field="qty").type == decimal_type(6)
    assert info(function="max", field="qty").type == INTEGER


@pytest.mark.parametrize(
    ("spec", "parent", "message"),
    [
        (
            {"function": "sum", "link": "dealer", "field": "day"},
            "ru_dealer",
            "needs a number field",
        ),
        (
            {"function": "max", "link": "dealer", "field": "nope"},
            "ru_dealer",
            "needs a number, date",
        ),
        ({"function": "count", "link": "amount"}, "ru_dealer", "is not a relation to ru_dealer"),
        ({"function": "count", "link": "dealer"}, "account", "is not a relation to account"),
        (
            {"function": "count", "link": "dealer", "filter": {"amount": {"contains": "1"}}},
            "ru_dealer",
            "filter: operator 'contains' does not apply",
        ),
        ({"function": "count", "link": "dealer", "via": "name"}, "ru_dealer", "is not a relation"),
        (
            {"function": "count", "link": "dealer", "parent_filter": {"amount": {"eq": "nope"}}},
            "ru_dealer",
            "ru_dealer.nope is not a stored field comparable with ru_purchase.amount",
        ),
    ],
)
def test_specs_that_do_not_fit_the_entities_are_refused(
    spec: dict[str, Any], parent: str, message: str
) -> None:
    parent_entity = DEALER if parent == DEALER.name else DEALER.model_copy(update={"name": parent})
    with pytest.raises(ValueError, match=message):
        check_spec(RollupSpec(entity="ru_purchase", **spec), PURCHASE, parent_entity)


def test_count_takes_no_field_and_the_others_need_one() -> None:
    with pytest.raises(ValidationError, match="count counts records"):
        RollupSpec(function="count", entity="ru_purchase", link="dealer", field="amount")
    with pytest.raises(ValidationError, match="sum needs the field"):
        RollupSpec(function="sum", entity="ru_purchase", link="dealer")

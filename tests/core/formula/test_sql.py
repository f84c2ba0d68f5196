"""Compiled formulas compute in SQL exactly what the Python evaluator computes.

Hypothesis writes formulas over every type and operator and rows with NULLs,
signs, empty and Chinese text; each formula runs as a SELECT on SQLite and on
PostgreSQL and must equal the evaluator for every row, to the last decimal place.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
)

from qiao.core.formula import (
    Clock,
    FieldInfo,
    NotCompilable,
    check,
    compile_formula,
    decimal_type,
    evaluate,
)
from qiao.core.formula.types import BOOLEAN, DATE, DATETIME, INTEGER, STRING
from qiao.core.storage.types import ExactDecimal, UtcDateTime

D = decimal.Decimal
metadata = MetaData()
region = Table(
    "fx_region", metadata, Column("id", Integer, primary_key=True), Column("name", String(40))
)
item = Table(
    "fx_item",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("amount", ExactDecimal(12, 2)),
    Column("rate", ExactDecimal(6, 4)),
    Column("qty", BigInteger),
    Column("name", String(40)),
    Column("flag", Boolean),
    Column("day", Date),
    Column("due", UtcDateTime),
    Column("region_id", Integer, ForeignKey("fx_region.id")),
)
FIELDS = {
    ("amount",): FieldInfo(decimal_type(2), precision=12),
    ("rate",): FieldInfo(decimal_type(4), precision=6),
    ("qty",): FieldInfo(INTEGER),
    ("name",): FieldInfo(STRING),
    ("flag",): FieldInfo(BOOLEAN),
    ("day",): FieldInfo(DATE),
    ("due",): FieldInfo(DATETIME),
    ("region", "name"): FieldInfo(STRING),
}
CLOCK = Clock(now=lambda: dt.datetime(2026, 3, 31, 17, 30, tzinfo=dt.UTC))


@pytest.fixture(scope="module")
def tables(engine: Engine) -> Iterator[Engine]:
    metadata.create_all(engine)
    yield engine
    metadata.drop_all(engine)


def related(path: tuple[str, ...]) -> Any:
    assert path == ("region", "name")
    return select(region.c.name).where(region.c.id == item.c.region_id).scalar_subquery()


def run(conn: Connection, text: str, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows``, then check ``text`` in SQL against the evaluator on each."""
    formula = check(text, FIELDS.get)
    try:
        sql = compile_formula(
            formula,
            dialect=conn.dialect.name,
            columns={name: item.c[name] for (name, *rest) in FIELDS if not rest},
            related=related,
            clock=CLOCK,
        )
    except NotCompilable:
        assert conn.dialect.name == "sqlite", "every formula compiles on PostgreSQL"
        return
    conn.execute(insert(region), [{"id": 1, "name": "华东"}, {"id": 2, "name": ""}])
    conn.execute(insert(item), [{"id": i, **row} for i, row in enumerate(rows)])
    got = dict(conn.execute(select(item.c.id, sql).order_by(item.c.id)).all())
    for i, row in enumerate(rows):
        values = {k: v for k, v in row.items() if k != "region_id"}
        values["region.name"] = {1: "华东", 2: ""}.get(row["region_id"])
        expected = evaluate(formula, values, CLOCK)
        assert got[i] == expected, (text, row, got[i], expected)
        if isinstance(expected, D):
            assert str(got[i]) == str(expected), (text, row)


# -- Rows --------------------------------------------------------------------------------


def _amounts(places: int, digits: int) -> st.SearchStrategy[D | None]:
    limit = 10 ** (digits - places) - 1
    edges = st.sampled_from([D(0), D(1), D(-1), D("0.5"), D("-0.5"), D(limit)])
    spread = st.decimals(-limit, limit, places=places, allow_nan=False, allow_infinity=False)
    return st.none() | edges.map(lambda d: d.quantize(D(1).scaleb(-places))) | spread


ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "amount": _amounts(2, 12),
            "rate": _amounts(4, 6),
            "qty": st.none() | st.integers(-1000, 1000),
            "name": st.none() | st.sampled_from(["", "甲", "Acme", "乙方 Ltd", "a", "é"]),
            "flag": st.none() | st.booleans(),
            "day": st.none() | st.dates(dt.date(1990, 1, 1), dt.date(2100, 12, 31)),
            "due": st.none()
            | st.datetimes(dt.datetime(2000, 1, 1), dt.datetime(2050, 1, 1)).map(
                lambda d: d.replace(tzinfo=dt.UTC)
            ),
            "region_id": st.sampled_from([None, 1, 2]),
        }
    ),
    min_size=1,
    max_size=6,
)


# -- Formulas, by the type they compute ---------------------------------------------------

_decimal_literals = st.decimals(-999, 999, places=3, allow_nan=False).map(lambda d: f"({d})")


def numbers(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["amount", "rate", "qty", "0", "2", "-3", "0.5", "NULL"]) | (
        _decimal_literals
    )
    if depth <= 0:
        return leaves
    inner = numbers(depth - 1)
    return leaves | st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/"]), inner).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        inner.map(lambda a: f"-{a}"),
        st.tuples(inner, st.integers(0, 4)).map(lambda t: f"ROUND({t[0]}, {t[1]})"),
        inner.map(lambda a: f"ABS({a})"),
        st.lists(inner, min_size=1, max_size=3).map(lambda a: f"MIN({', '.join(a)})"),
        st.lists(inner, min_size=1, max_size=3).map(lambda a: f"MAX({', '.join(a)})"),
        st.tuples(booleans(depth - 1), inner, inner).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"CASE(qty, 1, {t[0]}, -2, {t[1]}, {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"BLANKVALUE({t[0]}, {t[1]})"),
        dates(depth - 1).map(lambda d: f"YEAR({d}) + QUARTER({d}) - MONTH({d}) * DAY({d})"),
        st.tuples(
            st.sampled_from(["", '"day", ', '"month", ', '"quarter", ', '"year", ']),
            dates(depth - 1),
            dates(depth - 1),
        ).map(lambda t: f"DATEDIFF({t[0]}{t[1]}, {t[2]})"),
        st.tuples(dates(depth - 1), dates(depth - 1)).map(lambda t: f"({t[0]} - {t[1]})"),
    )


def texts(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["name", '"甲"', '""', '"Acme"', '"a""b"', "region.name", "NULL"])
    if depth <= 0:
        return leaves
    inner = texts(depth - 1)
    return leaves | st.one_of(
        st.tuples(inner, inner).map(lambda t: f"({t[0]} & {t[1]})"),
        st.lists(inner, min_size=1, max_size=3).map(lambda a: f"CONCAT({', '.join(a)})"),
        st.tuples(booleans(depth - 1), inner, inner).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"BLANKVALUE({t[0]}, {t[1]})"),
    )


def dates(depth: int) -> st.SearchStrategy[str]:
    leaves = st.sampled_from(["day", "TODAY()"])
    if depth <= 0:
        return leaves
    inner = dates(depth - 1)
    return leaves | st.one_of(
        st.tuples(inner, st.sampled_from(["+", "-"]), st.sampled_from(["qty", "30", "NULL"])).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        st.lists(inner, min_size=1, max_size=3).map(lambda a: f"MAX({', '.join(a)})"),
        st.tuples(booleans(0), inner, inner).map(lambda t: f"IF({t[0]}, {t[1]}, {t[2]})"),
    )


def booleans(depth: int) -> st.SearchStrategy[str]:
    compare = st.sampled_from(["=", "<>", "<", "<=", ">", ">="])
    leaves = st.sampled_from(["flag", "TRUE", "FALSE", "NULL", "due < NOW()", "ISBLANK(due)"])
    if depth <= 0:
        return leaves
    return leaves | st.one_of(
        st.tuples(numbers(depth - 1), compare, numbers(depth - 1)).map(" ".join),
        st.tuples(texts(depth - 1), compare, texts(depth - 1)).map(" ".join),
        st.tuples(dates(depth - 1), compare, dates(depth - 1)).map(" ".join),
        st.lists(booleans(depth - 1), min_size=1, max_size=3).map(lambda a: f"AND({', '.join(a)})"),
        st.lists(booleans(depth - 1), min_size=1, max_size=3).map(lambda a: f"OR({', '.join(a)})"),
        booleans(depth - 1).map(lambda a: f"NOT({a})"),
        (numbers(depth - 1) | texts(depth - 1) | dates(depth - 1)).map(lambda a: f"ISBLANK({a})"),
        st.tuples(booleans(depth - 1), booleans(depth - 1)).map(lambda t: f"{t[0]} = {t[1]}"),
    )


FORMULAS = numbers(2) | texts(2) | dates(2) | booleans(2)


def _well_typed(text: str) -> bool:
    from qiao.core.formula import FormulaError

    try:
        check(text, FIELDS.get)
    except FormulaError:
        return False
    return True


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(text=FORMULAS.filter(_well_typed), rows=ROWS)
def test_sql_equals_the_evaluator(tables: Engine, text: str, rows: list[dict[str, Any]]) -> None:
    with tables.connect() as conn, conn.begin() as transaction:
        run(conn, text, rows)
        transaction.rollback()


def compile_on(dialect: str, text: str) -> Any:
    return compile_formula(
        check(text, FIELDS.get),
        dialect=dialect,
        columns={name: item.c[name] for (name, *rest) in FIELDS if not rest},
        related=related,
        clock=CLOCK,
    )


def test_sqlite_refuses_what_could_overflow_64_bits_and_postgresql_takes_it() -> None:
    # amount has 12 digits and rate 6: their product fits in 18, a second rate does not.
    compile_on("sqlite", "amount * rate")
    text = "amount * rate * rate"
    with pytest.raises(NotCompilable) as caught:
        compile_on("sqlite", text)
    assert str(caught.value).startswith("line 1, column 15: values here could exceed SQLite's")
    compile_on("postgresql", text)


def test_formulas_filter_and_sort_in_sql(tables: Engine) -> None:
    rows = [
        {"amount": D("10.00"), "rate": D("0.1000"), "name": "b"},
        {"amount": D("5.00"), "rate": D("0.5000"), "name": "a"},
        {"amount": None, "rate": D("1.0000"), "name": "c"},
    ]
    with tables.connect() as conn, conn.begin() as transaction:
        conn.execute(insert(item), [{"id": i, **row} for i, row in enumerate(rows)])
        dialect = conn.dialect.name
        commission = compile_on(dialect, "ROUND(amount * rate, 2)")
        big = compile_on(dialect, "amount * rate >= 1")
        query = select(item.c.name, commission).where(big).order_by(commission.desc())
        assert conn.execute(query).all() == [("a", D("2.50")), ("b", D("1.00"))]
        transaction.rollback()

"""The records service: the one door every reader and writer goes through."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qiao.core.errors import BadUserInput, Conflict, NotFound
from qiao.core.records.context import Actor, Source


@pytest.fixture
def records(qiao_runtime):
    return qiao_runtime.records


def write(records, fn):
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        return fn(ctx)


def test_create_stores_normalised_values_and_system_fields(records, create):
    account = create(
        "account",
        name="苏州精工机械有限公司",
        phone="0512 6532 8888",
        annual_revenue="12500000.50",
        employees=320,
        kind="DEALER",
    )
    assert account["version"] == 1
    assert account["created_at"].tzinfo is not None
    assert account["phone"] == "+8651265328888"
    assert account["annual_revenue"] == Decimal("12500000.50")
    with records.db.read() as conn:
        again = records.get(conn, "account", account["id"], actor=Actor.system())
    assert again == account


def test_full_width_input_is_normalised(create):
    contact = create("contact", name="王　芳", mobile="１３８００１３８０００")
    assert contact["mobile"] == "+8613800138000"


@pytest.mark.parametrize(
    ("values", "field", "fragment"),
    [
        ({"name": "x", "colour": "red"}, "colour", "no field"),
        ({"name": "x" * 201}, "name", "200"),
        ({"name": None}, "name", "required"),
        ({}, "name", "required"),
        ({"name": "x", "employees": "many"}, "employees", "whole number"),
        ({"name": "x", "employees": -1}, "employees", "0"),
        ({"name": "x", "annual_revenue": "1.234"}, "annual_revenue", "decimal places"),
        ({"name": "x", "annual_revenue": "abc"}, "annual_revenue", "decimal"),
        ({"name": "x", "kind": "PIRATE"}, "kind", "PIRATE"),
        ({"name": "x", "website": "not a url"}, "website", "URL"),
        ({"name": "x", "phone": "12"}, "phone", "phone"),
        ({"name": "x", "parent_id": "nope"}, "parent_id", "id"),
        ({"name": "x", "unified_credit_code": "short"}, "unified_credit_code", "18"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(records, count_rows, values, field, fragment):
    with pytest.raises(BadUserInput) as caught:
        write(records, lambda ctx: records.create(ctx, "account", values))
    assert caught.value.field in {field, field.removesuffix("_id")}
    assert fragment.lower() in caught.value.message.lower()
    assert count_rows("account") == 0


def test_a_relation_to_a_missing_record_is_refused(records, count_rows):
    missing = "01900000-0000-7000-8000-000000000000"
    with pytest.raises(BadUserInput) as caught:
        write(
            records,
            lambda ctx: records.create(ctx, "contact", {"name": "李", "account_id": missing}),
        )
    assert caught.value.field in {"account", "account_id"}
    assert count_rows("contact") == 0


def test_a_failure_later_in_a_transaction_rolls_back_earlier_writes(records, count_rows):
    def two_writes(ctx):
        records.create(ctx, "account", {"name": "先写入的客户"})
        records.create(ctx, "account", {"name": ""})

    with pytest.raises(BadUserInput):
        write(records, two_writes)
    assert count_rows("account") == 0


def test_unique_values_conflict(records, create, count_rows):
    create("product", name="数控车床", sku="CK6150")
    with pytest.raises(Conflict) as caught:
        create("product", name="另一台", sku="CK6150")
    assert caught.value.field == "sku"
    assert count_rows("product") == 1


def test_defaults_apply_on_create(create):
    product = create("product", name="主轴", sku="SP-01")
    assert product["unit"] == "件"
    assert product["is_active"] is True


def test_update_changes_only_given_fields_and_bumps_version(records, create):
    account = create("account", name="旧名", city="苏州")
    updated = write(
        records, lambda ctx: records.update(ctx, "account", account["id"], {"name": "新名"})
    )
    assert updated["name"] == "新名"
    assert updated["city"] == "苏州"
    assert updated["version"] == 2
    assert updated["updated_at"] >= account["updated_at"]


def test_stale_update_is_refused_and_nothing_is_overwritten(records, create):
    account = create("account", name="原始")
    write(records, lambda ctx: records.update(ctx, "account", account["id"], {"name": "甲改"}, 1))
    with pytest.raises(Conflict) as caught:
        write(
            records, lambda ctx: records.update(ctx, "account", account["id"], {"name": "乙改"}, 1)
        )
    assert "reload" in caught.value.message
    with records.db.read() as conn:
        assert records.get(conn, "account", account["id"], actor=Actor.system())["name"] == "甲改"


def test_update_and_delete_of_missing_records_are_not_found(records):
    missing = "01900000-0000-7000-8000-000000000000"
    with pytest.raises(NotFound):
        write(records, lambda ctx: records.update(ctx, "account", missing, {"name": "x"}))
    with pytest.raises(NotFound):
        write(records, lambda ctx: records.delete(ctx, "account", missing))


def test_require_reads_a_record_or_says_which_is_missing(records, create, qiao_runtime):
    account = create("account", name="上海明达")
    missing = "01900000-0000-7000-8000-000000000000"
    with qiao_runtime.db.read() as conn:
        assert records.require(conn, "account", account["id"], actor=Actor.system()) == (
            records.get(conn, "account", account["id"], actor=Actor.system())
        )
        with pytest.raises(NotFound, match=f"no account with id {missing}") as caught:
            records.require(conn, "account", missing, actor=Actor.system(), field="accountId")
    assert caught.value.field == "accountId"


def test_update_refuses_clearing_a_required_field(records, create):
    account = create("account", name="必填")
    with pytest.raises(BadUserInput) as caught:
        write(records, lambda ctx: records.update(ctx, "account", account["id"], {"name": None}))
    assert caught.value.field == "name"


def test_delete_follows_on_delete_rules(records, create, count_rows):
    account = create("account", name="删除测试")
    contact = create("contact", name="联系人", account_id=account["id"])
    create(
        "activity",
        kind="VISIT",
        occurred_at=dt.datetime(2026, 11, 20, 9, 30, tzinfo=dt.UTC),
        account_id=account["id"],
    )
    opportunity = create("opportunity", name="商机", account_id=account["id"])
    with pytest.raises(Conflict) as caught:
        write(records, lambda ctx: records.delete(ctx, "account", account["id"]))
    assert "opportunit" in caught.value.message
    assert count_rows("account") == 1 and count_rows("activity") == 1

    write(records, lambda ctx: records.delete(ctx, "opportunity", opportunity["id"]))
    write(records, lambda ctx: records.delete(ctx, "account", account["id"]))
    assert count_rows("activity") == 0  # cascade
    with records.db.read() as conn:
        assert (
            records.get(conn, "contact", contact["id"], actor=Actor.system())["account_id"] is None
        )  # set null


def test_datetimes_are_stored_as_instants(records, create):
    shanghai = dt.timezone(dt.timedelta(hours=8))
    activity = create(
        "activity", kind="CALL", occurred_at=dt.datetime(2026, 11, 25, 17, 0, tzinfo=shanghai)
    )
    assert activity["occurred_at"] == dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC)
    with pytest.raises(BadUserInput) as caught:
        create("activity", kind="CALL", occurred_at=dt.datetime(2026, 11, 25, 17, 0))
    assert caught.value.field == "occurred_at"


def test_list_filters_orders_and_pages_with_keyset_cursors(records, create):
    for i in range(7):
        create("account", name=f"客户{i}", employees=i % 3, city="苏州" if i % 2 else "无锡")
    with records.db.read() as conn:
        first = records.list(
            conn,
            "account",
            filter={"city": {"eq": "苏州"}},
            order_by=[{"field": "employees", "direction": "DESC"}],
            first=2,
            with_total=True,
            actor=Actor.system(),
        )
        assert first.total_count == 3
        assert [r["employees"] for r in first.records] == [2, 1]
        assert first.has_next_page and not first.has_previous_page
        rest = records.list(
            conn,
            "account",
            filter={"city": {"eq": "苏州"}},
            order_by=[{"field": "employees", "direction": "DESC"}],
            first=2,
            after=first.cursors[-1],
            actor=Actor.system(),
        )
        assert [r["employees"] for r in rest.records] == [0]
        assert not rest.has_next_page and rest.has_previous_page
        back = records.list(
            conn,
            "account",
            filter={"city": {"eq": "苏州"}},
            order_by=[{"field": "employees", "direction": "DESC"}],
            last=2,
            before=rest.cursors[0],
            actor=Actor.system(),
        )
        assert [r["id"] for r in back.records] == [r["id"] for r in first.records]


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"first": 501}, "maximum of 500"),
        ({"first": -1}, "negative"),
        ({"first": 1, "last": 1}, "either"),
        ({"after": "garbage!"}, "malformed cursor"),
        ({"after": "eyJ4IjoxfQ"}, "malformed cursor"),
        ({"filter": {"nope": {"eq": 1}}}, "nope"),
        ({"filter": {"name": {"like": "x"}}}, "like"),
        ({"order_by": [{"field": "nope"}]}, "nope"),
    ],
)
def test_list_refuses_bad_arguments(records, kwargs, fragment):
    with records.db.read() as conn, pytest.raises(BadUserInput) as caught:
        records.list(conn, "account", **kwargs, actor=Actor.system())
    assert fragment in caught.value.message


def test_a_cursor_from_another_order_is_refused(records, create):
    create("account", name="甲")
    create("account", name="乙")
    with records.db.read() as conn:
        page = records.list(conn, "account", first=1, actor=Actor.system())
        with pytest.raises(BadUserInput, match="another query order"):
            records.list(
                conn,
                "account",
                order_by=[{"field": "name"}],
                after=page.cursors[0],
                actor=Actor.system(),
            )


def test_the_records_service_and_graphql_agree_on_page_boundaries(records, create, qiao_client):
    """One paginator: a cursor with nothing behind it under this filter has no previous page,
    whether the list is read through the records service or a compiled GraphQL query."""
    for name, city in [("A", "无锡"), ("B", "苏州"), ("C", "苏州"), ("D", "苏州")]:
        create("account", name=name, city=city)
    order = [{"field": "name", "direction": "ASC"}]
    with records.db.read() as conn:
        everyone = records.list(conn, "account", order_by=order, actor=Actor.system())
        from_a = everyone.cursors[0]  # 无锡's A: before every 苏州 account
        pages = {}
        for label, args in {
            "after A": {"first": 2, "after": from_a},
            "after B": {"first": 2, "after": everyone.cursors[1]},
            "before D": {"last": 1, "before": everyone.cursors[3]},
            "before B": {"last": 5, "before": everyone.cursors[1]},
        }.items():
            page = records.list(
                conn,
                "account",
                filter={"city": {"eq": "苏州"}},
                order_by=order,
                **args,
                actor=Actor.system(),
            )
            pages[label] = (
                [r["name"] for r in page.records],
                page.has_previous_page,
                page.has_next_page,
            )
    assert pages == {
        "after A": (["B", "C"], False, True),
        "after B": (["C", "D"], True, False),
        "before D": (["C"], True, True),
        "before B": ([], False, True),
    }
    query = """query($first: Int, $after: String, $last: Int, $before: String) {
      accounts(filter: {city: {eq: "苏州"}}, orderBy: [{field: NAME}], first: $first,
               after: $after, last: $last, before: $before) {
        pageInfo { hasPreviousPage hasNextPage }
        edges { node { name } }
      }
    }"""
    for label, args in {
        "after A": {"first": 2, "after": from_a},
        "after B": {"first": 2, "after": everyone.cursors[1]},
        "before D": {"last": 1, "before": everyone.cursors[3]},
        "before B": {"last": 5, "before": everyone.cursors[1]},
    }.items():
        result = qiao_client.data(query, args)["accounts"]
        info = result["pageInfo"]
        names = [e["node"]["name"] for e in result["edges"]]
        assert (names, info["hasPreviousPage"], info["hasNextPage"]) == pages[label], label

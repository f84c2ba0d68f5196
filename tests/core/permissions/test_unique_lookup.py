"""Record ids by a unique field (``records.ids_by_unique``), read under the caller's rules."""

from __future__ import annotations

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor

SUZHOU = "91320500MA1W2X3Y4Q"
BEIJING = "91110000MA01ABCD5E"
UNKNOWN = "91440300MA5FQ8RX2K"


@pytest.fixture
def accounts(org):
    return {
        code: org.create("account", name=name, owner=org.users[owner], unified_credit_code=code)
        for code, name, owner in [(SUZHOU, "苏州精工", "zhang"), (BEIJING, "北京重工", "zhao")]
    }


def lookup(org, values, actor, field="unified_credit_code"):
    with org.runtime.db.read() as conn:
        return org.runtime.records.ids_by_unique(conn, "account", field, values, actor=actor)


def test_each_value_naming_a_record_gives_its_id(org, accounts):
    found = lookup(org, [SUZHOU, BEIJING, SUZHOU], Actor.system())
    assert found.ids == {SUZHOU: accounts[SUZHOU]["id"], BEIJING: accounts[BEIJING]["id"]}
    assert found.id(BEIJING) == accounts[BEIJING]["id"]


def test_a_value_naming_no_record_is_refused_on_the_field_given(org, accounts):
    found = lookup(org, [SUZHOU, UNKNOWN], Actor.system())
    assert UNKNOWN not in found.ids
    with pytest.raises(BadUserInput) as caught:
        found.id(UNKNOWN, field="dealer")
    assert caught.value.message == f"no account whose unified_credit_code is {UNKNOWN!r}"
    assert caught.value.field == "dealer"


def test_a_record_hidden_by_the_actors_rules_reads_as_missing(org, accounts):
    found = lookup(org, [SUZHOU, BEIJING], org.actor("zhang"))
    assert found.ids == {SUZHOU: accounts[SUZHOU]["id"]}
    with pytest.raises(BadUserInput, match="no account whose unified_credit_code is"):
        found.id(BEIJING)


def test_a_field_that_is_not_unique_is_refused(org, accounts):
    with pytest.raises(BadUserInput) as caught:
        lookup(org, ["苏州精工"], Actor.system(), field="name")
    assert "account.name is no unique field" in caught.value.message
    assert caught.value.field == "name"


def test_no_values_need_no_query_and_find_nothing(org):
    assert lookup(org, [], org.actor("nobody")).ids == {}

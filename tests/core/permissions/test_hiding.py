"""What the roles can hide, as far as the schema shows it (core/permissions/hiding.py).

Only required fields are non-null and only required relations' targets can leave a
related record null, so roles that differ in nothing else make equal hidings, and
deployments with them share one built schema.
"""

from __future__ import annotations

from typing import Any

from qiao.core.permissions.hiding import hiding_of
from qiao.core.permissions.rights import Rights
from qiao.core.runtime import Runtime


def role(entities: dict[str, Any], fields: dict[str, Any] | None = None) -> Rights:
    return Rights.parse({"entities": entities, "fields": fields or {}})


#: Reads accounts and activities in full and hides nothing.
PLAIN = {"activity": {"read": "all"}, "account": {"read": "all"}}


def test_what_cannot_change_the_schema_is_not_kept(qiao_runtime: Runtime) -> None:
    catalog = qiao_runtime.current()
    # An activity is no required relation's target; a city is not required.
    clerk = role({**PLAIN, "activity": {"read": "own"}}, {"account": {"city": "none"}})
    assert hiding_of(catalog, [clerk]) == hiding_of(catalog, [role(PLAIN)])


def test_a_hidden_required_field_and_a_partly_read_target_are_kept(qiao_runtime: Runtime) -> None:
    catalog = qiao_runtime.current()
    plain = hiding_of(catalog, [role(PLAIN)])
    hidden = {"account": {"name": "none", "city": "none"}}
    rep = hiding_of(catalog, [role({**PLAIN, "account": {"read": "own"}}, hidden)])
    assert rep.fields - plain.fields == {("account", "name")}
    assert rep.rows - plain.rows == {"account"}
    assert plain.rows <= rep.rows and plain.fields <= rep.fields

"""A masked reader sees masks on every read path and can never learn or write the value."""

from __future__ import annotations

import pytest

from qiao.core.errors import BadUserInput, Forbidden
from qiao.core.records.context import Source

from .conftest import ZHANG

FIELDS = "name mobile phone email idNumber notes"
MASKED = {
    "name": "张*",
    "mobile": "138****5678",
    "phone": "139****1111",
    "email": "z***@example.cn",
    "idNumber": "110***********1234",
    "notes": "复诊",
}
CLEAR = {
    "name": "张三",
    "mobile": "+8613812345678",
    "phone": "+8613900001111",
    "email": "zhangsan@example.cn",
    "idNumber": "110101199003071234",
    "notes": "复诊",
}


def test_lists_and_single_records_are_masked_for_the_front_desk(clinic, client_for):
    desk = client_for("desk")
    listed = desk.data(f"{{ patients {{ totalCount edges {{ node {{ {FIELDS} }} }} }} }}")
    assert listed["patients"]["totalCount"] == 1
    assert listed["patients"]["edges"][0]["node"] == MASKED
    one = desk.data(
        f"query($id: ID!) {{ patient(id: $id) {{ {FIELDS} }} }}", {"id": clinic.patient["id"]}
    )
    assert one == {"patient": MASKED}


@pytest.mark.parametrize("username", ["doctor", "head"])
def test_a_role_that_reads_in_clear_wins(clinic, client_for, username):
    client = client_for(username)
    listed = client.data(f"{{ patients {{ edges {{ node {{ {FIELDS} }} }} }} }}")
    assert listed["patients"]["edges"][0]["node"] == CLEAR


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ('{ patients(filter: {mobile: {eq: "13812345678"}}) { totalCount } }', "mobile"),
        ('{ patients(filter: {name: {startsWith: "张"}}) { totalCount } }', "name"),
        ('{ patients(filter: {or: [{email: {contains: "zhang"}}]}) { totalCount } }', "email"),
        ("{ patients(orderBy: [{field: NAME}]) { totalCount } }", "name"),
        ("{ patients { edges { node { greeting } } } }", "greeting"),
        ("{ patients { edges { node { visits } } } }", "visits"),
    ],
)
def test_masked_fields_cannot_be_filtered_ordered_or_computed_on(client_for, query, field):
    (error,) = client_for("desk").errors(query)
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert error["extensions"]["field"] in {field, _camel(field)}


def test_the_records_service_masks_and_refuses_the_same(clinic):
    records = clinic.runtime.records
    desk = clinic.actor("desk")
    with records.db.read() as conn:
        got = records.get(conn, "patient", clinic.patient["id"], actor=desk)
        page = records.list(conn, "patient", actor=desk)
        with pytest.raises(Forbidden) as refused:
            records.list(conn, "patient", filter={"mobile": {"eq": ZHANG["mobile"]}}, actor=desk)
        clear = records.get(conn, "patient", clinic.patient["id"], actor=clinic.actor("doctor"))
    assert got is not None and page.records == [got]
    assert (got["name"], got["mobile"], got["phone"], got["id_number"]) == (
        "张*",
        "138****5678",
        "139****1111",
        "110***********1234",
    )
    assert refused.value.field == "mobile"
    assert clear is not None and clear["mobile"] == "+86" + ZHANG["mobile"]


def test_a_masked_value_is_never_written_back(clinic, client_for):
    update = (
        "mutation($id: ID!, $input: PatientUpdateInput!) "
        "{ updatePatient(id: $id, input: $input) { mobile } }"
    )
    variables = {"id": clinic.patient["id"], "input": {"mobile": "138****5678"}}
    for username in ("desk", "doctor"):
        (error,) = client_for(username).errors(update, variables)
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "mobile"}
        assert "masked form" in error["message"]
    real = {"id": clinic.patient["id"], "input": {"mobile": "13900002222"}}
    (error,) = client_for("desk").errors(update, real)
    assert error["extensions"] == {"code": "FORBIDDEN", "field": "mobile"}
    records = clinic.runtime.records
    doctor = clinic.actor("doctor")
    with pytest.raises(BadUserInput), records.transaction(doctor, Source.GRAPHQL) as ctx:
        records.update(ctx, "patient", clinic.patient["id"], {"id_number": "110***********1234"})
    # The desk still changes what it may: the notes, shown in clear.
    changed = client_for("desk").data(
        'mutation($id: ID!) { updatePatient(id: $id, input: {notes: "已回访"}) { notes name } }',
        {"id": clinic.patient["id"]},
    )
    assert changed == {"updatePatient": {"notes": "已回访", "name": "张*"}}


def test_the_audit_trail_shows_masked_changes(clinic, client_for):
    trail = client_for("desk").data(
        'query($id: ID!) { auditTrail(entity: "Patient", id: $id) '
        "{ edges { node { operation changes } } } }",
        {"id": clinic.patient["id"]},
    )
    (entry,) = trail["auditTrail"]["edges"]
    changes = entry["node"]["changes"]
    assert changes["mobile"] == {"old": None, "new": "138****5678"}
    assert changes["name"] == {"old": None, "new": "张*"}
    assert changes["visits"] == {"redacted": True}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)

"""Encrypted fields through GraphQL: compiled reads open them; filters use blind indexes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import select, update

from .conftest import ALICE

FIELDS = "id name phone email idNumber diagnosis notes"


def create(client: Any, values: dict[str, Any]) -> dict[str, Any]:
    data = client.data(
        f"mutation($input: PatientCreateInput!) {{ createPatient(input: $input) {{ {FIELDS} }} }}",
        {"input": values},
    )
    return data["createPatient"]


def graphql_input(values: dict[str, Any]) -> dict[str, Any]:
    return {("idNumber" if k == "id_number" else k): v for k, v in values.items()}


def test_mutation_results_and_compiled_reads_hold_plaintext(qiao_client):
    created = create(qiao_client, graphql_input(ALICE))
    assert created["phone"] == "+8613800138000" and created["diagnosis"] == "高血压"
    data = qiao_client.data(f"{{ patients {{ edges {{ node {{ {FIELDS} }} }} }} }}")
    assert data["patients"]["edges"][0]["node"] == created
    one = qiao_client.data(f'{{ patient(id: "{created["id"]}") {{ notes me: phone }} }}')
    assert one == {"patient": {"notes": "每日复查血压。", "me": "+8613800138000"}}


def test_a_read_in_the_event_loop_opens_encrypted_fields_too(
    qiao_client, qiao_app, qiao_backend, qiao_runtime, monkeypatch
):
    """A query asked again is read in the event loop on PostgreSQL (docs/graphql.md)."""
    # The version checked once a second, as by default (tests check it on every request).
    monkeypatch.setattr(
        qiao_runtime, "config", replace(qiao_runtime.config, metadata_check_interval=1.0)
    )
    created = create(qiao_client, graphql_input(ALICE))
    query = f"{{ patients {{ edges {{ node {{ {FIELDS} }} }} }} }}"
    first = qiao_client.data(query)
    reads = qiao_app.state.loop_reads
    before = reads.served if reads is not None else 0
    assert qiao_client.data(query) == first
    assert first["patients"]["edges"][0]["node"] == created
    assert (reads.served - before if reads is not None else 0) == (
        1 if qiao_backend == "postgresql" else 0
    )


def test_eq_and_in_filters_find_records_by_blind_index(qiao_client):
    create(qiao_client, graphql_input(ALICE))
    create(qiao_client, {"name": "李四", "phone": "13900139000"})
    query = "query($f: PatientFilter) { patients(filter: $f) { edges { node { name } } } }"

    def names(spec: dict[str, Any]) -> list[str]:
        data = qiao_client.data(query, {"f": spec})
        return sorted(e["node"]["name"] for e in data["patients"]["edges"])

    assert names({"phone": {"eq": "+86 138 0013 8000"}}) == ["张三"]
    assert names({"email": {"eq": "ZHANG.SAN@example.cn"}}) == ["张三"]
    assert names({"phone": {"in": ["13900139000", "13800138000"]}}) == ["张三", "李四"]
    assert names({"or": [{"idNumber": {"eq": "11010519491231002X"}}, {"name": {"eq": "x"}}]}) == [
        "张三"
    ]


def test_other_operators_and_ordering_are_bad_user_input(qiao_client):
    for query in (
        '{ patients(filter: {phone: {contains: "138"}}) { totalCount } }',
        '{ patients(filter: {diagnosis: {eq: "高血压"}}) { totalCount } }',
        "{ patients(orderBy: [{field: PHONE}]) { totalCount } }",
    ):
        errors = qiao_client.errors(query)
        assert errors[0]["extensions"]["code"] == "BAD_USER_INPUT", errors
        assert "stored encrypted" in errors[0]["message"]


def test_a_forged_blind_index_does_not_return_the_row_from_a_compiled_read(
    qiao_client, qiao_runtime
):
    alice = create(qiao_client, graphql_input(ALICE))
    bob = create(qiao_client, {"name": "李四", "phone": "13900139000"})
    table = qiao_runtime.current().table("patient")
    with qiao_runtime.db.write() as conn:  # Bob's index replaced by Alice's, by hand
        forged = conn.execute(select(table.c.phone_bidx).where(table.c.id == alice["id"]))
        conn.execute(
            update(table).where(table.c.id == bob["id"]).values(phone_bidx=forged.scalar_one())
        )
    query = (
        "query($f: PatientFilter) { patients(filter: $f) "
        "{ totalCount edges { node { name phone } } } }"
    )
    for _ in range(2):  # the second time as well: confirmed ids are never cached
        data = qiao_client.data(query, {"f": {"phone": {"eq": "13800138000"}}})["patients"]
        assert data["totalCount"] == 1
        assert [e["node"] for e in data["edges"]] == [{"name": "张三", "phone": "+8613800138000"}]
    nobody = qiao_client.data(query, {"f": {"phone": {"eq": "13900139000"}}})["patients"]
    assert nobody == {"totalCount": 0, "edges": []}


def test_a_page_opens_each_value_against_its_own_record(qiao_client, qiao_runtime, caplog):
    made = [create(qiao_client, {"name": f"p{n}", "notes": f"n{n}"}) for n in range(3)]
    with qiao_runtime.db.write() as conn:
        qiao_runtime.records.encryption.keys.rotate_data_key(conn, "patient")
    made += [create(qiao_client, {"name": f"p{n}", "notes": f"n{n}"}) for n in range(3, 6)]
    query = "{ patients(first: 10) { edges { node { id notes again: notes } } } }"

    def page() -> dict[str, Any]:
        data = qiao_client.data(query)["patients"]["edges"]
        assert all(e["node"]["again"] == e["node"]["notes"] for e in data)
        return {e["node"]["id"]: e["node"]["notes"] for e in data}

    expected = {m["id"]: m["notes"] for m in made}
    assert page() == expected  # the values this process sealed, remembered
    assert page() == expected  # opened from what is stored, under two data keys
    table = qiao_runtime.current().table("patient")
    victim, copied = made[4]["id"], made[1]["id"]
    with qiao_runtime.db.write() as conn:
        token = conn.execute(select(table.c.notes).where(table.c.id == copied)).scalar_one()
        conn.execute(update(table).where(table.c.id == victim).values(notes=token))
    errors = qiao_client.errors(query)
    assert [e["extensions"]["code"] for e in errors] == ["INTERNAL_SERVER_ERROR"]
    assert "n1" not in str(errors)
    assert f"patient.notes of record {victim}: the sealed value does not verify" in caplog.text

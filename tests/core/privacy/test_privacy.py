"""Consent guards, retention and lawful erasure through GraphQL on a live server."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import event

from qiao.core.errors import BadUserInput
from qiao.core.records.context import Actor, Source

NOW = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 2026-03-02 10:00 in Shanghai

PATIENT = "mutation($i: PatientCreateInput!) { createPatient(input: $i) { id } }"
VISIT = "mutation($i: VisitCreateInput!) { createVisit(input: $i) { id } }"
MESSAGE = "mutation($i: MessageCreateInput!) { createMessage(input: $i) { id } }"
CONSENT = "mutation($i: ConsentCreateInput!) { createConsent(input: $i) { id } }"
WITHDRAW = (
    "mutation($id: ID!, $at: DateTime!) "
    "{ updateConsent(id: $id, input: {withdrawnAt: $at}) { withdrawnAt } }"
)


def _patient(client, name="张三", birth="1980-05-01") -> str:
    data = client.data(PATIENT, {"i": {"name": name, "mobile": "13812345678", "birthDate": birth}})
    return data["createPatient"]["id"]


def _consent(client, patient, purpose, **more) -> str:
    values = {
        "subjectEntity": "patient",
        "subjectId": patient,
        "purpose": purpose,
        "grantedAt": NOW.isoformat(),
        **more,
    }
    return client.data(CONSENT, {"i": values})["createConsent"]["id"]


@pytest.fixture
def clock(qiao_clock):
    qiao_clock.set(NOW)
    return qiao_clock


def test_records_that_need_consent_wait_for_it_and_stop_when_it_is_withdrawn(clock, qiao_client):
    patient = _patient(qiao_client)
    visit = {"i": {"patientId": patient, "visitDate": "2026-03-02", "notes": "初诊"}}
    (error,) = qiao_client.errors(VISIT, visit)
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "patient"}
    assert "sensitive data for treatment" in error["message"]
    _consent(qiao_client, patient, "treatment")  # not the separate consent sensitive data needs
    assert qiao_client.errors(VISIT, visit)[0]["extensions"]["field"] == "patient"
    consent = _consent(qiao_client, patient, "treatment", sensitive=True)
    assert qiao_client.data(VISIT, visit)["createVisit"]["id"]

    message = {"i": {"patientId": patient, "body": "春季体检优惠"}}
    assert qiao_client.errors(MESSAGE, message)[0]["extensions"]["field"] == "patient"
    marketing = _consent(qiao_client, patient, "marketing")
    assert qiao_client.data(MESSAGE, message)["createMessage"]["id"]
    clock.advance(hours=1)
    withdrawn = qiao_client.data(WITHDRAW, {"id": marketing, "at": clock().isoformat()})
    assert withdrawn["updateConsent"]["withdrawnAt"]
    assert qiao_client.errors(MESSAGE, message)[0]["extensions"]["field"] == "patient"
    assert consent  # the treatment consent still stands
    first = qiao_client.data(VISIT, visit)["createVisit"]["id"]
    stranger = _patient(qiao_client, "陌生人")
    moved = qiao_client.errors(
        "mutation($id: ID!, $p: ID!) { updateVisit(id: $id, input: {patientId: $p}) { id } }",
        {"id": first, "p": stranger},
    )
    assert moved[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "patient"}
    edited = qiao_client.data(
        "mutation($id: ID!, $p: ID!) { updateVisit(id: $id, input: {patientId: $p, "
        'notes: "复诊"}) { notes } }',
        {"id": first, "p": patient},
    )
    assert edited == {"updateVisit": {"notes": "复诊"}}


def test_a_child_under_14_needs_a_guardians_consent_until_their_birthday(clock, qiao_client):
    child = _patient(qiao_client, "李小明", birth="2012-03-05")  # 14 on 2026-03-05
    visit = {"i": {"patientId": child, "visitDate": "2026-03-02"}}
    _consent(qiao_client, child, "treatment", sensitive=True)
    (error,) = qiao_client.errors(VISIT, visit)
    assert "guardian" in error["message"]
    _consent(
        qiao_client, child, "treatment", sensitive=True, givenBy="GUARDIAN", guardianName="李强"
    )
    assert qiao_client.data(VISIT, visit)["createVisit"]["id"]

    other = _patient(qiao_client, "王小红", birth="2012-03-05")
    _consent(qiao_client, other, "treatment", sensitive=True)
    later = {"i": {"patientId": other, "visitDate": "2026-03-05"}}
    assert qiao_client.errors(VISIT, later)[0]["extensions"]["field"] == "patient"
    clock.advance(hours=24 * 3)  # 2026-03-05: fourteen, their own consent counts
    assert qiao_client.data(VISIT, later)["createVisit"]["id"]


def test_erasure_keeps_what_the_law_keeps_and_audits_without_the_data(
    clock, qiao_client, qiao_runtime
):
    patient = _patient(qiao_client)
    _consent(qiao_client, patient, "treatment", sensitive=True)
    _consent(qiao_client, patient, "marketing")
    records = qiao_runtime.records
    recent = qiao_client.data(
        VISIT, {"i": {"patientId": patient, "visitDate": "2020-06-01", "notes": "高血压复诊"}}
    )["createVisit"]["id"]
    old = qiao_client.data(
        VISIT, {"i": {"patientId": patient, "visitDate": "2010-01-10", "notes": "阑尾炎"}}
    )["createVisit"]["id"]
    message = qiao_client.data(MESSAGE, {"i": {"patientId": patient, "body": "体检优惠"}})[
        "createMessage"
    ]["id"]

    report = qiao_client.data(
        'mutation($id: ID!) { eraseSubject(entity: "patient", id: $id, reason: "本人申请") }',
        {"id": patient},
    )["eraseSubject"]
    erased = {(e["entity"], e["id"]): e["action"] for e in report["erased"]}
    assert erased == {("visit", old): "ANONYMISED", ("message", message): "DELETED"}
    kept = {(k["entity"], k["id"]): k["until"] for k in report["kept"]}
    # the recent visit, and the patient until 15 years after their last visit
    assert kept == {("visit", recent): "2035-06-01", ("patient", patient): "2035-06-01"}
    assert any("15年" in k["reason"] for k in report["kept"])

    with records.db.read() as conn:
        system = Actor.system()
        person = records.get(conn, "patient", patient, actor=system)
        assert person["name"] == "张三"
        assert records.get(conn, "visit", old, actor=system)["notes"] is None
        assert records.get(conn, "visit", recent, actor=system)["notes"] == "高血压复诊"
        assert records.get(conn, "message", message, actor=system) is None
        (request,) = records.list(conn, "erasure_request", actor=system).records
    assert request["report"] == report and request["reason"] == "本人申请"
    assert "张三" not in str(request) and "阑尾炎" not in str(request)

    trail = qiao_client.data(
        'query($id: ID!) { auditTrail(entity: "Visit", id: $id) '
        "{ edges { node { operation source changes } } } }",
        {"id": old},
    )["auditTrail"]["edges"]
    (erasure,) = [e["node"] for e in trail if e["node"]["source"] == "ERASURE"]
    assert erasure["changes"] == {"notes": {"redacted": True}}  # audited, without 阑尾炎


def test_the_retention_sweep_anonymises_what_has_expired(clock, qiao_client, qiao_runtime):
    patient = _patient(qiao_client)
    _consent(qiao_client, patient, "treatment", sensitive=True)
    old = qiao_client.data(
        VISIT, {"i": {"patientId": patient, "visitDate": "2011-03-01", "notes": "骨折"}}
    )["createVisit"]["id"]
    young = qiao_client.data(
        VISIT, {"i": {"patientId": patient, "visitDate": "2011-03-03", "notes": "复查"}}
    )["createVisit"]["id"]
    sweep = "mutation { applyRetention }"
    first = qiao_client.data(sweep)["applyRetention"]
    assert [(e["id"], e["action"]) for e in first["erased"]] == [(old, "ANONYMISED")]
    assert qiao_client.data(sweep)["applyRetention"]["erased"] == []  # nothing twice
    clock.advance(hours=48)  # 15 years after the young visit, the patient's last
    later = qiao_client.data(sweep)["applyRetention"]["erased"]
    assert {(e["entity"], e["id"]) for e in later} == {("visit", young), ("patient", patient)}
    with qiao_runtime.db.read() as conn:
        person = qiao_runtime.records.get(conn, "patient", patient, actor=Actor.system())
    assert (person["name"], person["mobile"], person["birth_date"]) == ("已匿名", None, None)


def test_erasure_is_for_administrators_and_rules_are_checked(qiao_client, qiao_anonymous_client):
    errors = qiao_client.errors(
        "mutation($i: RetentionRuleCreateInput!) { createRetentionRule(input: $i) { id } }",
        {"i": {"name": "bad", "entity": "visit", "after": "notes", "years": 1, "action": "DELETE"}},
    )
    assert errors[0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}
    rules = qiao_client.data("{ consentRules { totalCount } retentionRules { totalCount } }")
    assert rules == {"consentRules": {"totalCount": 2}, "retentionRules": {"totalCount": 3}}


def test_a_transaction_reads_the_rules_once_and_again_after_it_changes_one(clock, qiao_runtime):
    records, system = qiao_runtime.records, Actor.system()
    reads: list[str] = []

    def note(conn, cursor, statement, *_):
        if "WHERE consent_rule.active" in statement:
            reads.append(statement)

    event.listen(qiao_runtime.db.engine, "before_cursor_execute", note)
    try:
        with records.transaction(system, Source.SYSTEM) as ctx:
            patient = records.create(ctx, "patient", {"name": "李四", "birth_date": "1990-01-01"})
            message = {"patient": patient["id"], "body": "春季体检优惠"}
            with pytest.raises(BadUserInput, match="marketing"):
                records.create(ctx, "message", message)
            assert len(reads) == 1, "the patient's and the message's rules in one read"
            with ctx.connection.begin_nested():
                rule = next(
                    r
                    for r in records.list(ctx.connection, "consent_rule", actor=system).records
                    if r["name"] == "marketing_consent"
                )
                records.update(ctx, "consent_rule", rule["id"], {"active": False})
            assert records.create(ctx, "message", message)["body"] == "春季体检优惠"
            assert len(reads) == 2, "read anew once the transaction changed a rule"
    finally:
        event.remove(qiao_runtime.db.engine, "before_cursor_execute", note)

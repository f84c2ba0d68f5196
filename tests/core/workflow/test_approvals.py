"""Approvals: approvers by manager, role and name; multi-step, reject, cancel, lock, outcomes.

Through the records service and the workflow's own functions, on SQLite and
PostgreSQL: a sales rep's quote goes to his manager, then to finance, then to
the named director.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import select

from qiao.core.errors import BadUserInput, Conflict, Forbidden, NotFound
from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime
from qiao.core.workflow import approvals

THREE_STEPS = {
    "name": "quote_discount",
    "entity": "quote",
    "steps": [
        {"name": "经理审批", "manager": "owner"},
        {"name": "财务审批", "role": "finance"},
        {"name": "总监审批", "user": "zhou"},
    ],
    "on_submitted": [{"set": {"status": "PENDING_APPROVAL"}}],
    "on_approved": [{"set": {"status": "APPROVED"}}],
    "on_rejected": [{"set": {"status": "REJECTED"}}],
}


@dataclass
class Team:
    rep: Actor
    manager: Actor
    finance: Actor
    director: Actor
    outsider: Actor


def _actor(user: Record) -> Actor:
    return Actor(user_id=user["id"], username=user["username"])


@pytest.fixture
def team(create: Callable[..., Record], define: Any, qiao_runtime: Runtime) -> Team:
    with qiao_runtime.db.read() as conn:
        roles = {
            r["name"]: r["id"]
            for r in qiao_runtime.records.list(conn, "role", actor=Actor.system()).records
        }
    chen = create("user", username="chen", display_name="陈经理")
    zhang = create("user", username="zhang", display_name="张三", manager=chen["id"])
    qian = create("user", username="qian", display_name="钱会计")
    zhou = create("user", username="zhou", display_name="周总")
    wang = create("user", username="wang", display_name="王五")
    for user, role in [(chen, "sales_manager"), (zhang, "sales_rep"), (qian, "finance")]:
        create("role_assignment", user=user["id"], role=roles[role])
    create("role_assignment", user=wang["id"], role=roles["sales_rep"])
    define("approval_process", THREE_STEPS)
    return Team(_actor(zhang), _actor(chen), _actor(qian), _actor(zhou), _actor(wang))


@pytest.fixture
def as_user(qiao_runtime: Runtime) -> Callable[..., Any]:
    """``as_user(actor, fn, *args)``: ``fn(ctx, *args)`` in a transaction of ``actor``."""

    def _run(actor: Actor, fn: Callable[..., Any], *args: Any) -> Any:
        with qiao_runtime.records.transaction(actor, Source.GRAPHQL) as ctx:
            return fn(ctx, *args)

    return _run


@pytest.fixture
def quote(qiao_runtime: Runtime, team: Team, create: Callable[..., Record]) -> Record:
    account = create("account", name="宁波海天注塑", owner=team.rep.user_id)
    with qiao_runtime.records.transaction(team.rep, Source.GRAPHQL) as ctx:
        return qiao_runtime.records.create(
            ctx,
            "quote",
            {
                "name": "注塑机报价",
                "account": account["id"],
                "list_price": "100000.00",
                "quoted_price": "90000.00",
            },
        )


def _notified(runtime: Runtime, actor: Actor) -> list[Record]:
    with runtime.db.read() as conn:
        return runtime.records.list(
            conn, "notification", filter={"owner_id": {"eq": actor.user_id}}, actor=Actor.system()
        ).records


def _decisions(runtime: Runtime, request_id: str) -> list[Record]:
    table = runtime.current().table("approval_decision")
    with runtime.db.read() as conn:
        rows = conn.execute(
            select(table).where(table.c.request_id == request_id).order_by(table.c.step)
        )
        return [dict(r._mapping) for r in rows]


def test_each_step_goes_to_its_approvers_until_the_last_approves(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any, get: Any
) -> None:
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    assert (request["status"], request["step"]) == ("PENDING", 1)
    assert request["owner_id"] == team.rep.user_id
    assert get("quote", quote["id"])["status"] == "PENDING_APPROVAL"
    assert [n["kind"] for n in _notified(qiao_runtime, team.manager)] == ["approval"]

    with pytest.raises(
        Forbidden, match="only the manager of the record's owner may decide 经理审批"
    ):
        as_user(team.finance, approvals.decide, request["id"], "APPROVED", None)
    step2 = as_user(team.manager, approvals.decide, request["id"], "APPROVED", "折扣合理")
    assert (step2["status"], step2["step"]) == ("PENDING", 2)
    assert len(_notified(qiao_runtime, team.finance)) == 1

    with pytest.raises(Forbidden, match="holders of the role finance"):
        as_user(team.manager, approvals.decide, request["id"], "APPROVED", None)
    as_user(team.finance, approvals.decide, request["id"], "APPROVED", "毛利达标")
    with pytest.raises(Forbidden, match="the user zhou"):
        as_user(team.outsider, approvals.decide, request["id"], "APPROVED", None)
    done = as_user(team.director, approvals.decide, request["id"], "APPROVED", "同意")
    assert (done["status"], done["step"]) == ("APPROVED", 3)
    assert done["decided_at"] is not None
    assert get("quote", quote["id"])["status"] == "APPROVED"
    decisions = _decisions(qiao_runtime, request["id"])
    assert [(d["step"], d["approver_id"], d["decision"], d["comment"]) for d in decisions] == [
        (1, team.manager.user_id, "APPROVED", "折扣合理"),
        (2, team.finance.user_id, "APPROVED", "毛利达标"),
        (3, team.director.user_id, "APPROVED", "同意"),
    ]
    assert [d["created_by_id"] for d in decisions] == [
        team.manager.user_id,
        team.finance.user_id,
        team.director.user_id,
    ]
    outcome = _notified(qiao_runtime, team.rep)
    assert [n["title"] for n in outcome] == ["审批已通过：quote_discount"]


def test_each_approver_sees_the_requests_waiting_for_them(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any
) -> None:
    def queue(actor: Actor) -> list[tuple[str, str]]:
        with qiao_runtime.db.read() as conn:
            waiting = approvals.awaiting(conn, qiao_runtime.records, actor)
        return [(w.request["id"], w.step_name) for w in waiting]

    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    assert queue(team.manager) == [(request["id"], "经理审批")]
    assert queue(team.finance) == queue(team.rep) == queue(Actor.system()) == []
    as_user(team.manager, approvals.decide, request["id"], "APPROVED", None)
    assert queue(team.manager) == []
    assert queue(team.finance) == [(request["id"], "财务审批")]


def test_a_rejection_ends_the_request_and_runs_the_rejected_actions(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any, get: Any
) -> None:
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    rejected = as_user(team.manager, approvals.decide, request["id"], "REJECTED", "折扣过大")
    assert (rejected["status"], rejected["step"]) == ("REJECTED", 1)
    assert get("quote", quote["id"])["status"] == "REJECTED"
    assert _notified(qiao_runtime, team.rep)[0]["body"] == "折扣过大"
    with pytest.raises(Conflict, match="is REJECTED, no longer pending"):
        as_user(team.finance, approvals.decide, request["id"], "APPROVED", None)
    assert _notified(qiao_runtime, team.finance) == []


def test_a_pending_record_is_locked_for_everyone_until_the_outcome(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any, update: Any
) -> None:
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    with pytest.raises(
        Conflict, match=f"waits for approval \\(request {request['id']}\\)"
    ) as locked:
        update("quote", quote["id"], actor=team.rep, quoted_price="50000.00")
    assert locked.value.field == "id"
    assert locked.value.details["approvalRequest"] == request["id"]
    with pytest.raises(Conflict, match="cannot be changed"):
        update("quote", quote["id"], name="改名")  # the system too
    records = qiao_runtime.records
    with (
        pytest.raises(Conflict, match="cannot be deleted"),
        records.transaction(Actor.system(), Source.SYSTEM) as ctx,
    ):
        records.delete(ctx, "quote", quote["id"])
    as_user(team.manager, approvals.decide, request["id"], "REJECTED", None)
    changed = update("quote", quote["id"], actor=team.rep, quoted_price="96000.00")
    assert changed["quoted_price"] == pytest.approx(96000)


def test_submitting_twice_or_to_an_unknown_process_is_refused(
    team: Team, quote: Record, as_user: Any
) -> None:
    as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    with pytest.raises(Conflict, match="already waits for approval"):
        as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    with pytest.raises(BadUserInput, match="no active approval process 'nope'") as unknown:
        as_user(team.rep, approvals.start_approval, "nope", "quote", quote["id"])
    assert unknown.value.field == "process"


def test_a_record_the_submitter_cannot_see_is_not_found(
    team: Team, quote: Record, as_user: Any
) -> None:
    with pytest.raises(NotFound):
        as_user(team.outsider, approvals.start_approval, "quote_discount", "quote", quote["id"])


def test_only_someone_who_may_change_the_record_may_submit_it(
    team: Team, define: Any, create: Callable[..., Record], as_user: Any
) -> None:
    define(
        "approval_process",
        {"name": "big_deals", "entity": "opportunity", "steps": [{"user": "zhou"}]},
    )
    account = create("account", name="常州纺机")
    deal = create("opportunity", name="纺机改造", account=account["id"], owner=team.rep.user_id)
    with pytest.raises(Forbidden, match="only someone who may change it may submit it"):
        as_user(team.finance, approvals.start_approval, "big_deals", "opportunity", deal["id"])
    request = as_user(team.rep, approvals.start_approval, "big_deals", "opportunity", deal["id"])
    assert request["status"] == "PENDING"


def test_a_step_without_an_approver_refuses_to_start(
    qiao_runtime: Runtime, team: Team, create: Callable[..., Record], as_user: Any
) -> None:
    account = create("account", name="无主客户", owner=team.manager.user_id)
    with qiao_runtime.records.transaction(team.manager, Source.GRAPHQL) as ctx:
        orphan = qiao_runtime.records.create(
            ctx,
            "quote",
            {
                "name": "经理自己的报价",
                "account": account["id"],
                "list_price": "10.00",
                "quoted_price": "5.00",
            },
        )
    with pytest.raises(BadUserInput, match="经理审批 has no approver") as refused:
        as_user(team.manager, approvals.start_approval, "quote_discount", "quote", orphan["id"])
    assert refused.value.field == "process"


def test_the_submitter_may_cancel_and_the_record_is_unlocked(
    team: Team, quote: Record, as_user: Any, update: Any
) -> None:
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    with pytest.raises(Forbidden, match="only the submitter or an administrator"):
        as_user(team.manager, approvals.cancel, request["id"])
    cancelled = as_user(team.rep, approvals.cancel, request["id"])
    assert cancelled["status"] == "CANCELLED"
    assert update("quote", quote["id"], name="撤回后修改")["name"] == "撤回后修改"


def test_an_entry_condition_submits_when_a_write_makes_it_true(
    qiao_runtime: Runtime,
    team: Team,
    define: Any,
    update: Any,
    get: Any,
    create: Callable[..., Record],
) -> None:
    define(
        "approval_process",
        {
            "name": "deep_discount",
            "entity": "quote",
            "entry_condition": "quoted_price < list_price * 0.95",
            "steps": [{"manager": "owner"}],
            "on_submitted": [{"set": {"status": "PENDING_APPROVAL"}}],
            "on_rejected": [{"set": {"status": "REJECTED", "quoted_price": "1.00"}}],
        },
    )
    account = create("account", name="杭州汽配", owner=team.rep.user_id)
    with qiao_runtime.records.transaction(team.rep, Source.GRAPHQL) as ctx:
        within = qiao_runtime.records.create(
            ctx,
            "quote",
            {
                "name": "恰好九五折",
                "account": account["id"],
                "list_price": "100000.00",
                "quoted_price": "95000.00",
            },
        )
    assert get("quote", within["id"])["status"] == "DRAFT"
    update("quote", within["id"], actor=team.rep, quoted_price="94999.99")
    assert get("quote", within["id"])["status"] == "PENDING_APPROVAL"
    pending = approvals.store.pending_request
    with qiao_runtime.db.read() as conn:
        request = pending(conn, "quote", within["id"])
    assert request is not None
    with qiao_runtime.records.transaction(team.manager, Source.GRAPHQL) as ctx:
        approvals.decide(ctx, request["id"], "REJECTED", "请重新报价")
    # The outcome's own write (quoted_price) does not submit the quote again.
    rejected = get("quote", within["id"])
    assert (rejected["status"], str(rejected["quoted_price"])) == ("REJECTED", "1.00")
    with qiao_runtime.db.read() as conn:
        assert pending(conn, "quote", within["id"]) is None


def test_two_approvers_deciding_one_step_at_once_record_one_decision(
    qiao_runtime: Runtime,
    team: Team,
    quote: Record,
    as_user: Any,
    create: Callable[..., Record],
    get: Any,
) -> None:
    with qiao_runtime.db.read() as conn:
        finance = next(
            r["id"]
            for r in qiao_runtime.records.list(conn, "role", actor=Actor.system()).records
            if r["name"] == "finance"
        )
    sun = create("user", username="sun", display_name="孙会计")
    create("role_assignment", user=sun["id"], role=finance)
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    as_user(team.manager, approvals.decide, request["id"], "APPROVED", None)

    start = threading.Barrier(2)
    outcomes: dict[str, Any] = {}

    def decide(actor: Actor, decision: str) -> None:
        start.wait()
        try:
            outcomes[actor.username] = as_user(
                actor, approvals.decide, request["id"], decision, None
            )
        except (Conflict, Forbidden) as exc:
            outcomes[actor.username] = exc

    threads = [
        threading.Thread(target=decide, args=(team.finance, "APPROVED")),
        threading.Thread(target=decide, args=(_actor(sun), "REJECTED")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    won = [name for name, result in outcomes.items() if isinstance(result, dict)]
    assert len(won) == 1, outcomes
    step2 = [d for d in _decisions(qiao_runtime, request["id"]) if d["step"] == 2]
    assert len(step2) == 1
    winner = team.finance if won == ["qian"] else _actor(sun)
    assert step2[0]["approver_id"] == winner.user_id
    expected = "PENDING_APPROVAL" if won == ["qian"] else "REJECTED"
    assert get("quote", quote["id"])["status"] == expected


def test_two_submissions_at_once_make_one_request(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any
) -> None:
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def submit() -> None:
        start.wait()
        try:
            outcomes.append(
                as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
            )
        except Conflict as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(type(o).__name__ for o in outcomes) == ["Conflict", "dict"], outcomes
    table = qiao_runtime.current().table("approval_request")
    with qiao_runtime.db.read() as conn:
        pending = conn.execute(select(table.c.id).where(table.c.record_id == quote["id"])).all()
    assert len(pending) == 1


def test_a_batch_update_is_refused_when_a_record_of_it_waits_for_approval(
    qiao_runtime: Runtime, team: Team, quote: Record, as_user: Any, get: Any
) -> None:
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.CONNECTOR) as ctx:
        done = records.update_many(ctx, "quote", [(quote["id"], {"name": "改名前"})])
    assert done.records[0]["name"] == "改名前", "no record waits: the batch is written"
    request = as_user(team.rep, approvals.start_approval, "quote_discount", "quote", quote["id"])
    with (
        pytest.raises(Conflict, match=f"waits for approval \\(request {request['id']}\\)"),
        records.transaction(Actor.system(), Source.CONNECTOR) as ctx,
    ):
        records.update_many(ctx, "quote", [(quote["id"], {"name": "改名"})], skip_invalid=True)
    assert get("quote", quote["id"])["name"] == "改名前"

"""Bad pipeline and approval definitions are refused when written, naming the part at fault."""

from __future__ import annotations

import re
from typing import Any

import pytest

from qiao.core.errors import BadUserInput

PIPELINE = {
    "name": "tickets",
    "entity": "ticket",
    "field": "status",
    "stages": [{"state": "OPEN", "next": ["IN_PROGRESS"]}, {"state": "IN_PROGRESS"}],
}
PROCESS = {"name": "big_deals", "entity": "opportunity", "steps": [{"role": "sales_manager"}]}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"entity": "nothing"}, "entity", "there is no entity 'nothing'"),
        ({"entity": "stage_history"}, "entity", "stage_history records are the workflow's own"),
        ({"field": "subject"}, "field", "ticket has no enum field 'subject'"),
        ({"stages": []}, "stages", "stages is a non-empty list"),
        (
            {"stages": [{"state": "DONE"}]},
            "stages",
            "stages.DONE: DONE is not a value of ticket.status",
        ),
        (
            {"stages": [{"state": "OPEN", "next": ["CLOSED"]}]},
            "stages",
            "stages.OPEN.next: CLOSED are not stages of this pipeline",
        ),
        (
            {"stages": [{"state": "OPEN", "required": ["nope"]}]},
            "stages",
            "stages.OPEN.required: ticket has no stored field 'nope'",
        ),
        (
            {"stages": [{"state": "OPEN", "guards": [{"when": "subject", "message": "m"}]}]},
            "stages",
            "must give a TRUE or FALSE",
        ),
        (
            {"stages": [{"state": "OPEN", "guards": [{"when": "amount > 1", "message": "m"}]}]},
            "stages",
            "line 1, column 1",
        ),
        ({"stages": [{"state": "OPEN", "color": "red"}]}, "stages[0]", "color"),
        (
            {"stages": [{"state": "OPEN", "on_enter": [{"explode": {}}]}]},
            "stages",
            "stages.OPEN.on_enter: actions[0]: unknown action 'explode'",
        ),
        ({"initial": ["CLOSED"]}, "initial", "initial lists stages of this pipeline"),
    ],
)
def test_bad_pipelines_are_refused(
    define: Any, count_rows: Any, change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(BadUserInput, match=re.escape(message)) as bad:
        define("pipeline", PIPELINE | change)
    assert bad.value.field == field
    assert count_rows("pipeline") == 0


def test_two_active_pipelines_may_not_drive_one_field(define: Any) -> None:
    define("pipeline", PIPELINE)
    with pytest.raises(BadUserInput, match="already follows the active pipeline tickets"):
        define("pipeline", PIPELINE | {"name": "tickets_again"})
    define("pipeline", PIPELINE | {"name": "tickets_draft", "active": False})


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"steps": []}, "steps", "steps is a list of 1 to 10 steps"),
        (
            {"steps": [{"role": "sales_manager", "user": "admin"}]},
            "steps[0]",
            "exactly one of role, manager, user",
        ),
        ({"steps": [{"manager": "boss"}]}, "steps[0]", "manager"),
        ({"steps": [{"role": "astronaut"}]}, "steps", "steps[0]: there is no role 'astronaut'"),
        ({"steps": [{"user": "nobody"}]}, "steps", "steps[0]: there is no user 'nobody'"),
        ({"entry_condition": "amount +"}, "entry_condition", "entry_condition: line 1"),
        ({"entry_condition": "amount"}, "entry_condition", "must give a TRUE or FALSE"),
        (
            {"on_approved": [{"set": {"stage": "WON"}}]},
            "on_approved",
            "on_approved: actions[0].set.stage",
        ),
        ({"on_rejected": {"set": {}}}, "on_rejected", "on_rejected is a list of actions"),
    ],
)
def test_bad_approval_processes_are_refused(
    define: Any, count_rows: Any, change: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(BadUserInput, match=re.escape(message)) as bad:
        define("approval_process", PROCESS | change)
    assert bad.value.field == field
    assert count_rows("approval_process") == 0


def test_a_process_whose_steps_use_the_owner_needs_an_owner_field(define: Any) -> None:
    with pytest.raises(BadUserInput, match="product has no owner field"):
        define("approval_process", PROCESS | {"entity": "product", "steps": [{"manager": "owner"}]})

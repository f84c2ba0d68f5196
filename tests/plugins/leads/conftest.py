"""Fixtures for the leads plugin's tests: crm and leads enabled (the fixture runtime is started)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from qiao.core.records.service import Record


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "leads")


@pytest.fixture
def sales_team(create: Callable[..., Record]) -> dict[str, Record]:
    """A Ningbo team of two reps, a named key-account rep, and a catch-all rule set."""
    team = create("team", name="宁波销售组", code="NB", region="华东")
    li = create("user", username="li.na", display_name="李娜", team=team["id"])
    zhang = create("user", username="zhang.wei", display_name="张伟", team=team["id"])
    wang = create("user", username="wang.jg", display_name="王建国")
    create(
        "lead_assignment_rule",
        name="液压高意向给王建国",
        position=10,
        conditions={"industry": ["液压"], "min_intent": 70},
        strategy="USER",
        user=wang["id"],
    )
    create(
        "lead_assignment_rule",
        name="华东轮流",
        position=20,
        conditions={"region": ["华东"]},
        strategy="ROUND_ROBIN",
        team=team["id"],
        first_touch_minutes=30,
    )
    return {"team": team, "li": li, "zhang": zhang, "wang": wang}

"""Fixtures for the leads plugin's tests: crm and leads enabled, the plugin started."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from qiao.core.records.context import Actor, Source
from qiao.core.records.service import Record
from qiao.core.runtime import Runtime


@pytest.fixture
def qiao_enabled_plugins() -> Sequence[str]:
    return ("crm", "leads")


@pytest.fixture
def qiao_runtime(qiao_runtime: Runtime) -> Runtime:
    """The runtime, started as the app and the CLI start it."""
    qiao_runtime.plugins.startup(qiao_runtime)
    return qiao_runtime


@pytest.fixture
def create(qiao_runtime: Runtime) -> Callable[..., Record]:
    records = qiao_runtime.records

    def _create(entity: str, **values: Any) -> Record:
        with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
            return records.create(ctx, entity, values)

    return _create


@pytest.fixture
def get(qiao_runtime: Runtime) -> Callable[[str, str], Record]:
    def _get(entity: str, record_id: str) -> Record:
        with qiao_runtime.db.read() as conn:
            record = qiao_runtime.records.get(conn, entity, record_id)
        assert record is not None
        return record

    return _get


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

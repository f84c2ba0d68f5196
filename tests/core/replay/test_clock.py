"""The replay clock: set and advanced from outside the server, driving timers, audited."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from qiao.cli.main import cli
from qiao.core.config import Config
from qiao.core.errors import ConfigurationError
from qiao.core.records.context import Actor, Source
from qiao.core.replay import clock as replay
from qiao.core.runtime import Runtime
from qiao.core.storage.system import audit_entry
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import controllable

SET = "mutation($to: DateTime!) { setClock(to: $to) { now controllable } }"
ADVANCE = "mutation($by: String!) { advanceClock(by: $by) { now } }"
RULE = {
    "name": "overdue_ticket",
    "entity": "ticket",
    "trigger": {"after": {"field": "created_at", "minutes": 120}},
    "actions": [{"set": {"subject": '="[超时] " & subject'}}],
}


@pytest.fixture
def qiao_config(qiao_config: Config, monkeypatch: pytest.MonkeyPatch) -> Config:
    """The test deployment with ``[clock] controllable = true``; changes seen at once."""
    monkeypatch.setattr(replay, "REFRESH_SECONDS", 0.0)
    return controllable(qiao_config)


def instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_the_clock_is_set_and_advanced_through_graphql(
    qiao_client: GraphQLClient, qiao_runtime: Runtime
) -> None:
    state = qiao_client.data(SET, {"to": "2025-05-27T08:00:00+08:00"})["setClock"]
    assert state["controllable"] is True
    assert instant(state["now"]) - instant("2025-05-27T08:00:00+08:00") < dt.timedelta(seconds=5)
    later = qiao_client.data(ADVANCE, {"by": "1d"})["advanceClock"]["now"]
    assert instant(later) - instant("2025-05-28T08:00:00+08:00") < dt.timedelta(seconds=5)
    (bad,) = qiao_client.errors(ADVANCE, {"by": "tomorrow"})
    assert bad["extensions"] == {"code": "BAD_USER_INPUT", "field": "by"}
    with qiao_runtime.db.read() as conn:
        rows = conn.execute(
            select(audit_entry.c.operation, audit_entry.c.actor).where(
                audit_entry.c.operation.like("clock.%")
            )
        ).all()
    assert [tuple(r) for r in rows] == [("clock.set", "admin"), ("clock.advance", "admin")]


def test_the_cli_replays_a_deadline_on_a_live_server(
    qiao_client: GraphQLClient, qiao_config: Config
) -> None:
    config = str(qiao_config.path)
    runner = CliRunner()

    def qiao(*args: str) -> str:
        result = runner.invoke(cli, ["--config", config, *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert qiao("clock", "set", "2025-05-27T08:00+08:00").startswith("2025-05-27T0")
    qiao_client.data(
        "mutation($r: AutomationRuleCreateInput!) { createAutomationRule(input: $r) { id } }",
        {"r": RULE},
    )
    ticket = qiao_client.data('mutation { createTicket(input: {subject: "主轴异响"}) { id } }')
    query = "query($id: ID!) { ticket(id: $id) { subject } }"
    ref = {"id": ticket["createTicket"]["id"]}
    qiao("jobs", "run-due")
    assert qiao_client.data(query, ref)["ticket"]["subject"] == "主轴异响"
    qiao("clock", "advance", "2h")
    assert "done:" in qiao("jobs", "run-due")
    assert qiao_client.data(query, ref)["ticket"]["subject"] == "[超时] 主轴异响"
    shown = qiao_client.data("{ clock { now } }")["clock"]["now"]
    assert instant(shown) >= instant("2025-05-27T10:00:00+08:00")
    assert qiao("clock", "show").startswith("2025-05-27T")


def test_advancing_starts_from_the_stored_time_not_a_stale_copy(
    qiao_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two processes' clocks: one advances right after the other set the time."""
    monkeypatch.setattr(replay, "REFRESH_SECONDS", 3600.0)

    def real() -> dt.datetime:
        return dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    here, there = (replay.ReplayClock(real, qiao_runtime.db) for _ in range(2))
    assert here() == real()  # this process now holds the offset for an hour
    there.set(instant("2026-03-01T00:00:00+00:00"), Actor.system(), Source.SYSTEM)
    advanced = here.advance(dt.timedelta(days=1), Actor.system(), Source.SYSTEM)
    assert advanced == instant("2026-03-02T00:00:00+00:00")


def test_a_production_deployment_refuses_a_controllable_clock(qiao_config: Config) -> None:
    production = dataclasses.replace(qiao_config, production=True)
    with pytest.raises(ConfigurationError, match="refused with \\[server\\] production"):
        Runtime(production)


def test_durations() -> None:
    assert replay.parse_duration("2h30m") == dt.timedelta(hours=2, minutes=30)
    assert replay.parse_duration("1w 2d") == dt.timedelta(days=9)

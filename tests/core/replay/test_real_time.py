"""A deployment without ``[clock] controllable`` follows real time and refuses to be set."""

from __future__ import annotations

import datetime as dt

from qiao.core.testing.client import GraphQLClient


def test_the_clock_follows_real_time_unless_controllable(qiao_client: GraphQLClient) -> None:
    state = qiao_client.data("{ clock { now controllable } }")["clock"]
    assert state["controllable"] is False
    shown = dt.datetime.fromisoformat(state["now"])
    assert abs(shown - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    (error,) = qiao_client.errors('mutation { setClock(to: "2025-05-27T08:00:00+08:00") { now } }')
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert "[clock] controllable = true" in error["message"]

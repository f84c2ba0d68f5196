"""GraphQL: read the deployment's clock; administrators set and advance it (docs/clock.md)."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from qiao.core.errors import Forbidden
from qiao.core.graphql.context import RequestContext
from qiao.core.graphql.scalars import DateTime
from qiao.core.records.context import Source
from qiao.core.records.host import ControllableClock
from qiao.core.replay.clock import parse_duration


@strawberry.type(description="The deployment's clock, which every date-driven behaviour reads.")
class ClockState:
    now: DateTime = strawberry.field(description="The deployment's time now.")
    controllable: bool = strawberry.field(
        description="Whether administrators may set it ([clock] controllable in qiao.toml)."
    )


def _state(ctx: RequestContext) -> ClockState:
    runtime = ctx.runtime
    return ClockState(
        now=DateTime(runtime.records.clock()), controllable=runtime.replay_clock is not None
    )


def _controllable(ctx: RequestContext) -> ControllableClock:
    if not ctx.actor.is_admin:
        raise Forbidden("only administrators set the clock")
    clock = ctx.runtime.replay_clock
    if clock is None:
        raise Forbidden(
            "this deployment's clock follows real time; [clock] controllable = true in "
            "qiao.toml allows setting it (never in production)"
        )
    return clock


@strawberry.type(name="Query")
class ClockQuery:
    @strawberry.field(description="The deployment's current time.")
    def clock(self, info: Info) -> ClockState:
        return _state(info.context)


@strawberry.type(name="Mutation")
class ClockMutation:
    @strawberry.mutation(description="Set the clock to an instant; it runs on from there.")
    def set_clock(
        self,
        info: Info,
        to: Annotated[DateTime, strawberry.argument(description="The instant to set.")],
    ) -> ClockState:
        ctx: RequestContext = info.context
        _controllable(ctx).set(to, ctx.actor, Source.GRAPHQL)
        return _state(ctx)

    @strawberry.mutation(description='Move the clock forward: "1d", "2h30m", "1w".')
    def advance_clock(
        self,
        info: Info,
        by: Annotated[str, strawberry.argument(description='How far: "1d", "2h30m", "1w".')],
    ) -> ClockState:
        ctx: RequestContext = info.context
        _controllable(ctx).advance(parse_duration(by), ctx.actor, Source.GRAPHQL)
        return _state(ctx)

    @strawberry.mutation(description="Put the clock back to real time.")
    def reset_clock(self, info: Info) -> ClockState:
        ctx: RequestContext = info.context
        _controllable(ctx).reset(ctx.actor, Source.GRAPHQL)
        return _state(ctx)


TYPES: list[type] = [ClockQuery, ClockMutation]

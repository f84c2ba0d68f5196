"""The authority the workflow writes its own records with.

A salesperson moving a deal, or a manager approving a quote, holds no right
on ``stage_history`` or ``approval_decision``: those rows are the workflow's
bookkeeping, written because the workflow checked the step itself (the
transition is allowed, the caller is the step's approver). So they are
written with the authority of the system, yet in the caller's name: the audit
log and ``created_by`` show the person whose act they record.
"""

from __future__ import annotations

from qiao.core.records.context import Actor, WriteContext


def on_behalf(ctx: WriteContext) -> WriteContext:
    """``ctx`` on the same connection, its actor unrestricted but still named."""
    actor = Actor(user_id=ctx.actor.user_id, username=ctx.actor.username, is_admin=True)
    return ctx.as_actor(actor)

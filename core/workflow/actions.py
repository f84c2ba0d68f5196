"""Running a definition's actions (on entering a stage, on an approval's outcome).

The actions are the automation engine's (docs/automation.md): one language for
"set the status", "notify the owner" whether a rule, a pipeline or an approval
asks for it. A definition may have none, which the engine's checks refuse for
a rule, so an empty list is simply nothing to do here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qiao.core.automation.actions import run_actions
from qiao.core.records.context import WriteContext
from qiao.core.records.service import Record


def run(
    ctx: WriteContext,
    entity_name: str,
    record: Record,
    actions: Sequence[Mapping[str, Any]],
    reason: str,
) -> None:
    """Run ``actions`` on ``record`` in the caller's transaction; nothing to do for none."""
    if actions:
        run_actions(ctx, entity_name, record, actions, reason=reason)

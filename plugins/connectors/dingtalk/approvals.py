"""DingTalk approval instances and their outcome in Qiao's terms.

An instance's ``status`` says where it is (NEW, RUNNING, COMPLETED, TERMINATED,
CANCELED) and ``result`` how a completed one ended (agree, refuse). The
``bpms_instance_change`` event says the same with ``type`` start, finish or terminate.
Both map to one :class:`Outcome`, the thing a Qiao approval step waits for.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class Outcome(enum.Enum):
    PENDING = "pending"
    APPROVED = "approved"
    REFUSED = "refused"
    TERMINATED = "terminated"
    CANCELED = "canceled"


def outcome_of(status: str, result: str | None) -> Outcome:
    """The outcome of an instance from its ``status`` and ``result``."""
    status = status.upper()
    if status in ("NEW", "RUNNING"):
        return Outcome.PENDING
    if status == "TERMINATED":
        return Outcome.TERMINATED
    if status == "CANCELED":
        return Outcome.CANCELED
    if status == "COMPLETED":
        if (result or "").lower() == "agree":
            return Outcome.APPROVED
        if (result or "").lower() == "refuse":
            return Outcome.REFUSED
    raise ValueError(f"unknown approval status {status!r} with result {result!r}")


@dataclass(frozen=True)
class ApprovalInstance:
    instance_id: str
    status: str
    result: str | None
    outcome: Outcome
    detail: dict[str, Any]


@dataclass(frozen=True)
class ApprovalEvent:
    """A ``bpms_instance_change`` callback."""

    instance_id: str
    process_code: str
    type: str
    outcome: Outcome


def approval_event(message: Mapping[str, Any]) -> ApprovalEvent | None:
    """The approval change in a decrypted callback, or ``None`` for other events."""
    if message.get("EventType") != "bpms_instance_change":
        return None
    kind = str(message.get("type") or "")
    if kind == "start":
        outcome = Outcome.PENDING
    elif kind == "terminate":
        outcome = Outcome.TERMINATED
    elif kind == "finish":
        outcome = outcome_of("COMPLETED", str(message.get("result") or ""))
    else:
        raise ValueError(f"unknown bpms_instance_change type {kind!r}")
    return ApprovalEvent(
        instance_id=str(message.get("processInstanceId") or ""),
        process_code=str(message.get("processCode") or ""),
        type=kind,
        outcome=outcome,
    )

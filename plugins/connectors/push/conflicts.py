"""Who wins when Qiao and an ERP disagree, and how a disagreement is listed.

The rule is declared once, per entity: the ERP owns master data (customers, materials),
Qiao owns pipeline data (orders made from accepted quotes). A push that finds the ERP's
copy differing from Qiao's resolves it by the rule (Qiao's values written to the ERP, or
the ERP's into Qiao) and lists each difference in the sync log as a ``PARTIAL`` call
``conflict <entity>``, so nothing is overwritten without a trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal

from qiao.plugins.connectors.common.calls import CallRecord, payload_hash

Owner = Literal["erp", "qiao"]

#: Which side wins, by Qiao entity.
OWNERS: Mapping[str, Owner] = {"account": "erp", "product": "erp", "quote": "qiao"}


def differences(
    ours: Mapping[str, Any], theirs: Mapping[str, Any], fields: tuple[str, ...]
) -> dict[str, tuple[Any, Any]]:
    """``field -> (ERP's value, Qiao's value)`` for each compared field that differs."""
    return {
        f: (theirs.get(f), ours.get(f)) for f in fields if str(theirs.get(f)) != str(ours.get(f))
    }


def listed(
    vendor: str,
    entity: str,
    key: str,
    found: Mapping[str, tuple[Any, Any]],
    now: dt.datetime,
) -> CallRecord:
    """The sync-log entry of one resolved disagreement: each field, both values, the winner."""
    winner = "Qiao" if OWNERS[entity] == "qiao" else "ERP"
    parts = "; ".join(f"{f}: ERP {erp!s} / Qiao {qiao!s}" for f, (erp, qiao) in found.items())
    return CallRecord(
        vendor=vendor,
        operation=f"conflict {entity}",
        status="partial",
        latency_ms=0.0,
        payload_sha256=payload_hash({"key": key, "fields": sorted(found)}),
        attempt=1,
        at=now.timestamp(),
        error_type="Conflict",
        detail=f"{key}: {parts} ({winner} wins)"[:300],
    )

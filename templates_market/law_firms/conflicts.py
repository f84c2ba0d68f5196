"""Conflict checks (律师法 art. 23, 39; 律师执业行为规范 2018 art. 51-53), as write hooks.

A matter's parties are on one of two sides: ours (the client, its related companies) and
theirs (the opposing parties); third parties are on neither. Creating a ``conflict_check``
searches every other matter's parties, the CRM's accounts and contacts for each of the
matter's names (exact and near, see :mod:`names`) and keeps a ``conflict_hit`` per find:

- **absolute** (art. 51): the other side of an open matter on the same ``dispute``: acting
  for both sides. The matter cannot open, and no waiver is accepted;
- **relative** (art. 52): the other side of another open matter, or of one closed within a
  year: the matter opens only after a ``conflict_waiver`` records the informed consent
  (知情同意书), and it is then walled off (art. 53: ``walled``, see roles.yaml);
- **info**: the same side, a third party, an account or a contact: shown, never blocking.

The check reads as the system, so that it is complete whoever asks (a conflict hidden behind
a wall is still a conflict); its hits fall under the walls like the matters they name, so a
screened lawyer learns that a conflict exists, not where. The interactive search
(:mod:`search`) reads as the caller.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from qiao.api import Actor, BadUserInput, Conflict, EntityDef, WriteContext

from . import names

OURS = frozenset({"CLIENT", "RELATED_COMPANY"})
THEIRS = frozenset({"OPPOSING"})
RANK = {"INFO": 0, "RELATIVE": 1, "ABSOLUTE": 2}
#: A former client stays protected this long after the matter closed (art. 52).
FORMER_CLIENT_DAYS = 365
LIMIT = 500

ART_51 = "律师执业行为规范第51条"
ART_52 = "律师执业行为规范第52条"
SYSTEM = Actor.system()


def side(role: str | None) -> str | None:
    if role in OURS:
        return "OURS"
    if role in THEIRS:
        return "THEIRS"
    return None


# -- Keys on the records that hold names --------------------------------------------------


def write_name_keys(
    entity: EntityDef, values: dict[str, Any], existing: dict[str, Any] | None
) -> None:
    """Keep ``name_keys`` in step with ``name`` and ``former_names``; nobody writes it by hand.

    A deployment that stores the name encrypted keeps no keys: they would be its plaintext.
    """
    values.pop("name_keys", None)
    name = entity.field("name")
    if name is not None and name.encrypted:
        return
    if "name" not in values and "former_names" not in values:
        return
    merged = {**(existing or {}), **values}
    written = [merged.get("name") or "", *names.split_names(merged.get("former_names"))]
    values["name_keys"] = names.keys_field(written) or None


# -- Parties of a new matter ---------------------------------------------------------------


def seed_parties(context: WriteContext, matter: dict[str, Any]) -> None:
    """A new matter's client and opposing party become its first parties, so checks find them."""
    records = context.records
    system = context.as_actor(SYSTEM)
    client = records.get(context.connection, "account", matter["client_id"], actor=SYSTEM)
    if client is not None:
        records.create(
            system,
            "matter_party",
            {
                "matter": matter["id"],
                "name": client["name"],
                "former_names": client.get("former_names"),
                "party_role": "CLIENT",
                "account": client["id"],
            },
        )
    if matter.get("opposing_party"):
        records.create(
            system,
            "matter_party",
            {"matter": matter["id"], "name": matter["opposing_party"], "party_role": "OPPOSING"},
        )


# -- The check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Hit:
    searched_name: str
    matched_name: str
    matched_as: str
    match_kind: str
    severity: str
    reason: str
    matched_matter: str | None = None

    def values(self, check_id: str) -> dict[str, Any]:
        return {
            "check": check_id,
            "matched_matter": self.matched_matter,
            "searched_name": self.searched_name,
            "matched_name": self.matched_name,
            "matched_as": self.matched_as,
            "match_kind": self.match_kind,
            "severity": self.severity,
            "reason": self.reason,
        }


def _list(context: WriteContext, entity: str, filter_: dict[str, Any]) -> list[dict[str, Any]]:
    page = context.records.list(
        context.connection, entity, filter=filter_, first=LIMIT, actor=SYSTEM
    )
    return list(page.records)


def _kind(searched: str, found: dict[str, Any]) -> str:
    written = [found.get("name") or "", *names.split_names(found.get("former_names"))]
    same = any(names.full_form(searched) == names.full_form(w) for w in written)
    return "EXACT" if same else "NEAR"


def _severity(
    ours: str | None,
    theirs: str | None,
    matter: dict[str, Any],
    other: dict[str, Any],
    today: dt.date,
) -> tuple[str, str]:
    """How a party of ``matter`` on side ``ours`` meets one of ``other`` on side ``theirs``."""
    if ours is None or theirs is None or ours == theirs:
        return "INFO", "同方当事人或第三人，仅作提示"
    dispute = matter.get("dispute")
    closed = other["status"] == "CLOSED"
    if not closed and dispute and other.get("dispute") == dispute:
        return "ABSOLUTE", f"{ART_51}：同一争议中代理双方当事人，不得代理，且不可豁免"
    if not closed:
        return "RELATIVE", f"{ART_52}：与本所现委托人利益相对，须取得知情同意后方可代理"
    closed_on = other.get("closed_on")
    if closed_on is not None and (today - closed_on).days <= FORMER_CLIENT_DAYS:
        return "RELATIVE", f"{ART_52}：与一年内结案的原委托人利益相对，须取得知情同意后方可代理"
    return "INFO", "已结案一年以上的案件，仅作提示"


def find_hits(context: WriteContext, matter: dict[str, Any]) -> tuple[list[Hit], list[str]]:
    """Every hit for ``matter``'s parties, and the names searched."""
    today = context.now().astimezone(dt.timezone(dt.timedelta(hours=8))).date()
    parties = _list(context, "matter_party", {"matter_id": {"eq": matter["id"]}})
    hits: list[Hit] = []
    searched: list[str] = []
    matters: dict[str, dict[str, Any]] = {}
    for party in parties:
        ours = side(party["party_role"])
        for name in [party["name"], *names.split_names(party.get("former_names"))]:
            searched.append(name)
            needle = names.needle(name)
            for found in _list(context, "matter_party", {"name_keys": {"contains": needle}}):
                if found["matter_id"] == matter["id"]:
                    continue
                other = matters.get(found["matter_id"]) or context.records.get(
                    context.connection, "matter", found["matter_id"], actor=SYSTEM
                )
                if other is None:
                    continue
                matters[other["id"]] = other
                severity, reason = _severity(ours, side(found["party_role"]), matter, other, today)
                hits.append(
                    Hit(name, found["name"], f"matter_party.{found['party_role']}",
                        _kind(name, found), severity, reason, other["id"])
                )  # fmt: skip
            for entity in ("account", "contact"):
                for found in _list(context, entity, {"name_keys": {"contains": needle}}):
                    if entity == "account" and found["id"] == party.get("account_id"):
                        continue
                    hits.append(
                        Hit(name, found["name"], entity, _kind(name, found), "INFO",
                            "本所客户档案中的同名或近似名称，仅作提示")
                    )  # fmt: skip
    return hits, list(dict.fromkeys(searched))


def run_check(context: WriteContext, check: dict[str, Any]) -> None:
    """Search, keep the hits on the check, and set the check's and the matter's result."""
    records = context.records
    system = context.as_actor(SYSTEM)
    matter = records.get(context.connection, "matter", check["matter_id"], actor=SYSTEM)
    assert matter is not None  # the relation was checked by the write
    hits, searched = find_hits(context, matter)
    for hit in hits:
        records.create(system, "conflict_hit", hit.values(check["id"]))
    worst = max((RANK[h.severity] for h in hits), default=0)
    result = {0: "CLEAR", 1: "RELATIVE", 2: "ABSOLUTE"}[worst]
    records.update(
        system,
        "conflict_check",
        check["id"],
        {
            "result": result,
            "hit_count": len(hits),
            "searched_names": "\n".join(searched),
            "checked_at": context.now(),
        },
    )
    # A waiver stands for the parties it was given for: a later check that finds the same kind
    # of conflict keeps it (a change of parties puts the matter back to NOT_CHECKED first).
    if not (matter["conflict_status"] == "WAIVED" and result != "ABSOLUTE"):
        records.update(system, "matter", matter["id"], {"conflict_status": result})


def lock_matter(context: WriteContext, matter_id: str | None) -> dict[str, Any] | None:
    """The matter, locked until this transaction ends; None when there is no such matter.

    A check, a waiver and a party change each write a row that references the matter (which
    holds a key-share lock on it through the foreign key) and then update the matter. Two of
    them at once on one matter, such as the check the intake rule starts and the officer's
    own, would each hold that lock and wait for the other's: a deadlock on PostgreSQL.
    Locking the matter before writing anything makes the second wait for the first to commit,
    then see its result. A missing matter is left for the write's relation check to refuse.
    """
    if matter_id is None:
        return None
    return context.records.get(context.connection, "matter", matter_id, actor=SYSTEM, lock=True)


def prepare_check(context: WriteContext, values: dict[str, Any]) -> None:
    """A check is asked for by its creator; its result is the system's to write."""
    lock_matter(context, values.get("matter"))
    for name in ("result", "hit_count", "searched_names", "checked_at"):
        values.pop(name, None)
    if values.get("requested_by") is None and context.actor.user_id is not None:
        values["requested_by"] = context.actor.user_id


def refuse_delete(entity: str) -> None:
    """Checks and waivers are the firm's record of its conflict decisions (律师法 art. 23)."""
    raise Conflict("利益冲突审查与豁免记录须永久保留，不能删除", entity=entity)


# -- Waivers and opening -------------------------------------------------------------------


def prepare_waiver(context: WriteContext, values: dict[str, Any]) -> None:
    """Only a relative conflict is waivable (art. 52); an absolute one never is (art. 51)."""
    matter = lock_matter(context, values.get("matter"))
    if matter is None:
        return
    status = matter["conflict_status"]
    if status == "ABSOLUTE":
        raise BadUserInput(
            f"{ART_51}：该案件存在绝对利益冲突，不得代理，知情同意亦不能豁免", field="matter"
        )
    if status != "RELATIVE":
        raise BadUserInput("该案件没有待豁免的相对利益冲突（先完成利益冲突审查）", field="matter")
    if values.get("check") is None:
        latest = context.records.list(
            context.connection,
            "conflict_check",
            filter={"matter_id": {"eq": matter["id"]}},
            order_by=[{"field": "created_at", "direction": "DESC"}],
            first=1,
            actor=SYSTEM,
        ).records
        values["check"] = latest[0]["id"] if latest else None
    if values.get("recorded_by") is None and context.actor.user_id is not None:
        values["recorded_by"] = context.actor.user_id


def apply_waiver(context: WriteContext, waiver: dict[str, Any]) -> None:
    """The waived matter may open, behind an information wall (art. 53)."""
    context.records.update(
        context.as_actor(SYSTEM),
        "matter",
        waiver["matter_id"],
        {"conflict_status": "WAIVED", "walled": True},
    )


def reset_on_party_change(context: WriteContext, party: dict[str, Any]) -> None:
    """A changed party list needs a new check before an intake matter opens."""
    matter = context.records.get(context.connection, "matter", party["matter_id"], actor=SYSTEM)
    if matter is None or matter["status"] != "INTAKE" or matter["conflict_status"] == "NOT_CHECKED":
        return
    context.records.update(
        context.as_actor(SYSTEM), "matter", matter["id"], {"conflict_status": "NOT_CHECKED"}
    )

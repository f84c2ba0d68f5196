"""The shapes of pipelines and approval processes, checked when their records are written.

A definition is data an admin (or a manifest) writes; a mistake found only when
a salesperson moves a deal would stop their work with an error they cannot
fix. So every part is checked up front against the metadata in force: the
entity and its enum field, every state, every field named, every guard formula
(type-checked as TRUE/FALSE), and the approver of every step. Errors are
BAD_USER_INPUT naming the definition's field and the part at fault.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from sqlalchemy import Connection

from qiao.core.automation.definitions import check_actions as check_rule_actions
from qiao.core.catalog import Catalog
from qiao.core.errors import BadUserInput
from qiao.core.formula import Clock, Formula, FormulaError, Kind, check
from qiao.core.formula.metadata import entity_resolver
from qiao.core.formula.record_values import evaluate_on_record
from qiao.core.metadata.model import EntityDef, FieldType, describe_validation_error

#: Entities whose writes are the workflow's own bookkeeping: never put under a pipeline.
WORKFLOW_ENTITIES = frozenset(
    {"pipeline", "stage_history", "approval_process", "approval_request", "approval_decision"}
)
#: Steps an approval process may have.
MAX_STEPS = 10

Action = dict[str, Any]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Guard(_Strict):
    """A condition on the record as it will be after the write, with the refusal's message."""

    when: str = Field(min_length=1, max_length=10_000)
    message: str = Field(min_length=1, max_length=500)


class Stage(_Strict):
    """One state of a pipeline: where it may go next and what entering it needs and does."""

    state: str
    next: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    guards: tuple[Guard, ...] = ()
    on_enter: tuple[Action, ...] = ()


class Step(_Strict):
    """One approval step; exactly one of ``role``, ``manager`` and ``user`` names the approvers."""

    name: str | None = Field(default=None, max_length=100)
    role: str | None = None
    manager: Literal["owner", "submitter"] | None = None
    user: str | None = None

    @model_validator(mode="after")
    def _one_approver(self) -> Step:
        given = [k for k in ("role", "manager", "user") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("a step names its approvers with exactly one of role, manager, user")
        return self

    def describe(self, number: int) -> str:
        return self.name or f"step {number}"


@dataclass(frozen=True)
class PipelineSpec:
    """A pipeline record, parsed: its stages by state, each guard with its checked formula."""

    id: str
    name: str
    entity: str
    field: str
    initial: tuple[str, ...]
    stages: dict[str, Stage]
    guards: dict[str, tuple[tuple[Guard, Formula], ...]]


@dataclass(frozen=True)
class ApprovalSpec:
    """An approval process record, parsed."""

    id: str
    name: str
    entity: str
    steps: tuple[Step, ...]
    entry_condition: Formula | None
    on_submitted: tuple[Action, ...]
    on_approved: tuple[Action, ...]
    on_rejected: tuple[Action, ...]


def _parse(model: type[BaseModel], data: Any, field: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise BadUserInput(
            f"{field}: {describe_validation_error(exc, data)}", field=field
        ) from None


def _entity(catalog: Catalog, name: Any) -> EntityDef:
    entities = catalog.registry.entities
    if not isinstance(name, str) or name not in entities:
        raise BadUserInput(f"there is no entity {name!r}", field="entity")
    if name in WORKFLOW_ENTITIES:
        raise BadUserInput(f"{name} records are the workflow's own", field="entity")
    return entities[name]


def _formula(catalog: Catalog, entity: str, source: str, field: str) -> Formula:
    try:
        return check(
            source, entity_resolver(catalog.registry.entities, entity), expect=Kind.BOOLEAN
        )
    except FormulaError as exc:
        raise BadUserInput(f"{field}: {exc.describe()}", field=field) from None


def _actions(data: Any, field: str) -> tuple[Action, ...]:
    """An action list's outer shape; each action is checked by the automation engine."""
    if data is None:
        return ()
    if not isinstance(data, list) or not all(isinstance(a, dict) for a in data):
        raise BadUserInput(f"{field} is a list of actions (objects)", field=field)
    return tuple(data)


def parse_pipeline(catalog: Catalog, record: Mapping[str, Any]) -> PipelineSpec:
    """A pipeline record checked against the metadata; raises BAD_USER_INPUT naming the part."""
    entity = _entity(catalog, record.get("entity"))
    state_field = entity.field(str(record.get("field")))
    if state_field is None or state_field.type is not FieldType.ENUM:
        raise BadUserInput(
            f"{entity.name} has no enum field {record.get('field')!r} to hold the state",
            field="field",
        )
    data = record.get("stages")
    if not isinstance(data, list) or not data:
        raise BadUserInput("stages is a non-empty list of {state, next, ...}", field="stages")
    stages: dict[str, Stage] = {}
    for i, item in enumerate(data):
        stage: Stage = _parse(Stage, item, f"stages[{i}]")
        if stage.state in stages:
            raise BadUserInput(f"stage {stage.state} is declared twice", field="stages")
        stages[stage.state] = stage
    values = set(state_field.enum_values)
    guards: dict[str, tuple[tuple[Guard, Formula], ...]] = {}
    for stage in stages.values():
        where = f"stages.{stage.state}"
        if stage.state not in values:
            raise BadUserInput(
                f"{where}: {stage.state} is not a value of {entity.name}.{state_field.name} "
                f"({', '.join(state_field.enum_values)})",
                field="stages",
            )
        unknown = [s for s in stage.next if s not in stages]
        if unknown:
            raise BadUserInput(
                f"{where}.next: {', '.join(unknown)} are not stages of this pipeline",
                field="stages",
            )
        for name in stage.required:
            f = entity.field(name)
            if f is None or f.computed:
                raise BadUserInput(
                    f"{where}.required: {entity.name} has no stored field {name!r}", field="stages"
                )
        guards[stage.state] = tuple(
            (g, _formula(catalog, entity.name, g.when, "stages")) for g in stage.guards
        )
        _actions(list(stage.on_enter), "stages")
    initial = record.get("initial") or []
    if not isinstance(initial, list) or any(s not in stages for s in initial):
        raise BadUserInput("initial lists stages of this pipeline", field="initial")
    return PipelineSpec(
        id=str(record.get("id", "")),
        name=str(record.get("name")),
        entity=entity.name,
        field=state_field.name,
        initial=tuple(initial),
        stages=stages,
        guards=guards,
    )


def parse_approval_process(catalog: Catalog, record: Mapping[str, Any]) -> ApprovalSpec:
    """An approval process record checked against the metadata."""
    entity = _entity(catalog, record.get("entity"))
    data = record.get("steps")
    if not isinstance(data, list) or not 0 < len(data) <= MAX_STEPS:
        raise BadUserInput(f"steps is a list of 1 to {MAX_STEPS} steps", field="steps")
    steps: tuple[Step, ...] = tuple(
        _parse(Step, item, f"steps[{i}]") for i, item in enumerate(data)
    )
    for i, step in enumerate(steps):
        if step.manager == "owner" and entity.field("owner") is None:
            raise BadUserInput(
                f"steps[{i}]: {entity.name} has no owner field; use manager: submitter",
                field="steps",
            )
    source = record.get("entry_condition")
    condition = None
    if source:
        condition = _formula(catalog, entity.name, str(source), "entry_condition")
    return ApprovalSpec(
        id=str(record.get("id", "")),
        name=str(record.get("name")),
        entity=entity.name,
        steps=steps,
        entry_condition=condition,
        on_submitted=_actions(record.get("on_submitted"), "on_submitted"),
        on_approved=_actions(record.get("on_approved"), "on_approved"),
        on_rejected=_actions(record.get("on_rejected"), "on_rejected"),
    )


def check_actions(
    catalog: Catalog, spec: PipelineSpec | ApprovalSpec, role_exists: Callable[[str], bool]
) -> None:
    """Check every action list of a definition with the automation engine's own checks."""
    if isinstance(spec, PipelineSpec):
        lists = [("stages", f"stages.{s.state}.on_enter", s.on_enter) for s in spec.stages.values()]
    else:
        lists = [
            (name, name, getattr(spec, name))
            for name in ("on_submitted", "on_approved", "on_rejected")
        ]
    for field, where, actions in lists:
        if not actions:
            continue
        try:
            check_rule_actions(catalog, spec.entity, list(actions), role_exists)
        except BadUserInput as exc:
            raise BadUserInput(f"{where}: {exc.message}", field=field) from None


def holds(
    conn: Connection,
    catalog: Catalog,
    entity: str,
    record: Mapping[str, Any],
    formula: Formula,
    clock: Clock,
    field: str | None,
) -> bool:
    """Whether ``formula`` is TRUE on ``record``; a value it cannot compute is BAD_USER_INPUT."""
    try:
        return evaluate_on_record(conn, catalog, entity, record, formula, clock) is True
    except FormulaError as exc:
        raise BadUserInput(
            f"{formula.source!r} cannot be computed for this {entity}: {exc.message}", field=field
        ) from None


def merged(values: Mapping[str, Any], existing: Mapping[str, Any] | None) -> dict[str, Any]:
    """A definition record as it will be after a write: the stored one with the new values."""
    return {**(existing or {}), **values}

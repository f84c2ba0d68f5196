"""Pipelines and approval processes declared in a manifest become records once, checked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.errors import BadUserInput
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime

DECLARED = {
    "pipelines": [
        {
            "name": "service_tickets",
            "entity": "ticket",
            "field": "status",
            "initial": ["OPEN"],
            "stages": [
                {"state": "OPEN", "next": ["ACCEPTED"]},
                {"state": "ACCEPTED", "next": ["RESOLVED"], "required": ["owner"]},
                {"state": "RESOLVED", "next": ["CLOSED"], "required": ["resolved_at"]},
                {"state": "CLOSED"},
            ],
        }
    ],
    "approval_processes": [
        {
            "name": "big_deals",
            "entity": "opportunity",
            "entry_condition": "amount > 1000000",
            "steps": [{"name": "大区总监审批", "role": "regional_director"}],
        }
    ],
}


class DeclaresWorkflow:
    """A template shipping a ticket pipeline and an approval process as data."""

    __name__ = "service_template"

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest(self.manifest, self.__name__, "service_template.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [DeclaresWorkflow(DECLARED)]


def test_declared_definitions_are_installed_and_enforced(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with qiao_runtime.db.read() as conn:
        (pipeline,) = records.list(conn, "pipeline", actor=Actor.system()).records
        (process,) = records.list(conn, "approval_process", actor=Actor.system()).records
    assert (pipeline["name"], pipeline["source"]) == ("service_tickets", "service_template")
    assert (process["name"], process["source"]) == ("big_deals", "service_template")
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        ticket = records.create(ctx, "ticket", {"subject": "主轴异响"})
    with (
        pytest.raises(BadUserInput, match="entering ACCEPTED needs owner"),
        records.transaction(Actor.system(), Source.SYSTEM) as ctx,
    ):
        records.update(ctx, "ticket", ticket["id"], {"status": "ACCEPTED"})


def test_a_second_migration_keeps_what_an_administrator_changed(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    with qiao_runtime.db.read() as conn:
        (pipeline,) = records.list(conn, "pipeline", actor=Actor.system()).records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.update(ctx, "pipeline", pipeline["id"], {"active": False})
    again = Runtime(qiao_runtime.config, extra_plugins=[DeclaresWorkflow(DECLARED)])
    try:
        again.migrate()
    finally:
        again.close()
    with qiao_runtime.db.read() as conn:
        (kept,) = records.list(conn, "pipeline", actor=Actor.system()).records
    assert kept["active"] is False


def test_a_bad_declaration_stops_the_migration_naming_the_plugin(qiao_runtime: Runtime) -> None:
    bad = {"pipelines": [DECLARED["pipelines"][0] | {"name": "broken", "field": "subject"}]}
    runtime = Runtime(qiao_runtime.config, extra_plugins=[DeclaresWorkflow(bad)])
    try:
        with pytest.raises(BadUserInput) as stopped:
            runtime.migrate()
    finally:
        runtime.close()
    assert stopped.value.message == (
        "plugin 'service_template' declares the pipeline 'broken': "
        "ticket has no enum field 'subject' to hold the state"
    )
    assert stopped.value.field == "field"

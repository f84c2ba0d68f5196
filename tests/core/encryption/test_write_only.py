"""Write-only fields: set through GraphQL, never read back through it; plugins read them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.model import FieldDef
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime


class Vault:
    """Declares ``vault_entry``, whose ``secret`` is write-only."""

    __name__ = "vault"

    @hookimpl
    def qiao_entity_manifests(self) -> list[Path]:
        return [Path(__file__).with_name("vault.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Vault()]


def create(client: Any) -> str:
    data = client.data(
        'mutation { createVaultEntry(input: {name: "wecom", secret: "s3cr3t"}) { id name } }'
    )
    return str(data["createVaultEntry"]["id"])


def test_a_secret_is_set_and_not_read_back(qiao_client: Any, qiao_runtime: Runtime) -> None:
    entry = create(qiao_client)
    for query in (
        f'{{ vaultEntry(id: "{entry}") {{ secret }} }}',
        "{ vaultEntries { edges { node { secret } } } }",
        "{ vaultEntries(filter: {secret: {isNull: false}}) { totalCount } }",
        "{ vaultEntries(orderBy: [{field: SECRET}]) { totalCount } }",
        f'mutation {{ updateVaultEntry(id: "{entry}", input: {{note: "x"}}) {{ secret }} }}',
    ):
        errors = qiao_client.errors(query)
        assert errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED", (query, errors)
    with qiao_runtime.db.read() as conn:
        stored = conn.exec_driver_sql("SELECT secret FROM vault_entry").scalar_one()
        record = qiao_runtime.records.get(conn, "vault_entry", entry, actor=Actor.system())
    assert stored.startswith("sm4g") and "s3cr3t" not in stored
    assert record["secret"] == "s3cr3t"


def test_an_update_replaces_the_secret(qiao_client: Any, qiao_runtime: Runtime) -> None:
    entry = create(qiao_client)
    qiao_client.data(
        f'mutation {{ updateVaultEntry(id: "{entry}", input: {{secret: "new"}}) {{ name }} }}'
    )
    with qiao_runtime.db.read() as conn:
        record = qiao_runtime.records.get(conn, "vault_entry", entry, actor=Actor.system())
    assert record["secret"] == "new"


def test_the_audit_trail_redacts_it(qiao_client: Any) -> None:
    entry = create(qiao_client)
    edges = "edges { node { changes } }"
    query = f'{{ auditTrail(entity: "VaultEntry", id: "{entry}") {{ {edges} }} }}'
    data = qiao_client.data(query)
    assert data["auditTrail"]["edges"][0]["node"]["changes"]["secret"] == {"redacted": True}


def test_formulas_cannot_read_it(qiao_runtime: Runtime) -> None:
    from qiao.core.errors import BadUserInput

    records = qiao_runtime.records
    rule = {
        "name": "leak",
        "entity": "vault_entry",
        "trigger": {"created": {}},
        "actions": [{"notify": {"users": ["admin"], "title": "{secret}"}}],
    }
    with (
        pytest.raises(BadUserInput, match="write-only"),
        records.transaction(Actor.system(), Source.CLI) as ctx,
    ):
        records.create(ctx, "automation_rule", rule)


def test_it_must_be_encrypted() -> None:
    with pytest.raises(ValidationError, match="write-only field is encrypted"):
        FieldDef.model_validate(
            {"name": "secret", "type": "string", "write_only": True, "label": {"en": "Secret"}}
        )

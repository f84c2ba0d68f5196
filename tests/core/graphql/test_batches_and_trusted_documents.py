"""Batched requests and trusted documents at /graphql, through a live server.

A batch is a JSON array of operations answered in order, bounded by
``[graphql] max_batch``. Trusted documents are the clients' manifest of
documents by SHA-256: clients may send a ``documentId`` instead of the text,
and a deployment that requires them refuses any other query before parsing it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from qiao.core import outbound
from qiao.core.config import Config, GraphQLSettings
from qiao.core.errors import ConfigurationError
from qiao.core.graphql.trusted import document_hash
from qiao.core.testing.deployment import Deployment
from qiao.core.testing.server import LiveServer

LIST = "{ accounts(first: 5) { edges { node { name } } } }"
CREATE = 'mutation { createAccount(input: {name: "常州精密机械"}) { name } }'
UNTRUSTED = "{ contacts(first: 1) { edges { node { id } } } }"


@pytest.fixture
def http(qiao_server: LiveServer, qiao_admin_token: str) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {qiao_admin_token}"}
    with outbound.client(base_url=qiao_server.url, headers=headers, timeout=60) as client:
        yield client


def _manifest(path: Path, *queries: str, prefix: str = "sha256:") -> Path:
    path.write_text(
        json.dumps({prefix + document_hash(q): q for q in queries}, ensure_ascii=False),
        encoding="utf-8",
    )
    return path


class TestBatches:
    def test_operations_are_answered_in_order_each_on_its_own(self, http: httpx.Client) -> None:
        batch = [
            {"query": CREATE},
            {"query": "{ nope }"},
            {"query": LIST},
        ]
        response = http.post("/graphql", json=batch)
        assert response.status_code == 200
        created, failed, listed = response.json()
        assert created == {"data": {"createAccount": {"name": "常州精密机械"}}}
        assert failed["data"] is None
        assert "nope" in failed["errors"][0]["message"]
        assert listed["data"]["accounts"]["edges"] == [{"node": {"name": "常州精密机械"}}]

    @pytest.mark.parametrize(
        ("batch", "message"),
        [
            ([], "at least one operation"),
            (
                [{"query": CREATE}] + [{"query": LIST}] * 10,
                "at most 10 operations, this one has 11",
            ),
            ([{"query": CREATE}, "{ accounts }"], "operation 1 of the batch: the request body"),
            ([{"query": CREATE}, {"variables": {}}], "operation 1 of the batch: the request needs"),
        ],
    )
    def test_a_malformed_or_oversized_batch_is_refused_whole(
        self, http: httpx.Client, batch: list[Any], message: str
    ) -> None:
        response = http.post("/graphql", json=batch)
        assert response.status_code == 400
        (error,) = response.json()["errors"]
        assert message in error["message"]
        listed = http.post("/graphql", json={"query": LIST}).json()
        assert listed["data"]["accounts"]["edges"] == []  # nothing of a refused batch ran


class TestTrustedDocuments:
    @pytest.fixture
    def qiao_config(self, qiao_config: Config, tmp_path: Path) -> Config:
        manifest = _manifest(tmp_path / "documents.json", LIST, CREATE)
        settings = GraphQLSettings(trusted_documents=manifest, require_trusted_documents=True)
        return dataclasses.replace(qiao_config, graphql=settings)

    def test_a_client_sends_the_document_id_instead_of_the_text(self, http: httpx.Client) -> None:
        by_id = http.post("/graphql", json={"documentId": f"sha256:{document_hash(CREATE)}"})
        assert by_id.json() == {"data": {"createAccount": {"name": "常州精密机械"}}}
        apollo = {
            "extensions": {"persistedQuery": {"version": 1, "sha256Hash": document_hash(LIST)}}
        }
        listed = http.post("/graphql", json=apollo).json()
        assert listed["data"]["accounts"]["edges"] == [{"node": {"name": "常州精密机械"}}]
        as_text = http.post("/graphql", json={"query": LIST}).json()
        assert as_text == listed  # a trusted document's own text is trusted too

    def test_any_other_query_is_refused_before_it_runs(self, http: httpx.Client) -> None:
        response = http.post("/graphql", json={"query": UNTRUSTED})
        assert response.status_code == 403
        (error,) = response.json()["errors"]
        assert error["extensions"]["code"] == "FORBIDDEN"
        assert "only its trusted documents" in error["message"]
        batch = http.post("/graphql", json=[{"query": CREATE}, {"query": UNTRUSTED}])
        assert batch.status_code == 403
        assert "operation 1 of the batch" in batch.json()["errors"][0]["message"]
        listed = http.post("/graphql", json={"query": LIST}).json()
        assert listed["data"]["accounts"]["edges"] == []  # the batch's create did not run

    @pytest.mark.parametrize(
        ("body", "message"),
        [
            ({"documentId": "sha256:" + "0" * 64}, "not in this deployment's manifest"),
            ({"documentId": 7}, "'documentId' must be a string"),
            ({"documentId": f"sha256:{document_hash(LIST)}", "query": CREATE}, "not both"),
        ],
    )
    def test_a_bad_document_id_is_a_clear_error(
        self, http: httpx.Client, body: dict[str, Any], message: str
    ) -> None:
        response = http.post("/graphql", json=body)
        assert response.status_code == 400
        assert message in response.json()["errors"][0]["message"]


def test_settings_refuse_what_cannot_work(tmp_path: Path) -> None:
    config = tmp_path / "qiao.toml"
    for table, message in [
        ("require_trusted_documents = true", "needs trusted_documents"),
        ("max_batch = 0", "at least 1"),
        ('require_trusted_documents = "yes"', "true or false"),
        ("trusted_documents = 3", "must be a file path"),
    ]:
        config.write_text(f"[graphql]\n{table}\n", encoding="utf-8")
        with pytest.raises(ConfigurationError, match=message):
            Config.from_file(config)
    config.write_text('[graphql]\ntrusted_documents = "documents.json"\n', encoding="utf-8")
    assert Config.from_file(config).graphql.trusted_documents == tmp_path / "documents.json"


@pytest.mark.storage
def test_serve_refuses_to_start_on_a_forged_manifest(qiao_deployment: Deployment) -> None:
    manifest = qiao_deployment.folder / "documents.json"
    manifest.write_text(json.dumps({"sha256:" + "0" * 64: LIST}), encoding="utf-8")
    with qiao_deployment.config.open("a", encoding="utf-8") as config:
        config.write('\n[graphql]\ntrusted_documents = "documents.json"\n')
    done = qiao_deployment.run("serve", "--port", "0", expect=1, timeout=120)
    output = done.stdout + done.stderr
    assert "is not the SHA-256 of its document" in output
    assert "Traceback" not in output

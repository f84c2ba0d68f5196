"""The {{ cookiecutter.name }} template: its manifest, its API and its demo data."""

from __future__ import annotations

from typing import Any

import pytest

from qiao.api import Actor, Conflict
from {{ cookiecutter.package }} import TEMPLATE


def test_the_manifest_names_the_template() -> None:
    assert TEMPLATE.manifest.name == "{{ cookiecutter.name }}"
    assert TEMPLATE.depends == ("crm",)


def test_records_are_created_through_the_api(qiao_client: Any) -> None:
    created = qiao_client.data(
        'mutation { create{{ cookiecutter.entity_type }}(input: {code: "X-1", title: "试运行"}) '
        "{ code title stage } }"
    )
    assert created["create{{ cookiecutter.entity_type }}"] == {
        "code": "X-1",
        "title": "试运行",
        "stage": "NEW",
    }


def test_demo_data_is_seeded_once(qiao_runtime: Any) -> None:
    qiao_runtime.migrate(demo_of=["{{ cookiecutter.name }}"])
    with qiao_runtime.db.read() as conn:
        page = qiao_runtime.records.list(
            conn, "{{ cookiecutter.entity }}", first=10, with_total=True, actor=Actor.system()
        )
    assert page.total_count == 1
    with pytest.raises(Conflict):
        qiao_runtime.migrate(demo_of=["{{ cookiecutter.name }}"])

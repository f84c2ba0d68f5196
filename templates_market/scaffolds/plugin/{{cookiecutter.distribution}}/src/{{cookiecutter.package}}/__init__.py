"""The {{ cookiecutter.name }} plugin: its entities and the hooks that give them behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qiao.api import BadUserInput, hookimpl

QIAO_DEPENDS = ("crm",)


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [Path(__file__).with_name("entities.yaml")]


@hookimpl(entities=["{{ cookiecutter.entity }}"])
def qiao_before_record_write(values: dict[str, Any]) -> None:
    """Titles are stored without surrounding spaces, and a blank title is refused."""
    if isinstance(values.get("title"), str):
        values["title"] = values["title"].strip()
        if not values["title"]:
            raise BadUserInput("a title needs more than spaces", field="title")

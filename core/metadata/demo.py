"""Demo data files: the example records a plugin ships, read and checked (docs/manifest.md).

A demo file holds ``records``, each with an ``entity``, its ``values`` and an
optional ``key``. A value written ``"@key"`` is the id of the record seeded
earlier under that key (by this file or by a plugin seeded before it); a
value written ``{lookup: ENTITY, where: {FIELD: VALUE, ...}}`` is the id of
the one record of ENTITY that matches, such as a role installed by the
plugin's manifest. The format sits with the manifest's, below the hooks that
return it and the plugin manager that reads it; :mod:`qiao.core.packages.demo`
seeds the records.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from qiao.core.errors import MetadataError
from qiao.core.metadata.model import describe_validation_error
from qiao.core.metadata.yamltext import read_yaml


class DemoRecord(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    entity: str
    key: str | None = None
    values: dict[str, Any]


class DemoData(BaseModel):
    """The contents of one demo file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    records: tuple[DemoRecord, ...] = Field(min_length=1)


def load_demo(path: Path) -> DemoData:
    """Read and check a demo file; every problem names the file and the place in it."""
    data = read_yaml(path, "demo data")
    try:
        return DemoData.model_validate(data)
    except ValidationError as exc:
        raise MetadataError(f"{path}: {describe_validation_error(exc, data)}") from None

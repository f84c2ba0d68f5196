"""YAML text of manifests, demo data and the market, parsed through libyaml when PyYAML has it.

Every process that starts a runtime reads the manifests of every enabled plugin and
template; PyYAML's pure-Python parser takes about six times as long as its libyaml
binding for the same safe data. Both raise ``yaml.YAMLError`` with the line and column.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """The data of one YAML document of plain types (as ``yaml.safe_load``)."""
    return yaml.load(text, Loader=_LOADER)

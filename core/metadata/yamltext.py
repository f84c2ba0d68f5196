"""YAML text of manifests, demo data and the market, parsed through libyaml when PyYAML has it.

Every process that starts a runtime reads the manifests of every enabled plugin and
template; PyYAML's pure-Python parser takes about six times as long as its libyaml
binding for the same safe data. Both raise ``yaml.YAMLError`` with the line and column.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from qiao.core.errors import MetadataError

_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str) -> Any:
    """The data of one YAML document of plain types (as ``yaml.safe_load``)."""
    return yaml.load(text, Loader=_LOADER)


def read_yaml(path: Path, what: str) -> Any:
    """The data of the YAML file ``path``; :class:`MetadataError` names the file and the place.

    ``what`` says what the file is in the message of a file that cannot be read
    ("manifest", "demo data"); a syntax error gives the line and column.
    """
    try:
        return parse_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise MetadataError(f"cannot read {what} {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise MetadataError(f"{path}: not valid YAML: {exc}") from None

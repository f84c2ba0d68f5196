"""The built-in plugin every deployment has: users and teams.

Identity, ownership and permissions refer to these two entities, so they ship
with the kernel, declared through the same hook any plugin uses.
"""

from __future__ import annotations

from pathlib import Path

from qiao.core.hookspecs import hookimpl

MANIFEST = Path(__file__).with_name("identity.yaml")


@hookimpl
def qiao_entity_manifests() -> list[Path]:
    return [MANIFEST]

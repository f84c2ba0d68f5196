"""schema export."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

Run = Callable[..., Result]


def test_schema_export_prints_the_sdl(run: Run, tmp_path: Path) -> None:
    sdl = run("schema", "export").stdout
    assert "type Account implements Node {" in sdl
    assert "opportunities(" in sdl
    target = tmp_path / "schema.graphql"
    result = run("schema", "export", "--output", str(target))
    assert result.stdout == ""
    assert target.read_text(encoding="utf-8") == sdl

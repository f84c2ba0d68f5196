"""init, migrate, demo and plugin list."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import yaml
from click.testing import Result
from sqlalchemy import inspect, select

import qiao.templates_market as qiao_templates
from qiao.core.config import Config
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime
from qiao.core.testing.worker import TEST_SETTINGS, drain
from qiao.core.worker import Worker

Run = Callable[..., Result]


def _count(config_path: Path, entity: str) -> int:
    runtime = Runtime(Config.load(config_path))
    try:
        with runtime.db.read() as conn:
            page = runtime.records.list(
                conn, entity, first=1, with_total=True, actor=Actor.system()
            )
    finally:
        runtime.close()
    assert page.total_count is not None
    return page.total_count


def _urgent_ticket_notices(config_path: Path) -> list[str]:
    """What the demo's service engineer is told once a worker has run the demo's rules."""
    runtime = Runtime(Config.load(config_path))
    try:
        runtime.start()
        worker = Worker(runtime, TEST_SETTINGS)
        try:
            drain(worker)
        finally:
            worker.close()
        users = runtime.current().table("user")
        with runtime.db.read() as conn:
            chen = conn.execute(select(users.c.id).where(users.c.username == "chen.lei")).scalar()
            page = runtime.records.list(
                conn,
                "notification",
                filter={"owner_id": {"eq": chen}, "kind": {"eq": "ticket_urgent"}},
                actor=Actor.system(),
            )
    finally:
        runtime.close()
    return [n["title"] for n in page.records]


def test_init_makes_a_deployment(qiao: Run, tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    result = qiao("init", str(folder))
    settings = tomllib.loads((folder / "qiao.toml").read_text(encoding="utf-8"))
    assert settings["database"]["url"] == "sqlite:///qiao.db"
    assert settings["plugins"]["enabled"] == ["crm"]
    assert settings["server"] == {
        "host": "127.0.0.1",
        "port": 8000,
        "production": False,
        "cors_origins": [],
    }
    assert (folder / "qiao.db").is_file()
    assert "created table account" in result.stdout
    assert "qiao token create --user admin" in result.stdout
    users = qiao("--config", str(folder / "qiao.toml"), "user", "list").stdout
    assert "admin" in users
    assert "管理员" in users


def test_init_refuses_an_existing_deployment(qiao: Run, tmp_path: Path) -> None:
    qiao("init", str(tmp_path))
    result = qiao("init", str(tmp_path), expect=1)
    assert "exists already" in result.stderr
    assert "--force" in result.stderr
    forced = qiao("init", str(tmp_path), "--force")
    assert "The database is up to date." in forced.stdout
    assert "'admin' exists already" in forced.stdout


def test_init_refuses_unknown_plugins_before_writing(qiao: Run, tmp_path: Path) -> None:
    result = qiao("init", str(tmp_path / "x"), "--plugin", "nosuch", expect=1)
    assert "'nosuch' is enabled but not installed" in result.stderr
    assert not (tmp_path / "x").exists()


def test_init_demo_seeds_once_and_prints_a_token(
    qiao: Run, tmp_path: Path, qiao_backend: str, qiao_empty_database_url: str
) -> None:
    folder = tmp_path / "demo"
    database = [] if qiao_backend == "sqlite" else ["--database", qiao_empty_database_url]
    result = qiao("init", str(folder), "--demo", *database)
    assert "Authorization: Bearer qiao_" in result.stdout
    config = folder / "qiao.toml"
    assert _count(config, "account") == 12
    assert _count(config, "opportunity") >= 8
    assert _count(config, "automation_rule") == 2
    assert _urgent_ticket_notices(config) == ["紧急工单：伺服驱动器 AL.16 报警"]
    again = qiao("--config", str(config), "demo", expect=1)
    assert (
        again.stderr.strip() == "Error: the crm demo data is there already (it can be seeded once)"
    )
    assert _count(config, "account") == 12


def test_migrate_is_idempotent(qiao: Run, tmp_path: Path, make_config: Callable[..., Path]) -> None:
    config = make_config(tmp_path / "qiao.toml", f"sqlite:///{tmp_path / 'new.db'}")
    first = qiao("--config", str(config), "migrate").stdout
    assert "migrated kernel tables to revision" in first
    assert "created table opportunity" in first
    assert qiao("--config", str(config), "migrate").stdout == "The database is up to date.\n"


def test_migrate_reports_an_up_to_date_database(run: Run, qiao_runtime: Runtime) -> None:
    assert run("migrate").stdout == "The database is up to date.\n"
    with qiao_runtime.db.read() as conn:
        assert "opportunity" in inspect(conn).get_table_names()


def test_serve_refuses_a_database_behind_the_metadata(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path]
) -> None:
    config = make_config(tmp_path / "qiao.toml", f"sqlite:///{tmp_path / 'empty.db'}")
    result = qiao("--config", str(config), "serve", expect=1)
    assert result.stderr == (
        "Error: the database is behind the metadata; run 'qiao migrate' first\n"
    )


def test_plugin_list_marks_enabled_plugins(
    qiao: Run, tmp_path: Path, make_config: Callable[..., Path]
) -> None:
    config = make_config(tmp_path / "qiao.toml", "sqlite:///unused.db")
    lines = qiao("--config", str(config), "plugin", "list").stdout.splitlines()
    assert any(line.startswith("* core ") and "built in" in line for line in lines)
    assert any(line.startswith("* crm ") for line in lines)


def test_init_writes_key_file_unit_and_environment_file(qiao: Run, tmp_path: Path) -> None:
    folder = tmp_path / "acme"
    made = qiao("init", str(folder), "--template", "clinics").stdout
    shipped = Path(qiao_templates.__file__).parent / "clinics" / "template.yaml"
    version = yaml.safe_load(shipped.read_text(encoding="utf-8"))["version"]
    assert f"installed template clinics {version}" in made
    settings = tomllib.loads((folder / "qiao.toml").read_text(encoding="utf-8"))
    assert settings["keys"] == {"provider": "file", "file": "qiao-kek.json"}
    assert settings["audit"] == {"key_file": "qiao-kek.json"}
    assert settings["plugins"]["enabled"] == ["crm", "clinics"]
    for private in ("qiao-kek.json", "qiao.env"):
        assert (folder / private).stat().st_mode & 0o777 == 0o600
    unit = (folder / "qiao.service").read_text(encoding="utf-8")
    assert f"EnvironmentFile={folder.resolve()}/qiao.env" in unit
    assert "serve" in unit.split("ExecStart=")[1].splitlines()[0]
    env = (folder / "qiao.env").read_text(encoding="utf-8")
    assert f"QIAO_CONFIG={folder.resolve()}/qiao.toml" in env
    key = (folder / "qiao-kek.json").read_bytes()
    qiao("init", str(folder), "--force")
    assert (folder / "qiao-kek.json").read_bytes() == key  # a key is never replaced


def test_init_refuses_an_unknown_template_before_writing(qiao: Run, tmp_path: Path) -> None:
    result = qiao("init", str(tmp_path / "x"), "--template", "bakery", expect=1)
    assert "no template 'bakery' in the market" in result.stderr
    assert not (tmp_path / "x").exists()

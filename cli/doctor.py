"""``qiao doctor``: check a deployment and say what to fix.

Each check prints one line, ``ok``, ``FAIL``, ``warn`` or ``skip``, with what
it found; a failure or a warning adds what to do about it. Checks that need an
earlier one (the migrations need the database and the plugins) are skipped
when it failed, so the first line to fix is the first FAIL. Any failure makes
the exit code 1; a warning (a setting that may be right on one network and
wrong on another) does not.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from qiao.cli.reach import outside_settings
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core import audit as audit_log
from qiao.core.config import Config
from qiao.core.crypto import CryptoError, FileKeyProvider
from qiao.core.encryption import KeySettings
from qiao.core.encryption.backup import MAGIC as BACKUP_MAGIC
from qiao.core.errors import QiaoError
from qiao.core.market.index import Market
from qiao.core.packages import versions
from qiao.core.pluginmanager import create_plugins
from qiao.core.runtime import Runtime
from qiao.core.schema.ddl import SchemaPlan
from qiao.core.storage.database import Database


@dataclass(frozen=True)
class Result:
    status: str  # "ok", "FAIL", "warn" or "skip"
    found: str
    fix: str = ""


def ok(found: str) -> Result:
    return Result("ok", found)


def fail(found: str, fix: str = "") -> Result:
    return Result("FAIL", found, fix)


def warn(found: str, fix: str) -> Result:
    return Result("warn", found, fix)


def skip(found: str) -> Result:
    return Result("skip", found)


class Doctor:
    """Runs the checks in order; each may read what the earlier ones found."""

    def __init__(self, state: CliState) -> None:
        self.state = state
        self.config: Config | None = None
        self.settings: SettingsFile | None = None
        self.passed: set[str] = set()

    def checks(self) -> list[tuple[str, Callable[[], Result]]]:
        return [
            ("config", self.check_config),
            ("plugins", self.check_plugins),
            ("database", self.check_database),
            ("migrations", self.check_migrations),
            ("key file", self.check_key_file),
            ("key provider", self.check_key_provider),
            ("audit key", self.check_audit_key),
            ("audit log", self.check_audit_log),
            ("file modes", self.check_file_modes),
            ("templates", self.check_templates),
            ("network", self.check_network),
            ("clock", self.check_clock),
        ]

    def check_config(self) -> Result:
        self.config = self.state.config()
        if self.config.path is None:
            return fail(
                "no qiao.toml here",
                "run in a deployment folder, pass --config PATH, or create one with 'qiao init'",
            )
        self.settings = SettingsFile.read(self.config.path)
        return ok(str(self.config.path))

    def check_plugins(self) -> Result:
        if self.config is None:
            return skip("needs the configuration")
        plugins = create_plugins(self.config.plugins)
        return ok(f"loaded {', '.join(plugins.names)}")

    def check_database(self) -> Result:
        if self.config is None:
            return skip("needs the configuration")
        url = make_url(self.config.database_url).render_as_string(hide_password=True)
        db = Database(self.config.database_url)
        try:
            with db.read() as conn:
                conn.execute(text("SELECT 1"))
        except SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            return fail(
                f"{url} cannot be reached: {reason}",
                "start the database, or correct [database] url (or QIAO_DATABASE_URL)",
            )
        finally:
            db.dispose()
        return ok(f"{url} answers")

    def check_migrations(self) -> Result:
        if self.config is None or not {"plugins", "database"} <= self.passed:
            return skip("needs the plugins and the database")
        runtime = Runtime(self.config)
        try:
            kernel_current, plan = runtime.pending()
        finally:
            runtime.close()
        if not kernel_current or plan is None or not plan.empty:
            pending = "kernel tables" if plan is None else _describe(plan)
            return fail(f"behind the metadata: {pending}", "run 'qiao migrate'")
        return ok("the schema matches the metadata")

    def check_key_file(self) -> Result:
        path = self.settings.key_file() if self.settings else None
        if path is None:
            return skip("no [keys] file in qiao.toml; encrypted fields cannot be used")
        if not path.exists():
            return fail(f"{path} is missing", "restore it from your key backup (docs/deploy.md)")
        try:
            provider = FileKeyProvider(path)
        except CryptoError as exc:
            return fail(str(exc))  # the message says what to do
        mode = stat.S_IMODE(path.stat().st_mode)
        return ok(f"{path} (mode {mode:04o}, current KEK {provider.kek_id})")

    def check_key_provider(self) -> Result:
        """The ``[keys]`` provider exists, opens, and wraps and unwraps a probe key."""
        if self.config is None:
            return skip("needs the configuration")
        plugins = create_plugins(self.config.plugins)
        settings = KeySettings.of(self.config, plugin_providers=plugins.key_providers())
        if settings.provider is None:
            return skip("no [keys] provider in qiao.toml; encrypted fields cannot be used")
        provider = settings.make_provider(plugins)  # unknown or unreachable: FAIL
        if provider is None:
            return fail(f"the provider {settings.provider!r} could not be made")
        probe = os.urandom(32)
        try:
            if provider.unwrap(provider.wrap(probe)) != probe:
                return fail(f"{settings.provider}: a probe key came back changed")
        except (CryptoError, QiaoError) as exc:
            return fail(f"{settings.provider}: {exc}")
        return ok(f"{settings.provider}: {provider.kek_id} wraps and unwraps")

    def check_audit_key(self) -> Result:
        path = self.config.audit.key_file if self.config else None
        if path is None:
            return skip("no [audit] key_file in qiao.toml; the audit log is not kept")
        if not path.exists():
            return fail(f"{path} is missing", "restore it from your key backup (docs/audit.md)")
        try:
            FileKeyProvider(path)  # owner, mode 0600 or 0400, and contents
        except CryptoError as exc:
            return fail(str(exc))  # the message says what to do
        mode = stat.S_IMODE(path.stat().st_mode)
        return ok(f"{path} (mode {mode:04o})")

    def check_audit_log(self) -> Result:
        """What ``qiao audit verify`` does: every entry's MAC and place in the chain."""
        if self.config is None or not {"migrations", "audit key"} <= self.passed:
            return skip("needs the migrations and the audit key")
        runtime = Runtime(self.config)
        try:
            runtime.start()
            log = audit_log.bound(runtime)
            if log is None:
                return skip("no audit key is bound")
            with runtime.db.read() as conn:
                if not audit_log.has_key(conn):
                    return fail(
                        "the audit log has no key, so changes cannot be recorded",
                        "if this deployment never had one, run 'qiao audit init-key'; "
                        "otherwise the log and its key were erased: see docs/audit.md",
                    )
                report = log.verify(conn)
        finally:
            runtime.close()
        if report.problem is not None:
            return fail(
                f"does NOT verify: {report.problem}",
                "the log was changed outside Qiao: keep the database as it is for "
                "investigation, and see docs/audit.md",
            )
        if report.count == 0:
            return ok(f"verified: no entries after entry {report.first - 1}")
        return ok(f"verified: entries {report.first} to {report.last} ({report.count} entries)")

    def check_file_modes(self) -> Result:
        """Files holding data or secrets that users other than the owner may read."""
        if self.config is None:
            return skip("needs the configuration")
        loose = [
            f"{path} ({mode:04o})"
            for path in _private_files(self.config)
            if (mode := stat.S_IMODE(path.stat().st_mode)) & 0o077
        ]
        if loose:
            return warn(
                f"readable by other users: {', '.join(loose)}",
                "chmod 600 each of them (Qiao creates them 0600; they were copied or made by hand)",
            )
        return ok("the database, backups and audit checkpoints are private (0600)")

    def check_templates(self) -> Result:
        if self.config is None:
            return ok("none installed")
        market = Market.load()
        templates = [p for p in self.config.plugins if market.is_template(p)]
        if not templates:
            return ok("none installed")
        runtime = Runtime(self.config)
        try:
            with runtime.db.read() as conn:
                applied = inspect(conn).has_table(versions.package.name)
                recorded = versions.recorded(conn) if applied else {}
        finally:
            runtime.close()
        behind = []
        for name in templates:
            package_version = market.package(name).version
            if recorded.get(name) != package_version:
                have = recorded.get(name) or "not applied"
                behind.append(f"{name} {have} (package {package_version})")
        if behind:
            first = behind[0].split()[0]
            return fail(
                f"not at their package's version: {', '.join(behind)}",
                f"run 'qiao template upgrade {first}'",
            )
        return ok(", ".join(f"{n} {recorded[n]}" for n in templates))

    def check_clock(self) -> Result:
        """A controllable clock is for acceptance runs: say so wherever it is on."""
        if self.config is None:
            return skip("needs the configuration")
        if not self.config.clock_controllable:
            return ok("follows real time")
        if self.config.production:
            return fail(
                "[clock] controllable with [server] production = true",
                "remove [clock] controllable; the server refuses to start with both",
            )
        return warn(
            "[clock] controllable = true: administrators can set the time",
            "fine for acceptance and test deployments; never for real users (docs/clock.md)",
        )

    def check_network(self) -> Result:
        """Settings naming public hosts: unreachable where there is no way out."""
        if self.config is None:
            return skip("needs the configuration")
        settings = self.settings.data if self.settings else {}
        outside = outside_settings(self.config, settings, os.environ)
        if not outside:
            return ok("no setting names a host outside this network")
        return warn(
            f"settings name hosts outside this network: {'; '.join(outside)}",
            "on a network with no way out, point them at hosts inside it; ignore this if "
            "your own DNS resolves these names inside (docs/deploy-airgapped.md)",
        )


def _private_files(config: Config) -> list[Path]:
    """The SQLite database with its -wal and -shm, backups in the folder, audit checkpoints."""
    found: list[Path] = []
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        found += [Path(f"{url.database}{suffix}") for suffix in ("", "-wal", "-shm")]
    if config.audit.checkpoint_file is not None:
        found.append(config.audit.checkpoint_file)
    for path in sorted(config.root.iterdir()) if config.root.is_dir() else ():
        if path.is_file() and path not in found and _is_backup(path):
            found.append(path)
    return [p for p in found if p.is_file()]


def _is_backup(path: Path) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(BACKUP_MAGIC)) == BACKUP_MAGIC
    except OSError:
        return False


def _describe(plan: SchemaPlan) -> str:
    return (
        f"{len(plan.create_tables)} tables, {len(plan.add_columns)} columns, "
        f"{len(plan.add_indexes)} indexes to create"
    )


@click.command()
@pass_state
def doctor(state: CliState) -> None:
    """Check the deployment, from its configuration to settings naming outside hosts."""
    doc = Doctor(state)
    failed = warned = 0
    for name, check in doc.checks():
        try:
            result = check()
        except QiaoError as exc:
            result = fail(exc.message)
        if result.status == "ok":
            doc.passed.add(name)
        failed += result.status == "FAIL"
        warned += result.status == "warn"
        click.echo(f"{result.status:<4}  {name:<10}  {result.found}")
        if result.fix:
            click.echo(f"{'':<4}  {'':<10}  fix: {result.fix}")
    if failed:
        raise click.ClickException(f"{failed} check{'s' if failed > 1 else ''} failed")
    click.echo("The deployment is healthy" + (" (see the warnings above)." if warned else "."))


COMMANDS: list[click.Command] = [doctor]

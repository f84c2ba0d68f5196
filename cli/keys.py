"""``qiao keys``: key status, KEK / data-key / index-key rotation, retiring, encrypting fields.

``status`` reads only. ``rotate`` adds a KEK version to the key file and
re-wraps every stored key; ``rotate --data`` re-seals stored values under new
data keys in batches, online, and may be run again after a crash; ``rotate
--index`` does the same for blind indexes under new index keys; ``retire``
deletes an old data or index key once nothing uses it. ``encrypt-field`` makes
a standard field encrypted (adding it to ``[encryption] fields``) and seals its
stored values online. docs/encryption.md describes the lifecycle.
"""

from __future__ import annotations

import time

import click
from sqlalchemy import inspect

from qiao.cli.progress import progress
from qiao.cli.settings import SettingsFile
from qiao.cli.state import CliState, pass_state
from qiao.core.customisation.changes import MetadataChanges
from qiao.core.encryption import KeySettings
from qiao.core.encryption.conversion import encrypt_values, plaintext_left
from qiao.core.encryption.declared import TABLE, parse_name
from qiao.core.encryption.fields import index_column
from qiao.core.encryption.keystore import KEYS_TTL
from qiao.core.encryption.rotation import (
    BATCH,
    key_usage,
    require_file_provider,
    retire,
    rotate_data,
    rotate_index,
    rotate_kek,
)
from qiao.core.records.context import Actor


@click.group("keys")
def keys() -> None:
    """Encryption keys of encrypted fields (docs/encryption.md)."""


@keys.command("status")
@pass_state
def status(state: CliState) -> None:
    """List the KEK and every data and blind-index key, with the values each seals."""
    runtime = state.runtime()
    encryption = runtime.records.encryption
    catalog = runtime.current()
    click.echo(f"key-encryption key: {encryption.keys.provider.kek_id}")
    usage = key_usage(encryption, catalog)
    with runtime.db.read() as conn:
        infos = encryption.keys.status(conn)
    if not infos:
        click.echo("no data keys yet (they are made when the first encrypted value is written)")
    for info in infos:
        verb = "values" if info.purpose == "data" else "indexes"
        uses = f"{usage.get(info.key_id, 0)} {verb}"
        click.echo(
            f"{info.key_id:<24} {info.entity:<20} {info.purpose:<6} {info.state:<9} "
            f"wrapped by {info.kek_id:<10} sealed {info.sealed}/{info.limit}  {uses}"
        )
    if usage.get("plaintext"):
        click.echo(
            f"{usage['plaintext']} values of encrypted fields are not sealed yet: "
            "run 'qiao keys rotate --data'"
        )


@keys.command("rotate")
@click.option("--data", is_flag=True, help="Re-seal stored values under new data keys.")
@click.option("--index", is_flag=True, help="Recompute blind indexes under new index keys.")
@click.option("--batch", default=BATCH, show_default=True, help="Rows per transaction.")
@click.option(
    "--settle",
    default=KEYS_TTL,
    show_default=True,
    type=click.FloatRange(min=0),
    help="With --data or --index: seconds to wait for running processes to pick up the new "
    "keys before re-sealing or re-indexing (0 when no other process uses the database).",
)
@pass_state
def rotate(state: CliState, data: bool, index: bool, batch: int, settle: float) -> None:
    """Make a new KEK version and re-wrap the keys (--data: new data keys; --index: new
    blind-index keys)."""
    if data and index:
        raise click.UsageError("rotate data keys and index keys one at a time")
    runtime = state.runtime()
    encryption = runtime.records.encryption
    if not (data or index):
        key_file = require_file_provider(KeySettings.of(state.config()).file)
        kek_id, count = rotate_kek(encryption, key_file)
        click.echo(f"new key-encryption key {kek_id}; re-wrapped {count} keys")
        click.echo(
            f"running processes take up {kek_id} within {KEYS_TTL:g} s; older KEK versions "
            "stay in the key file"
        )
        return
    catalog = runtime.current()
    with progress("re-sealing values" if data else "recomputing blind indexes") as steps:

        def advance(entity: str, done: int, total: int) -> None:
            steps.start(f"{entity}: {done}/{total} rows")
            steps.done()

        if data:
            done = rotate_data(encryption, catalog, batch=batch, progress=advance, settle=settle)
        else:
            done = rotate_index(encryption, catalog, batch=batch, progress=advance, settle=settle)
    if not done:
        click.echo(f"no entity has {'encrypted' if data else 'searchable encrypted'} fields")
    for item in done:
        verb = "re-sealed" if data else "re-indexed"
        click.echo(f"{item.entity}: {item.rows} rows {verb} under {item.key_id}")


@keys.command("retire")
@click.argument("key_id")
@pass_state
def retire_key(state: CliState, key_id: str) -> None:
    """Destroy data or index key KEY_ID; refused while it seals or indexes any value."""
    runtime = state.runtime()
    retire(runtime.records.encryption, runtime.current(), key_id)
    click.echo(f"retired {key_id}")


@keys.command("encrypt-field")
@click.argument("name", metavar="ENTITY.FIELD")
@click.option("--batch", default=BATCH, show_default=True, help="Rows per transaction.")
@click.option(
    "--settle",
    type=click.FloatRange(min=0),
    help="Seconds to wait for running processes to take up the change before the stored "
    "values are sealed (default: [metadata] check_interval + 1; 0 when none runs).",
)
@pass_state
def encrypt_field(state: CliState, name: str, batch: int, settle: float | None) -> None:
    """Encrypt the standard field ENTITY.FIELD (e.g. account.phone) and seal its stored values.

    Online and resumable: run it again after a crash. The change is recorded in the
    metadata history and the audit log.
    """
    entity, field = parse_name(name)
    runtime = state.runtime()
    runtime.records.encryption.keys.provider  # noqa: B018 - no provider stops it here
    catalog = runtime.current()
    declared = catalog.registry.entities.get(entity)
    if declared is None or declared.field(field) is None:
        raise click.BadParameter(f"there is no field {name}", param_hint="ENTITY.FIELD")
    settings = SettingsFile.of(state.config())
    table = settings.data.setdefault(TABLE, {})
    names = list(table.get("fields", []))
    newly_declared = name not in names
    if newly_declared:
        table["fields"] = [*names, name]
        settings.save()
    with runtime.db.read() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns(catalog.table(entity).name)}
    # A field declared anew moves the metadata version on even when its blind-index column
    # is there already (it was declared once, then taken out of the file): processes built
    # their registries from the file without it, and only a new version makes them read it.
    if newly_declared or index_column(declared.field(field)) not in columns:  # type: ignore[arg-type]
        try:
            change = MetadataChanges(runtime).encrypt_field(
                entity, field, actor=Actor.system(), note=f"qiao keys encrypt-field {name}"
            )
        except BaseException:
            table["fields"] = names
            settings.save()
            raise
        click.echo(f"{name} is encrypted from now on (metadata version {change.version})")
        wait = runtime.config.metadata_check_interval + 1 if settle is None else settle
        time.sleep(wait)
    catalog = runtime.current()
    encryption = runtime.records.encryption
    with progress(f"sealing {name}") as steps:

        def advance(done: int, total: int) -> None:
            steps.start(f"{done}/{total} rows")
            steps.done()

        count = encrypt_values(encryption, catalog, entity, field, batch=batch, progress=advance)
        if plaintext_left(encryption, catalog, entity, field):  # written by a slower process
            count += encrypt_values(encryption, catalog, entity, field, batch=batch)
    left = plaintext_left(encryption, catalog, entity, field)
    click.echo(f"{name}: {count} values sealed; {left} left in plaintext")


COMMANDS = (keys,)

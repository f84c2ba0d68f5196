"""``qiao keys``: what uses which key, KEK and data-key rotation, retiring old keys.

``status`` reads only. ``rotate`` adds a KEK version to the key file and
re-wraps every stored key; ``rotate --data`` re-seals stored values under new
data keys in batches, online, and may be run again after a crash; ``retire``
deletes an old data key once nothing uses it. docs/encryption.md describes the
lifecycle.
"""

from __future__ import annotations

import click

from qiao.cli.progress import progress
from qiao.cli.state import CliState, pass_state
from qiao.core.encryption import KeySettings
from qiao.core.encryption.rotation import (
    BATCH,
    key_usage,
    require_file_provider,
    retire,
    rotate_data,
    rotate_kek,
)


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
        uses = "-" if info.purpose != "data" else f"{usage.get(info.key_id, 0)} values"
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
@click.option("--batch", default=BATCH, show_default=True, help="Rows per transaction.")
@pass_state
def rotate(state: CliState, data: bool, batch: int) -> None:
    """Make a new KEK version and re-wrap the data keys (or, with --data, new data keys)."""
    runtime = state.runtime()
    encryption = runtime.records.encryption
    if not data:
        key_file = require_file_provider(KeySettings.of(state.config()).file)
        kek_id, count = rotate_kek(encryption, key_file)
        click.echo(f"new key-encryption key {kek_id}; re-wrapped {count} keys")
        click.echo("older KEK versions stay in the key file until every process has restarted")
        return
    catalog = runtime.current()
    with progress("re-sealing values") as steps:

        def advance(entity: str, done: int, total: int) -> None:
            steps.start(f"{entity}: {done}/{total} rows")
            steps.done()

        done = rotate_data(encryption, catalog, batch=batch, progress=advance)
    if not done:
        click.echo("no entity has encrypted fields")
    for item in done:
        click.echo(f"{item.entity}: {item.rows} rows re-sealed under {item.key_id}")


@keys.command("retire")
@click.argument("key_id")
@pass_state
def retire_key(state: CliState, key_id: str) -> None:
    """Destroy data key KEY_ID; refused while it seals new or stored values."""
    runtime = state.runtime()
    retire(runtime.records.encryption, runtime.current(), key_id)
    click.echo(f"retired {key_id}")


COMMANDS = (keys,)

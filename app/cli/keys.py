"""``dbkeep key:*``: make an encryption key; re-encrypt stored credentials with the first key."""

from __future__ import annotations

from typing import Annotated

import typer

from app.audit.service import Actor
from app.cli import app
from app.cli.common import fail, load_settings, run
from app.db import Database
from app.kit.key_rotation import DEFAULT_BATCH_SIZE, ColumnRotation
from app.kit.keyring import DecryptionError, EncryptionKeyError, generate_key


@app.command("key:generate")
def key_generate() -> None:
    """Print a new random key for DBKEEP_ENCRYPTION_KEY (nothing is stored)."""
    typer.echo(generate_key())


@app.command("key:rotate")
def key_rotate(
    batch_size: Annotated[
        int, typer.Option(min=1, max=100_000, help="Rows re-encrypted per transaction.")
    ] = DEFAULT_BATCH_SIZE,
) -> None:
    """Re-encrypt every stored credential with the first key of DBKEEP_ENCRYPTION_KEY.

    To rotate: put the new key first and keep the old ones after it
    (DBKEEP_ENCRYPTION_KEY=new,old), restart dbkeep, run this, then drop the old keys.
    Safe to run again: values already under the first key are left alone.
    """
    settings = load_settings()
    from app.keys import rotate_encryption_keys  # loads every model: only for this command

    async def rotate() -> list[ColumnRotation]:
        database = Database(settings.database_url)
        try:
            return await rotate_encryption_keys(settings, database.engine, batch_size=batch_size)
        finally:
            await database.dispose()

    try:
        reports = run(rotate())
    except (EncryptionKeyError, DecryptionError) as exc:
        fail(str(exc))
    if not reports:
        typer.echo("No encrypted columns in the metadata store: nothing to re-encrypt.")
    for report in reports:
        line = (
            f"{report.column}: {report.rotated} re-encrypted, "
            f"{report.already_current} already under the first key"
        )
        if report.changed_meanwhile:
            line += f", {report.changed_meanwhile} changed meanwhile (left as written)"
        typer.echo(line)


@app.command("key:recovery-kit")
def key_recovery_kit() -> None:
    """Print dbkeep's age identities (the keys of encrypted backups) with instructions.

    Redirect it to a file kept offline: `dbkeep key:recovery-kit > dbkeep-identity.txt`, then
    `age -d -i dbkeep-identity.txt FILE | zstd -d > dump.sql` restores a backup without dbkeep.
    """
    settings = load_settings()
    from app.bootstrap import open_bootstrap
    from app.encryption.service import EncryptionService

    async def main() -> str:
        async with open_bootstrap(settings, sync=False) as rt, rt.database.sessionmaker() as s:
            return await EncryptionService(s).recovery_kit(actor=Actor.system("cli"))

    try:
        kit = run(main())
    except DecryptionError as exc:
        fail(str(exc))
    typer.echo(kit, nl=False)


@app.command("key:rotate-age")
def key_rotate_age() -> None:
    """Make a new age identity for new encrypted backups; the old ones stay and still decrypt.

    Save the recovery kit again afterwards (`dbkeep key:recovery-kit`): it holds every key.
    """
    settings = load_settings()
    from app.bootstrap import open_bootstrap
    from app.encryption.service import EncryptionService

    async def main() -> str:
        async with open_bootstrap(settings, sync=False) as rt, rt.database.sessionmaker() as s:
            identity = await EncryptionService(s).rotate(actor=Actor.system("cli"))
            return identity.public_key

    public = run(main())
    typer.echo(f"New age identity {public} encrypts new backups; older ones still decrypt.")
    typer.echo("Save the recovery kit again: dbkeep key:recovery-kit > dbkeep-identity.txt")

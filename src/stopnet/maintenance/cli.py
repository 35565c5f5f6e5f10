"""``stopnet backup`` and ``stopnet restore``: the whole installation (database rows and stored files)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from stopnet.core.progress import show_progress

console = Console()
err = Console(stderr=True)


def backup(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Backup file to write, or a directory that gets stopnet-backup-<UTC time>.tar."
        ),
    ],
) -> None:
    """Back up the database (one consistent snapshot) and the stored files into one portable .tar."""
    from stopnet.config import get_settings
    from stopnet.maintenance.backup import BackupError
    from stopnet.maintenance.backup import backup as run_backup

    settings = get_settings()
    try:
        with show_progress("backup", "rows") as progress:
            summary = run_backup(settings.database_url, settings.data_dir, out, progress=progress)
    except BackupError as e:
        err.print(f"backup failed: {e}")
        raise typer.Exit(1) from None
    rows = sum(summary.tables.values())
    console.print(
        f"backup written to {summary.path}: schema {summary.revision}, {len(summary.tables)} tables, "
        f"{rows:,} rows, {summary.files} files ({summary.bytes:,} bytes)"
    )


def restore(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True, help="A backup .tar.")],
) -> None:
    """Restore a backup into an EMPTY database migrated to the backup's revision, and its files under
    data_dir. Every checksum is verified first; a non-empty database or an altered backup is refused."""
    from stopnet.config import get_settings
    from stopnet.maintenance.backup import BackupError
    from stopnet.maintenance.backup import restore as run_restore

    settings = get_settings()
    try:
        with show_progress("restore", "rows") as progress:
            summary = run_restore(settings.database_url, settings.data_dir, file, progress=progress)
    except BackupError as e:
        err.print(f"restore refused: {e}")
        raise typer.Exit(1) from None
    rows = sum(summary.tables.values())
    console.print(
        f"restored {file}: schema {summary.revision}, {rows:,} rows in {len(summary.tables)} tables, "
        f"{summary.files} files; check it with `stopnet audit verify`"
    )

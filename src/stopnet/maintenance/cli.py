"""The maintenance commands of the ``stopnet`` command line (registered by :mod:`stopnet.cli`).

``stopnet backup`` and ``stopnet restore``: the whole installation (database rows and stored files).
``stopnet purge`` and ``stopnet retention``: the personal-data policy of an operation, from the server.
The work is done by :mod:`stopnet.maintenance.service`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from stopnet.core.progress import show_progress

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from stopnet.access.principal import Principal
    from stopnet.db.models import Operation

console = Console()
err = Console(stderr=True)


# ------------------------------------------------------------------------------------------ backup


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
    from stopnet.maintenance.service.backup import BackupError
    from stopnet.maintenance.service.backup import backup as run_backup

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
    from stopnet.maintenance.service.backup import BackupError
    from stopnet.maintenance.service.backup import restore as run_restore

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


# ------------------------------------------------------------------------------------------ data protection


def _acting(session: Session, op: Operation, as_org: str | None) -> Principal:
    """The operator acts for ``as_org``, by default the operation's coordinating unit, as its coordinator."""
    from stopnet.access.service import cli_principal
    from stopnet.db.models import Organisation, Role

    if as_org is None:
        coordinator = session.get(Organisation, op.coordinator_org_id) if op.coordinator_org_id else None
        if coordinator is None:
            raise typer.BadParameter(f"{op.code} has no coordinating unit: give --as", param_hint="--as")
        as_org = coordinator.code
    return cli_principal(session, as_org, Role.COORDINATOR)


def purge(
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would be removed.")] = False,
    as_org: Annotated[
        str | None,
        typer.Option("--as", help="Coordinating organisation to act for (default: the operation's)."),
    ] = None,
    output_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Pseudonymise the consignees of an operation's cases older than its retention policy (audited)."""
    from sqlalchemy import select

    from stopnet.config import get_settings
    from stopnet.core.errors import ServiceError
    from stopnet.core.keys import pseudonym_master
    from stopnet.db.engine import session_scope, sessions_for
    from stopnet.db.models import Operation
    from stopnet.maintenance.service import purge as service

    settings = get_settings()
    sessions = sessions_for(settings)
    try:
        with session_scope(sessions) as session:
            op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
            if op is None:
                err.print(f"[red]no operation {operation}[/red]")
                raise typer.Exit(2)
            principal = _acting(session, op, as_org)
            with show_progress("purge", "cases") as progress:
                report = service.purge_personal_data(
                    session,
                    principal,
                    op,
                    master_key=None if dry_run else pseudonym_master(settings),
                    dry_run=dry_run,
                    progress=progress,
                )
    except ServiceError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        sessions.kw["bind"].dispose()
    if output_json:
        print(report.model_dump_json(indent=2))
        return
    if report.personal_data_retention_days is None:
        console.print(
            f"{report.operation} has no retention policy: nothing to purge (set one: stopnet retention)"
        )
        return
    verb = "would remove" if report.dry_run else "removed"
    console.print(
        f"{report.operation}: retention {report.personal_data_retention_days} days, cases recorded before "
        f"{report.cutoff:%Y-%m-%d %H:%M} UTC: {report.cases_examined} examined; {verb} "
        f"{report.consignee_names_removed} consignee names (pseudonymised), from "
        f"{report.case_versions_scrubbed} case versions and {report.idempotency_records_scrubbed} stored "
        "API answers" + (" (dry run: nothing changed)" if report.dry_run else "; audit entry written")
    )


def retention(
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    days: Annotated[
        int | None, typer.Option("--days", help="Days the consignee's name is kept; omit with --none.")
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="Remove the policy (nothing is purged).")] = False,
    as_org: Annotated[
        str | None,
        typer.Option("--as", help="Coordinating organisation to act for (default: the operation's)."),
    ] = None,
) -> None:
    """Show or set how long an operation keeps the personal data of its cases."""
    from pydantic import ValidationError
    from sqlalchemy import select

    from stopnet.config import get_settings
    from stopnet.core.errors import ServiceError
    from stopnet.core.validation import field_errors
    from stopnet.db.engine import session_scope, sessions_for
    from stopnet.db.models import Operation
    from stopnet.maintenance.schemas import RetentionUpdate
    from stopnet.maintenance.service import purge as service

    if days is not None and none:
        raise typer.BadParameter("give --days or --none, not both")
    sessions = sessions_for(get_settings())
    try:
        with session_scope(sessions) as session:
            op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
            if op is None:
                err.print(f"[red]no operation {operation}[/red]")
                raise typer.Exit(2)
            if days is not None or none:
                update = RetentionUpdate(personal_data_retention_days=days)
                service.set_retention(session, _acting(session, op, as_org), op, update)
            current = op.personal_data_retention_days
    except ValidationError as e:
        err.print(f"[red]--days: {field_errors(e)[0].message}[/red]")
        raise typer.Exit(2) from None
    except ServiceError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        sessions.kw["bind"].dispose()
    policy = f"{current} days" if current is not None else "none (personal data is kept)"
    console.print(f"{operation.upper()}: personal data retention {policy}")

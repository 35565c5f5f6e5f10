"""``stopnet purge`` and ``stopnet retention``: the personal-data policy of an operation, from the server."""

from __future__ import annotations

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
    from stopnet.db.engine import session_scope, sessions_for
    from stopnet.db.models import Operation
    from stopnet.targeting.service import master_key

    from . import purge as service

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
                    master_key=None if dry_run else master_key(settings),
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
    from stopnet.db.engine import session_scope, sessions_for
    from stopnet.db.models import Operation

    from . import purge as service

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
                update = service.RetentionUpdate(personal_data_retention_days=days)
                service.set_retention(session, _acting(session, op, as_org), op, update)
            current = op.personal_data_retention_days
    except ValidationError as e:
        err.print(f"[red]--days: {e.errors()[0]['msg']}[/red]")
        raise typer.Exit(2) from None
    except ServiceError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    finally:
        sessions.kw["bind"].dispose()
    policy = f"{current} days" if current is not None else "none (personal data is kept)"
    console.print(f"{operation.upper()}: personal data retention {policy}")

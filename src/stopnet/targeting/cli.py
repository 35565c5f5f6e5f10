"""Risk-targeting commands on the stored data, mounted under ``stopnet risk``::

    stopnet risk ingest FILE --operation CODE --as FR-CUS         store consignments (CSV / Parquet)
    stopnet risk retrain --operation CODE --out model.zip          retrain from inspection results, register
    stopnet risk propose --operation CODE --as FR-CUS [--today D]  propose rules from rising seizures

Each command owns its transaction (``session_scope``) and acts through the same services as the API:
``--as`` names the administration (as its contact point); ``retrain`` acts as the operation's coordinator.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session, sessionmaker

app = typer.Typer(help="Risk targeting on stored consignments.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _sessions() -> sessionmaker[Session]:
    from stopnet.config import get_settings
    from stopnet.db.engine import sessions_for

    return sessions_for(get_settings())


@app.command("ingest")
def ingest(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, readable=True, help=".csv or .parquet")
    ],
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    as_org: Annotated[str, typer.Option("--as", help="Code of the administration, e.g. FR-CUS.")],
) -> None:
    """Store consignments of a file (sender/consignee names are pseudonymised; known ids are skipped)."""
    import polars as pl

    from stopnet.access.service import cli_principal
    from stopnet.config import get_settings
    from stopnet.core import keys
    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation
    from stopnet.risk.consignments import ConsignmentSchemaError, file_format

    from . import service

    try:
        fmt = file_format(file)
        frame = pl.read_parquet(file) if fmt == "parquet" else pl.read_csv(file, infer_schema=False)
        with session_scope(_sessions()) as session:
            principal = cli_principal(session, as_org)
            op = get_operation(session, principal, operation)
            out = service.ingest_frame(session, principal, op, frame, keys.pseudonym_master(get_settings()))
    except (ServiceError, ConsignmentSchemaError) as e:
        _fail(str(e))
    typer.echo(out.model_dump_json(indent=2))


@app.command("retrain")
def retrain(
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the model file (.zip).")],
    seed: Annotated[int, typer.Option(help="Seed of the training.")] = 0,
    validation_fraction: Annotated[float, typer.Option(help="Share of the latest dates held out.")] = 0.2,
    max_rounds: Annotated[int, typer.Option(help="Most boosting rounds.")] = 120,
    for_org: Annotated[
        str | None,
        typer.Option(
            "--for", help="Administration whose consignments train it, e.g. FR-CUS (default: all, pooled)."
        ),
    ] = None,
    shared: Annotated[
        bool, typer.Option("--shared", help="Show the model and its metrics to every member.")
    ] = False,
) -> None:
    """Retrain an administration's model from its stored consignments with inspection results (or, without
    --for, the operation's pooled model from every administration's), with time-based validation; print the
    validation metrics and register the new version as that administration's (or the pooled) active model.
    A model and its metrics are seen by its administration and the coordinator only, unless --shared."""
    from sqlalchemy import select

    from stopnet.access.service import cli_principal
    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.db.models import Operation, Organisation, Role

    from . import service

    try:
        with session_scope(_sessions()) as session:
            op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
            if op is None or op.coordinator_org_id is None:
                _fail(f"no operation {operation!r} with a coordinating unit")
                return
            coord = session.get_one(Organisation, op.coordinator_org_id)
            principal = cli_principal(session, coord.code, Role.COORDINATOR)
            report = service.retrain(
                session,
                principal,
                op,
                out,
                validation_fraction=validation_fraction,
                seed=seed,
                max_rounds=max_rounds,
                org_code=for_org,
            )
            if shared:
                service.share_model(session, principal, op, report.model_version, True)
    except ServiceError as e:
        _fail(str(e))
        return
    typer.echo(report.model_dump_json(indent=2))


@app.command("propose")
def propose(
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    as_org: Annotated[str, typer.Option("--as", help="Administration the proposals are for, e.g. FR-CUS.")],
    today: Annotated[
        str | None, typer.Option(help="Last day looked at (default: today), YYYY-MM-DD.")
    ] = None,
    recent_days: Annotated[int, typer.Option(help="Days of the recent window.")] = 14,
    baseline_days: Annotated[int, typer.Option(help="Days of the baseline window before it.")] = 56,
) -> None:
    """Propose new or changed rules from rising seizures (route x category) and inspection results."""
    from stopnet.access.service import cli_principal
    from stopnet.core.errors import ServiceError
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation

    from . import service
    from .schemas import ProposeIn

    try:
        day = dt.date.fromisoformat(today) if today else dt.date.today()
    except ValueError:
        _fail(f"--today: not a date: {today!r}")
        return
    try:
        with session_scope(_sessions()) as session:
            principal = cli_principal(session, as_org)
            op = get_operation(session, principal, operation)
            items = service.propose(
                session, principal, op, ProposeIn(recent_days=recent_days, baseline_days=baseline_days), day
            )
            out = [service.proposal_out(session, p).model_dump(mode="json") for p in items]
    except ServiceError as e:
        _fail(str(e))
        return
    typer.echo(json.dumps(out, indent=2))

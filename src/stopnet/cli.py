"""The ``stopnet`` command line (Typer): one entry point for every job.

Each command owns its transaction: it opens a session, calls services (which only flush), and commits.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from sqlalchemy.orm import Session, sessionmaker

from stopnet.config import get_settings

app = typer.Typer(
    help="stopnet: joint customs operations against counterfeit goods sold online.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
import_app = typer.Typer(help="Bulk imports.", no_args_is_help=True)
audit_app = typer.Typer(
    help="The keyed, hash-chained audit trail and its signed checkpoints.", no_args_is_help=True
)
users_app = typer.Typer(help="Users and API tokens.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(import_app, name="import")
app.add_typer(audit_app, name="audit")
app.add_typer(users_app, name="users")

console = Console()
err = Console(stderr=True)


def _session_factory() -> sessionmaker[Session]:
    from stopnet.db.engine import sessions_for

    return sessions_for(get_settings())


@db_app.command("upgrade")
def db_upgrade(revision: str = "head") -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    from stopnet.db.migrate import upgrade

    upgrade(get_settings().database_url, revision)
    console.print(f"database at {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: str) -> None:
    """Revert migrations down to REVISION ('base' empties the schema)."""
    from stopnet.db.migrate import downgrade

    downgrade(get_settings().database_url, revision)
    console.print(f"database at {revision}")


@import_app.command("seizures")
def import_seizures(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, readable=True)],
    operation: Annotated[str, typer.Option("--operation", help="Operation code, e.g. STOP-IV.")],
    as_org: Annotated[str, typer.Option("--as", help="Code of the reporting administration, e.g. FR-CUS.")],
    output_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Import a CSV or XLSX file of seizures for an administration (all or nothing; idempotent)."""
    from stopnet.access.service import cli_principal
    from stopnet.core.errors import InvalidInput, ServiceError
    from stopnet.core.progress import show_progress
    from stopnet.db.engine import session_scope
    from stopnet.operations.service import get_operation
    from stopnet.reporting.importer import import_seizures as run_import

    settings = get_settings()
    data = file.read_bytes()
    try:
        with session_scope(_session_factory()) as session, show_progress("import", "rows") as progress:
            principal = cli_principal(session, as_org)
            op = get_operation(session, principal, operation)
            result = run_import(session, principal, op, file.name, data, settings, progress)
    except InvalidInput as e:
        if output_json:
            print(json.dumps(e.to_dict(), indent=2))
        else:
            err.print(f"[red]{e.summary}[/red]")
            for fe in e.errors:
                err.print(f"  {fe}")
        raise typer.Exit(2) from None
    except ServiceError as e:
        err.print(f"[red]{e.message}[/red]")
        raise typer.Exit(2) from None
    if output_json:
        print(result.model_dump_json(indent=2))
    elif result.already_imported:
        console.print(f"{file.name} was already imported (batch {result.batch_id}); nothing new created")
    else:
        console.print(
            f"imported {result.rows} rows: {result.cases_created} cases, {result.seizures_created} seizures "
            f"created, {result.rows_unchanged} rows already present (batch {result.batch_id})"
        )


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(help="A checkpoint kept elsewhere (a JSON line, e.g. from a daily report); repeatable."),
    ] = None,
) -> None:
    """Check the keyed chain and the signed checkpoints; exit 1 if anything was cut, altered or inserted."""
    from stopnet.audit.checkpoints import Checkpoint
    from stopnet.audit.service import entry_count, verify
    from stopnet.db.engine import session_scope

    extra = [
        Checkpoint.from_json(line)
        for f in checkpoint or []
        for line in f.read_text().splitlines()
        if line.strip()
    ]
    with session_scope(_session_factory()) as session:
        problems = verify(session, extra=extra)
        count = entry_count(session)
    if problems:
        for p in problems:
            err.print(f"[red]entry {p.entry_id}: {p.problem}[/red]")
        raise typer.Exit(1)
    console.print(f"audit chain intact: {count} entries")


@audit_app.command("checkpoint")
def audit_checkpoint() -> None:
    """Sign the trail's head now, keep it in data_dir/audit and print it (to keep a copy elsewhere)."""
    from stopnet.audit.service import checkpoint as sign_head
    from stopnet.db.engine import session_scope

    with session_scope(_session_factory()) as session:
        head = sign_head(session)
    if head is None:
        err.print("the audit trail is empty: nothing to sign")
        raise typer.Exit(1)
    print(head.to_json())


@audit_app.command("public-key")
def audit_public_key() -> None:
    """Print the Ed25519 public key that checks this installation's checkpoints (hex)."""
    from stopnet.core.keys import audit_keys

    print(audit_keys(get_settings()).public_key_hex())


@users_app.command("token")
def create_token(
    org: Annotated[str, typer.Option(help="Organisation code.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
    role: Annotated[str, typer.Option(help="Role the token acts with.")] = "officer",
    scopes: Annotated[
        str, typer.Option(help="Space-separated scopes.")
    ] = "cases:read cases:write import export",
) -> None:
    """Create an API token for a machine client; the secret is printed once."""
    from sqlalchemy import select

    from stopnet.access.service import create_token as make_token
    from stopnet.db.engine import session_scope
    from stopnet.db.models import Organisation, Role

    with session_scope(_session_factory()) as session:
        o = session.scalar(select(Organisation).where(Organisation.code == org.upper()))
        if o is None:
            err.print(f"[red]no organisation {org}[/red]")
            raise typer.Exit(2)
        _, raw = make_token(session, None, o, name, Role(role), frozenset(scopes.split()))
    console.print(raw)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address (default from settings).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default from settings).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
) -> None:
    """Serve the web application and API."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "stopnet.web.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=5,  # open live-feed streams must not hold a shutdown forever
    )


@app.command()
def simulate(
    operation: Annotated[
        str, typer.Option(help="Published operation to reproduce: STOP-IV or STOP-III.")
    ] = "STOP-IV",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same data).")] = 42,
    load: Annotated[
        bool, typer.Option("--load/--dry-run", help="Load into the database, or only print.")
    ] = True,
) -> None:
    """Generate a synthetic operation calibrated to the published figures (and load it into the database)."""
    from stopnet.core.progress import show_progress
    from stopnet.db.engine import session_scope
    from stopnet.simulate import SPECS, seed_operation, simulate_operation

    spec = SPECS.get(operation.upper())
    if spec is None:
        err.print(f"[red]unknown operation {operation}; choose from {', '.join(SPECS)}[/red]")
        raise typer.Exit(2)
    print(json.dumps(simulate_operation(spec, seed).summary(), indent=2))
    if load:
        from stopnet.db.migrate import upgrade

        upgrade(get_settings().database_url)
        with session_scope(_session_factory()) as session, show_progress("simulate", "cases") as progress:
            info = seed_operation(session, spec, seed=seed, progress=progress)
        console.print(f"{spec.code} loaded: {info.cases_created} cases created (seed {seed})")


@app.command()
def demo(
    serve_app: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Start the web app afterwards.")
    ] = True,
    seed: int = 42,
) -> None:
    """Migrate the database, load simulated STOP IV and STOP III with one user per role, and serve the app."""
    from stopnet.core.keys import pseudonym_master
    from stopnet.db.engine import session_scope
    from stopnet.db.migrate import upgrade
    from stopnet.db.models import utcnow
    from stopnet.simulate import seed_demo
    from stopnet.simulate.rights import seed_demo_rights
    from stopnet.simulate.targeting import seed_demo_targeting

    settings = get_settings()
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    upgrade(settings.database_url)
    with session_scope(_session_factory()) as session:
        info = seed_demo(session, seed=seed, reset_passwords=True)
    current = next(iter(info.operations))  # the demo's current operation (seed_demo's first)
    with session_scope(_session_factory()) as session:
        targeting = seed_demo_targeting(
            session,
            operation=current,
            org_code=info.home_org,
            key_master=pseudonym_master(settings),
            model_dir=Path(settings.data_dir) / "models",
            today=utcnow().date(),
            seed=seed,
        )
    with session_scope(_session_factory()) as session:
        rights = seed_demo_rights(
            session,
            operation=current,
            org_code=info.home_org,
            data_dir=Path(settings.data_dir),
            max_bytes=settings.attachment_max_bytes,
        )
    console.print("[bold]Demo sign-ins[/bold] (new passwords each time the demo starts):")
    for u in info.users:
        console.print(
            f"  {u.role.value:<14} {u.email:<40} {u.password or '(unchanged)':<20} {u.org_code}",
            soft_wrap=True,
        )
    base = f"http://{settings.host}:{settings.port}"
    if info.api_token:
        console.print(f"API token of {info.api_token_org} (shown once): {info.api_token}", soft_wrap=True)
        console.print(
            f"  curl -H 'Authorization: Bearer {info.api_token}' {base}/api/v1/operations/STOP-IV/cases",
            soft_wrap=True,
        )
    if targeting.day is not None:
        console.print(
            f"Risk targeting: {targeting.consignments:,} simulated consignments of {info.home_org}, model "
            f"{targeting.model_version}, rule {targeting.rule} active; {targeting.selected} selected for "
            f"inspection on {targeting.day}: {base}/operations/{current}/targeting/"
            f"selection?day={targeting.day}; {targeting.proposals} rules proposed from the operation's trends",
            soft_wrap=True,
        )
    if rights.brands:
        states = ", ".join(f"{n} {state}" for state, n in sorted(rights.requests.items()))
        console.print(
            f"Rights holders: brands {', '.join(rights.brands)} approved, {rights.guides} identification guides "
            f"with {rights.photos} photos, verification requests {states}: {base}/rights/requests",
            soft_wrap=True,
        )
    creds = Path(settings.data_dir) / "demo-credentials.txt"
    creds.write_text("".join(f"{u.role.value}\t{u.email}\t{u.password}\n" for u in info.users if u.password))
    creds.chmod(0o600)
    console.print(f"sign-ins saved in {creds}; open {base}/")
    sys.stdout.flush()
    if serve_app:
        serve(host=None, port=None, workers=1)


def _mount_risk() -> None:
    """``stopnet risk``: one group holding the commands of three Typer apps, each added without a name
    (Typer then lists their commands in the group itself, in this order)."""
    try:
        from stopnet.risk.cli import app as model_app  # learned model: train, evaluate
        from stopnet.risk.cli_ops import app as ops_app  # files: score, simulate-consignments, ...
    except ImportError:  # pragma: no cover - the risk extras are part of the default install
        return
    from stopnet.targeting.cli import app as targeting_app  # stored consignments: ingest, retrain, propose

    risk_app = typer.Typer(help="Risk management: train, evaluate and score.", no_args_is_help=True)
    risk_app.add_typer(model_app)
    risk_app.add_typer(ops_app)
    risk_app.add_typer(targeting_app)
    app.add_typer(risk_app, name="risk")


_mount_risk()


def _mount_reports() -> None:
    from stopnet.reports.cli import export_app, report_app

    app.add_typer(report_app, name="report")
    app.add_typer(export_app, name="export")


_mount_reports()


def _mount_data_protection() -> None:
    from stopnet.maintenance.cli import purge, retention

    app.command("purge")(purge)
    app.command("retention")(retention)


_mount_data_protection()


def _mount_backup() -> None:
    from stopnet.maintenance.cli import backup, restore

    app.command("backup")(backup)
    app.command("restore")(restore)


_mount_backup()

if __name__ == "__main__":  # pragma: no cover
    app()

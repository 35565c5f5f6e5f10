"""Operations-side risk commands (Typer): score files, simulate streams, train, inspect-and-learn.

The lead mounts :data:`app` under ``stopnet risk``::

    stopnet risk score --model M --input F --capacity 1% [--output F] [--rules FILE] [--dask-scheduler ADDR]
    stopnet risk simulate-consignments --n 1000000 --out tmp/consignments.parquet --seed 1
    stopnet risk train-consignments --input tmp/consignments.parquet --out tmp/model.json
    stopnet risk inspect-and-learn --weeks 8
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import typer

from stopnet.core.progress import show_progress

if TYPE_CHECKING:
    from stopnet.risk.rules import Rule

app = typer.Typer(help="Consignment risk operations: scoring, simulation, training.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command("score")
def score(
    model: Annotated[
        Path, typer.Option("--model", "-m", help="Model file (RiskModel or consignment model).")
    ],
    input: Annotated[Path, typer.Option("--input", "-i", help="Consignments, .parquet or .csv.")],
    capacity: Annotated[
        str, typer.Option(help="Inspection capacity: '1%', '500', '2%/day', '50/day/office'.")
    ] = "1%",
    output: Annotated[
        Path | None, typer.Option(help="Output Parquet (default: <input>.scored.parquet).")
    ] = None,
    rules: Annotated[
        Path | None, typer.Option(help="Rules file (.json or .toml) with rules and lists.")
    ] = None,
    dask_scheduler: Annotated[
        str | None, typer.Option("--dask-scheduler", help="Dask scheduler address (tcp://host:8786).")
    ] = None,
    chunk_rows: Annotated[int, typer.Option(help="Rows per chunk.")] = 500_000,
    exploration_share: Annotated[float, typer.Option(help="Share of capacity used to explore.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the exploration sampling.")] = 0,
) -> None:
    """Score a consignment file, select within capacity and write lanes + explanations (Parquet)."""
    from stopnet.risk.consignments import ConsignmentSchemaError
    from stopnet.risk.pipeline import score_file
    from stopnet.risk.rules import RuleError, load_rules

    out = output or input.with_name(input.name.rsplit(".", 1)[0] + ".scored.parquet")
    rule_list: list[Rule] = []
    lists: dict[str, list[Any]] = {}
    try:
        if rules is not None:
            rule_list, lists = load_rules(rules)
        with show_progress("score", "consignments") as progress:
            report = score_file(
                model,
                input,
                out,
                capacity,
                rules=rule_list,
                lists=lists,
                dask_scheduler=dask_scheduler,
                chunk_rows=chunk_rows,
                exploration_share=exploration_share,
                seed=seed,
                progress=progress,
            )
    except (ConsignmentSchemaError, RuleError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    typer.echo(
        f"scored {report.rows:,} consignments in {report.seconds['total']:.1f} s "
        f"({report.rows_per_second:,.0f} rows/s), model {report.model_version}"
    )
    typer.echo(f"capacity {report.capacity}: {report.selected:,} selected; lanes {report.lanes}")
    typer.echo(f"written {out}")


@app.command("simulate-consignments")
def simulate_consignments(
    n: Annotated[int, typer.Option("--n", help="Number of consignments.")],
    out: Annotated[Path, typer.Option("--out", help="Output file, .parquet or .csv.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    start: Annotated[str, typer.Option(help="First declaration date (ISO).")] = "2026-01-05",
    days: Annotated[int, typer.Option(help="Days covered.")] = 28,
    labels: Annotated[str, typer.Option(help="historic | full | none")] = "historic",
    inspection_rate: Annotated[float, typer.Option(help="Share inspected with labels=historic.")] = 0.05,
    truth: Annotated[bool, typer.Option(help="Add truth_* columns (ground truth).")] = False,
) -> None:
    """Generate a simulated consignment stream with planted, drifting fraud patterns."""
    from stopnet.risk.simulation import generate_consignments

    if labels not in ("historic", "full", "none"):
        _fail("--labels must be historic, full or none")
    frame = generate_consignments(
        n,
        start=start,
        days=days,
        seed=seed,
        labels=labels,  # type: ignore[arg-type]
        inspection_rate=inspection_rate,
        truth=truth,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        frame.write_csv(out)
    else:
        frame.write_parquet(out, row_group_size=250_000)
    typer.echo(f"written {frame.height:,} consignments to {out}")


@app.command("train-consignments")
def train_consignments(
    input: Annotated[Path, typer.Option("--input", "-i", help="Labelled consignments (inspected/seized).")],
    out: Annotated[Path, typer.Option("--out", help="Model file to write.")],
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train a risk model on (simulated) consignments with inspection results."""
    from stopnet.risk.consignments import ConsignmentSchemaError, read_consignments
    from stopnet.risk.pipeline import train_consignment_model

    try:
        frame = read_consignments(input, require_labels=True)
        with show_progress("train", "trees") as progress:
            model = train_consignment_model(frame, seed=seed, progress=progress)
    except (ConsignmentSchemaError, ValueError, FileNotFoundError) as exc:
        _fail(str(exc))
        return
    model.save(out)
    typer.echo(f"trained model {model.version} on {frame.height:,} consignments; written {out}")


@app.command("inspect-and-learn")
def inspect_and_learn(
    weeks: Annotated[int, typer.Option(help="Weeks to simulate after the warm-up week.")] = 8,
    capacity: Annotated[str, typer.Option(help="Weekly capacity: share ('2%') or count.")] = "2%",
    n_per_week: Annotated[int, typer.Option(help="Consignments per week.")] = 20_000,
    exploration_share: Annotated[
        float, typer.Option(help="Exploration share of the 'explore' strategy.")
    ] = 0.1,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Weekly inspect-and-learn simulation: precision per week of exploit / explore / random selection."""
    from stopnet.risk.simulation import simulate_inspect_and_learn

    table = simulate_inspect_and_learn(
        weeks=weeks,
        capacity=capacity,
        seed=seed,
        n_per_week=n_per_week,
        exploration_share=exploration_share,
    )
    wide = table.pivot(on="strategy", index="week", values="precision").sort("week")
    strategies = [c for c in wide.columns if c != "week"]
    typer.echo("| week | " + " | ".join(strategies) + " |")
    typer.echo("|---:|" + "---:|" * len(strategies))
    for row in wide.iter_rows(named=True):
        cells = [f"{row[s]:.3f}" if row[s] is not None else "-" for s in strategies]
        typer.echo(f"| {row['week']} | " + " | ".join(cells) + " |")
    sums = table.group_by("strategy").agg(pl.col("seizures").sum(), pl.col("inspections").sum())
    overall = {
        row["strategy"]: row["seizures"] / max(1, row["inspections"]) for row in sums.iter_rows(named=True)
    }
    typer.echo("| all | " + " | ".join(f"{overall[s]:.3f}" for s in strategies) + " |")

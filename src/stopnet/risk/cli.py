"""Command line for the learned risk model (mounted by the main CLI as ``stopnet risk``).

    stopnet risk train --format kcs --train df_syn_train_eng.csv --valid df_syn_valid_eng.csv \
        --out kcs.model.zip --seed 0
    stopnet risk evaluate --model kcs.model.zip --data df_syn_valid_eng.csv

``train`` fits on the ``--train`` file only (early stopping and calibration on its latest dates); the
optional ``--valid`` file is scored for the report and never used for fitting. Both commands print JSON.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import typer

from stopnet.core.progress import show_progress
from stopnet.risk.kcs import KcsFormatError, hs_digits, kcs_spec, read_kcs
from stopnet.risk.metrics import DEFAULT_K_PERCENT, evaluate_scores
from stopnet.risk.model import ModelFormatError, RiskModel

app = typer.Typer(help="Learned risk model: train and evaluate.", no_args_is_help=True)

_FORMATS = ("kcs",)


def _read(fmt: str, path: Path) -> Any:
    if fmt not in _FORMATS:
        raise typer.BadParameter(f"unknown format {fmt!r} (supported: {', '.join(_FORMATS)})")
    try:
        return read_kcs(path)
    except (KcsFormatError, OSError) as exc:
        typer.echo(f"error: cannot read {path}: {exc}", err=True)
        raise typer.Exit(2) from exc


def _model_digits(model: RiskModel) -> int:
    levels = model.spec.hs_levels
    return max(levels) if levels else 6


def evaluate_model(model: RiskModel, frame: Any, label_col: str = "fraud") -> dict[str, Any]:
    """Metrics of ``model`` on a labelled frame (JSON-ready dict, with ``model_version``)."""
    labels = frame[label_col]
    if labels.null_count():
        raise ValueError(f"column {label_col!r} has missing labels")
    out = evaluate_scores(labels.to_numpy(), model.predict_proba(frame), DEFAULT_K_PERCENT)
    out["model_version"] = model.version
    return out


@app.command()
def train(
    fmt: str = typer.Option("kcs", "--format", help="Input format (kcs: KCS HS6 or HS10 CSV)."),
    train_path: Path = typer.Option(..., "--train", exists=True, dir_okay=False, help="Training file."),
    valid_path: Path | None = typer.Option(
        None, "--valid", exists=True, dir_okay=False, help="Reporting only: scored after training."
    ),
    out: Path = typer.Option(..., "--out", dir_okay=False, help="Model file to write (zip)."),
    seed: int = typer.Option(0, "--seed", help="LightGBM seed."),
    name: str | None = typer.Option(None, "--name", help="Model name (default kcs-hs<digits>-lgbm)."),
) -> None:
    """Train a risk model and write it to ONE file; prints a JSON report."""
    frame = _read(fmt, train_path)
    digits = hs_digits(frame)
    started = time.perf_counter()
    with show_progress("train", "trees") as progress:
        model = RiskModel.fit(
            frame,
            kcs_spec(digits),
            "fraud",
            "date",
            seed,
            name=name or f"kcs-hs{digits}-lgbm",
            progress=progress,
        )
    seconds = time.perf_counter() - started
    version = model.save(out)
    report: dict[str, Any] = {
        "model_version": version,
        "model_path": str(out),
        "train_rows": frame.height,
        "train_seconds": round(seconds, 3),
        "hs_digits": digits,
        "training": {k: v for k, v in model.training.items() if k != "params"},
    }
    if valid_path is not None:
        valid = _read(fmt, valid_path)
        if hs_digits(valid) != digits:
            typer.echo("error: --valid has a different HS precision than --train", err=True)
            raise typer.Exit(2)
        report["valid"] = evaluate_model(model, valid)
    typer.echo(json.dumps(report, indent=2, default=str))


@app.command()
def evaluate(
    model_path: Path = typer.Option(..., "--model", exists=True, dir_okay=False, help="Model file."),
    data: Path = typer.Option(..., "--data", exists=True, dir_okay=False, help="Labelled data file."),
    fmt: str = typer.Option("kcs", "--format", help="Input format."),
) -> None:
    """Score a labelled file and print P@k / R@k (k in % of rows), AUC, base rate as JSON."""
    try:
        model = RiskModel.load(model_path)
    except ModelFormatError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    frame = _read(fmt, data)
    if "fraud" not in frame.columns:
        typer.echo("error: the data has no Fraud column", err=True)
        raise typer.Exit(2)
    if hs_digits(frame) != _model_digits(model):
        typer.echo(
            f"error: the model expects HS{_model_digits(model)} codes, the data has HS{hs_digits(frame)}",
            err=True,
        )
        raise typer.Exit(2)
    typer.echo(json.dumps(evaluate_model(model, frame), indent=2))


if __name__ == "__main__":  # pragma: no cover
    app()

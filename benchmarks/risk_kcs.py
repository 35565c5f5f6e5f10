"""KCS benchmark of the learned risk model (stopnet.risk.model) against a plain LightGBM baseline.

Trains on df_syn_train_eng.csv (2020) and reports on df_syn_valid_eng.csv (2021-Q1). The valid file is
used for reporting only: fitting, early stopping and calibration happen inside 2020.

    .venv/bin/python benchmarks/risk_kcs.py --seeds 5
    .venv/bin/python benchmarks/risk_kcs.py --seeds 5 --hs10

Rows printed:

* ``stopnet`` — RiskModel with kcs_spec (risk histories incl. exact goods-profile histories);
* ``stopnet-no-profiles`` — the same without the exact (HS, net mass, item price) profile histories
  (see kcs.kcs_spec), the better guide for data without the synthetic generator's repeated profiles;
* ``baseline`` — plain LightGBM (same parameters, 300 trees) on the raw columns, label-encoded (codes
  from the training file, unseen values missing), no history, measured in the same run.

Output: per-seed lines, a markdown table (mean ± std over seeds) and the ratio stopnet / baseline.
Training time is measured per seed as wall-clock and process CPU seconds of RiskModel.fit (features,
early stopping, calibration, final encoder) with num_threads=2; OMP_WAIT_POLICY defaults to PASSIVE.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Shared machines: let idle OpenMP threads sleep instead of spinning (read when LightGBM is loaded).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import polars as pl

from stopnet.risk.kcs import hs_digits, kcs_spec, read_kcs
from stopnet.risk.metrics import evaluate_scores
from stopnet.risk.model import DEFAULT_PARAMS, RiskModel

# --data-dir, else STOPNET_KCS_DATA, else shared/ beside the checkout, else the workplace's copy
_BESIDE = Path(__file__).resolve().parents[2] / "shared" / "data" / "customs-synthetic"
DATA = Path(
    os.environ.get("STOPNET_KCS_DATA")
    or (_BESIDE if _BESIDE.exists() else "/work/shared/data/customs-synthetic")
)
METRICS = ("precision_at_1", "precision_at_2", "precision_at_5", "precision_at_10", "recall_at_10", "auc")
RAW_CATEGORICAL = (
    "office_id",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "mode_of_transport",
    "declarant_id",
    "importer_id",
    "seller_id",
    "courier_id",
    "hs_code",
    "departure_country",
    "origin_country",
    "tax_type",
    "origin_indicator",
)
RAW_NUMERIC = ("tax_rate", "net_mass", "item_price")


def baseline_matrix(train: pl.DataFrame, other: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Raw columns, label-encoded with codes from ``train`` (unseen -> NaN)."""
    cols_tr, cols_ot = [], []
    for c in RAW_CATEGORICAL:
        values = sorted(v for v in train[c].unique().to_list() if v is not None)
        old, new = values, [float(i) for i in range(len(values))]
        for frame, out in ((train, cols_tr), (other, cols_ot)):
            out.append(frame[c].replace_strict(old, new, default=None, return_dtype=pl.Float64).to_numpy())
    for c in RAW_NUMERIC:
        cols_tr.append(train[c].to_numpy())
        cols_ot.append(other[c].to_numpy())
    names = [*RAW_CATEGORICAL, *RAW_NUMERIC]
    return np.column_stack(cols_tr).astype(float), np.column_stack(cols_ot).astype(float), names


def run_baseline(train: pl.DataFrame, valid: pl.DataFrame, seed: int) -> tuple[dict[str, Any], float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    x_tr, x_va, names = baseline_matrix(train, valid)
    params = {**DEFAULT_PARAMS, "seed": seed}
    booster = lgb.train(params, lgb.Dataset(x_tr, train["fraud"].to_numpy(), feature_name=names), 300)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return evaluate_scores(valid["fraud"].to_numpy(), booster.predict(x_va)), seconds, cpu


def run_model(
    train: pl.DataFrame, valid: pl.DataFrame, seed: int, profiles: bool
) -> tuple[dict[str, Any], float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    model = RiskModel.fit(train, kcs_spec(hs_digits(train), profiles=profiles), "fraud", "date", seed)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    return evaluate_scores(valid["fraud"].to_numpy(), model.predict_proba(valid)), seconds, cpu


def summarise(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    values = [float(r[key]) for r in rows]
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def _label(metric: str) -> str:
    return "AUC" if metric == "auc" else metric.replace("precision_at_", "P@").replace("recall_at_", "R@")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="KCS benchmark of the learned risk model")
    ap.add_argument("--data-dir", type=Path, default=DATA)
    ap.add_argument("--hs10", action="store_true", help="use the HS10 version (hs10-v2022-06-03/)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    args = ap.parse_args(argv)

    folder = args.data_dir / "hs10-v2022-06-03" if args.hs10 else args.data_dir
    train = read_kcs(folder / "df_syn_train_eng.csv")
    valid = read_kcs(folder / "df_syn_valid_eng.csv")
    print(
        f"# KCS benchmark: train {train.height} rows (2020), valid {valid.height} rows (2021-Q1), "
        f"HS{hs_digits(train)}, {args.seeds} seeds, lightgbm {lgb.__version__}, "
        f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"num_threads={DEFAULT_PARAMS['num_threads']}"
    )
    variants: dict[str, bool | None] = {"stopnet": True, "stopnet-no-profiles": False, "baseline": None}
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for seed in range(args.seeds):
        for name, profiles in variants.items():
            if profiles is None:
                metrics, seconds, cpu = run_baseline(train, valid, seed)
            else:
                metrics, seconds, cpu = run_model(train, valid, seed, profiles)
            metrics["train_seconds"], metrics["train_cpu_seconds"] = seconds, cpu
            results[name].append(metrics)
            print(
                f"{name:20s} seed {seed}: P@5 {metrics['precision_at_5']:.4f} "
                f"P@10 {metrics['precision_at_10']:.4f} AUC {metrics['auc']:.4f} "
                f"train {seconds:.1f}s wall / {cpu:.1f}s CPU",
                flush=True,
            )

    print()
    print(f"Valid quarter (2021-Q1, n = {valid.height}), mean ± std over {args.seeds} seeds:")
    print()
    print("| model | " + " | ".join(_label(m) for m in METRICS) + " | train s (wall) | train s (CPU) |")
    print("|---|" + "---:|" * (len(METRICS) + 2))
    for name, rows in results.items():
        cells = [f"{summarise(rows, m)[0]:.3f} ± {summarise(rows, m)[1]:.3f}" for m in METRICS]
        for key in ("train_seconds", "train_cpu_seconds"):
            mean, std = summarise(rows, key)
            cells.append(f"{mean:.1f} ± {std:.1f}")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    for name in ("stopnet", "stopnet-no-profiles"):
        ratios = [
            f"{_label(m)} x{summarise(results[name], m)[0] / summarise(results['baseline'], m)[0]:.2f}"
            for m in ("precision_at_5", "precision_at_10", "auc")
        ]
        print(f"ratio {name} / baseline: " + ", ".join(ratios))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

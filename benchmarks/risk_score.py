"""Benchmark: end-to-end consignment scoring vs bare LightGBM prediction, and single-row latency.

    .venv/bin/python benchmarks/risk_score.py                 # 10,000,000 rows
    .venv/bin/python benchmarks/risk_score.py --rows 1000000  # smaller

1. generates ``--rows`` simulated consignments (Parquet, cached under ``tmp/risk-bench/``, outside git);
2. trains a model on a separate, earlier sample (``--train-rows``);
3. times :func:`stopnet.risk.pipeline.score_file` end to end (read, validate, features, model, rules,
   selection, explanations of selected rows, Parquet write);
4. in the same run, times bare ``booster.predict`` on the same feature matrix (built untimed, per chunk);
5. times :func:`stopnet.risk.pipeline.score_one` on ``--latency-calls`` single consignments.

Targets (issue 5): >= 500,000 rows/s end to end on 2 cores, and >= 0.5 of the bare model rate.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

# stopnet first, as the `stopnet` command does: it sets polars' allocator options (stopnet/__init__.py),
# which take effect only if polars is not loaded yet
import stopnet  # noqa: E402, F401, I001

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from stopnet.risk.consignments import coerce_consignments  # noqa: E402
from stopnet.risk.pipeline import (  # noqa: E402
    ConsignmentScorer,
    _read_chunk,
    as_scorer,
    load_model,
    plan_chunks,
    prepare_consignments,
    score_file,
    score_one,
    train_consignment_model,
)
from stopnet.risk.rules import Rule  # noqa: E402
from stopnet.risk.simulation import generate_consignments  # noqa: E402

BENCH_RULES = [
    Rule(
        "R-SNEAKER-EXP",
        "Sneakers / samples via express from CN-HK, low value per kg",
        'channel == "EXPRESS" and origin_country in ("CN", "HK") and declared_value / weight_kg < 30 '
        'and description ~ "sneaker|shoe|sample|gift"',
        weight=2.0,
    ),
    Rule(
        "R-PENS-TR",
        "Pens posted from CN via TR",
        'origin_country == "CN" and departure_country == "TR" and description ~ "pen"',
        weight=3.0,
    ),
    Rule("R-WATCH-LOW", "Watches under 20", 'description ~ "watch" and declared_value < 20', weight=0.5),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--train-rows", type=int, default=300_000)
    ap.add_argument("--chunk-rows", type=int, default=1_000_000)
    ap.add_argument("--capacity", default="1%")
    ap.add_argument("--latency-calls", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tmp", type=Path, default=ROOT / "tmp" / "risk-bench")
    ap.add_argument("--no-rules", action="store_true")
    args = ap.parse_args()

    args.tmp.mkdir(parents=True, exist_ok=True)
    data = args.tmp / f"consignments-{args.rows}.parquet"
    if not data.exists():
        t = time.perf_counter()
        frame = generate_consignments(args.rows, start="2026-03-02", days=28, seed=11, labels="none")
        gen_s = time.perf_counter() - t
        frame.write_parquet(data, row_group_size=250_000, compression="zstd")
        del frame
        print(f"generated {args.rows:,} rows in {gen_s:.1f} s -> {data}")
    else:
        print(f"using cached {data}")

    t = time.perf_counter()
    train = generate_consignments(args.train_rows, start="2026-01-05", days=56, seed=7, inspection_rate=0.2)
    model = train_consignment_model(train, seed=0, params={"num_threads": args.threads})
    train_s = time.perf_counter() - t
    model_path = args.tmp / "model.zip"
    model.save(model_path)
    model = load_model(model_path)
    scorer = as_scorer(model, args.threads)
    print(
        f"trained {model.version} on {args.train_rows:,} rows in {train_s:.1f} s "
        f"({model.booster.num_trees()} trees, holdout AUC {model.training.get('holdout_auc', float('nan')):.3f})"
    )

    rules = [] if args.no_rules else BENCH_RULES
    out = args.tmp / "scored.parquet"
    # end to end
    t = time.perf_counter()
    c = time.process_time()
    report = score_file(
        model_path, data, out, args.capacity, rules=rules, chunk_rows=args.chunk_rows, model=model
    )
    e2e_s = time.perf_counter() - t
    e2e_cpu = time.process_time() - c
    e2e_rate = report.rows / e2e_s

    # bare booster.predict on the same feature matrix (features built untimed, chunk by chunk)
    booster = model.booster
    predict_s = 0.0
    predict_cpu = 0.0
    feature_s = 0.0
    n_features = 0
    columns = [
        "consignment_id",
        "declared_at",
        "arrival_date",
        "channel",
        "carrier",
        "sender_id",
        "consignee_id",
        "origin_country",
        "departure_country",
        "destination_country",
        "office",
        "description",
        "hs_code",
        "declared_value",
        "currency",
        "weight_kg",
        "quantity",
        "marketplace",
    ]
    for off, length in plan_chunks(data, args.chunk_rows):
        tf = time.perf_counter()
        chunk = coerce_consignments(
            _read_chunk(str(data), "parquet", off, length, columns), check_values=False
        )
        x = scorer.features(prepare_consignments(chunk))
        feature_s += time.perf_counter() - tf
        n_features = x.shape[1]
        tp = time.perf_counter()
        cp = time.process_time()
        booster.predict(x, num_threads=args.threads)
        predict_s += time.perf_counter() - tp
        predict_cpu += time.process_time() - cp
        del x, chunk
    bare_rate = report.rows / predict_s

    # single-consignment latency
    dicts = pl.scan_parquet(data).head(args.latency_calls).select(columns).collect().to_dicts()
    one = ConsignmentScorer(model, rules)  # what the API holds: model wrapped, rules compiled once
    one(dicts[0])  # warm-up
    assert abs(one(dicts[0])["score"] - score_one(dicts[0], model, rules=rules)["score"]) == 0.0
    lat = np.empty(len(dicts))
    for i, d in enumerate(dicts):
        t1 = time.perf_counter()
        one(d)
        lat[i] = time.perf_counter() - t1
    p50, p95, p99 = (float(np.percentile(lat, q)) * 1000 for q in (50, 95, 99))

    ratio = e2e_rate / bare_rate
    cpu = os.cpu_count()
    print()
    print(
        f"machine: {platform.machine()} {cpu} CPU(s), python {platform.python_version()}, "
        f"polars {pl.__version__}, threads={args.threads}, load average {os.getloadavg()[0]:.2f}"
    )
    print(
        f"model: {model.version}, {n_features} features; capacity {report.capacity}; "
        f"rules: {len(rules)}; chunks: {report.chunks}"
    )
    print()
    print("| measure | value |")
    print("|---|---:|")
    print(f"| rows | {report.rows:,} |")
    print(f"| end to end `score_file` | {e2e_s:.2f} s = {e2e_rate:,.0f} rows/s |")
    print(f"| - CPU time (all threads) / cores used on average | {e2e_cpu:.2f} s / {e2e_cpu / e2e_s:.2f} |")
    for phase in ("score", "select", "write"):
        print(f"| - of which {phase} | {report.seconds.get(phase, 0.0):.2f} s |")
    print(f"| bare `booster.predict` (same features) | {predict_s:.2f} s = {bare_rate:,.0f} rows/s |")
    print(f"| - CPU time / cores used on average | {predict_cpu:.2f} s / {predict_cpu / predict_s:.2f} |")
    print(f"| ratio end to end / bare (wall clock) | {ratio:.2f} |")
    print(f"| ratio end to end / bare (CPU time) | {predict_cpu / e2e_cpu:.2f} |")
    print(
        f"| CPU-time throughput x {args.threads} cores (what {args.threads} idle cores would give at best) | "
        f"{report.rows / e2e_cpu * args.threads:,.0f} rows/s end to end, "
        f"{report.rows / predict_cpu * args.threads:,.0f} rows/s bare |"
    )
    print(f"| (feature building, untimed in bare) | {feature_s:.2f} s |")
    print(
        f"| `score_one` latency p50 / p95 / p99 ({len(dicts)} calls) | {p50:.2f} / {p95:.2f} / {p99:.2f} ms |"
    )
    print(f"| selected (RED) | {report.selected:,} |")
    print()
    ok_rate = e2e_rate >= 500_000
    ok_ratio = ratio >= 0.5
    print(f"target >= 500,000 rows/s end to end: {'MET' if ok_rate else 'NOT MET'}")
    print(f"target >= 0.5 of bare model rate: {'MET' if ok_ratio else 'NOT MET'}")


if __name__ == "__main__":
    main()

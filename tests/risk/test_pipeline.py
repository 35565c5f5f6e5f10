"""End-to-end consignment scoring, single-consignment scoring, inspect-and-learn and the ops CLI."""

from __future__ import annotations

import json
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from stopnet.risk.cli_ops import app
from stopnet.risk.consignments import ConsignmentSchemaError
from stopnet.risk.features import to_numpy
from stopnet.risk.pipeline import (
    OUTPUT_SCHEMA,
    CandidateFloors,
    ChunkTask,
    ConsignmentScorer,
    _group_frame,
    _largest_group_capacity,
    _RunningTopK,
    _sparse_text,
    as_scorer,
    load_model,
    plan_chunks,
    prepare_consignments,
    score_chunk,
    score_file,
    score_one,
    train_consignment_model,
)
from stopnet.risk.rules import Rule, RuleError, evaluate_rules
from stopnet.risk.selection import LANES, REASONS, Capacity, group_codes, select_for_inspection
from stopnet.risk.simulation import generate_consignments, simulate_inspect_and_learn

RULES = [
    Rule(
        "R-SNEAKER",
        "sneakers / gifts via SwiftXpress",
        'carrier == "SwiftXpress" and description ~ "sneaker|shoe|gift|sample"',
        weight=2.0,
    ),
    Rule("R-WATCH", "watch list", "sender_id in @watch", weight=5.0),
    Rule("R-LOW", "light rule", "declared_value < 3", weight=0.2),
]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pipeline")


@pytest.fixture(scope="module")
def model_path(workdir: Path) -> Path:
    train = generate_consignments(60_000, start="2026-01-05", days=28, seed=1, inspection_rate=0.3)
    model = train_consignment_model(train, seed=0)
    path = workdir / "model.zip"
    model.save(path)
    return path


@pytest.fixture(scope="module")
def consignments(workdir: Path) -> tuple[pl.DataFrame, Path]:
    frame = generate_consignments(20_000, start="2026-02-02", days=7, seed=2, truth=True)
    path = workdir / "input.parquet"
    frame.drop("truth_fraud", "truth_commodity_code", "truth_pattern").write_parquet(
        path, row_group_size=3000
    )
    return frame, path


def _lists(frame: pl.DataFrame) -> dict[str, list[str]]:
    return {"watch": frame["sender_id"].unique().sort().head(3).to_list()}


def test_score_file_end_to_end(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    frame, path = consignments
    out_path = workdir / "out.parquet"
    lists = _lists(frame)
    report = score_file(model_path, path, out_path, "1%", rules=RULES, lists=lists, chunk_rows=6000, seed=3)
    out = pl.read_parquet(out_path)
    assert report.rows == out.height == 20_000
    assert report.chunks == len(plan_chunks(path, 6000)) > 1
    assert dict(out.schema) == OUTPUT_SCHEMA
    # model_version and selection_reason are written from their codes as dictionaries, but the
    # file's Arrow schema says text, so every Arrow reader (not only polars) gets strings back
    arrow = pq.read_schema(out_path)
    for name in ("consignment_id", "model_version", "selection_reason", "explanation"):
        assert arrow.field(name).type == pa.large_string(), name
    assert pa.types.is_dictionary(arrow.field("lane").type)
    assert pq.read_table(out_path).column("selection_reason").to_pylist() == out["selection_reason"].to_list()
    assert out["consignment_id"].to_list() == frame["consignment_id"].to_list()  # input order kept
    # capacity 1 % of 20,000, never more
    assert (out["lane"] == "RED").sum() == report.selected == 200
    assert report.lanes["RED"] == 200 and sum(report.lanes.values()) == 20_000
    # scores are the model's probabilities
    model = load_model(model_path)
    expected = model.predict_proba(prepare_consignments(frame))
    assert np.allclose(out["score"].to_numpy(), expected, rtol=0, atol=1e-12)
    assert (out["model_version"] == model.version).all()
    # rule hits are those of evaluate_rules; heavy rules first
    hits = evaluate_rules(frame, RULES, lists)
    assert out["rule_hits"].to_list() == hits.hit_lists()
    assert np.allclose(out["rule_score"].to_numpy(), hits.weighted())
    watched = out.filter(pl.col("rule_hits").list.contains("R-WATCH"))
    assert watched.height > 0 and (watched["lane"] == "RED").all()
    assert (watched["selection_reason"] == "RULE").all()
    # explanations only for selected rows
    red = out.filter(pl.col("lane") == "RED")
    assert red["explanation"].null_count() == 0
    assert red["explanation"].str.contains(r"\(\+|\(-").all()
    assert out.filter(pl.col("lane") != "RED")["explanation"].null_count() == 19_800
    # AMBER = rule hit or high score but not selected; GREEN = the rest
    amber = out.filter(pl.col("lane") == "AMBER")
    assert ((amber["rule_hits"].list.len() > 0) | (amber["score"] >= 0.5)).all()
    green = out.filter(pl.col("lane") == "GREEN")
    assert (green["rule_hits"].list.len() == 0).all() and (green["score"] < 0.5).all()
    assert set(red["selection_reason"].unique().to_list()) <= {"RULE", "SCORE", "EXPLORE"}
    assert (red["selection_reason"] == "EXPLORE").sum() == 20  # 10 % exploration share
    # selection beats chance on the planted data
    truth = frame["truth_fraud"].to_numpy()
    selected = out["lane"].to_numpy() == "RED"
    assert truth[selected].mean() > 5 * truth.mean()


def test_chunks_scored_side_by_side_give_the_same_file_as_one_by_one(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    # two threads score (and write) chunks side by side, each prediction on one thread; one thread does
    # it chunk after chunk: the same scores, lanes, reasons and explanations either way
    frame, path = consignments
    lists = _lists(frame)
    threaded, sequential = workdir / "threaded.parquet", workdir / "sequential.parquet"
    a = score_file(model_path, path, threaded, "3%", rules=RULES, lists=lists, chunk_rows=3000, num_threads=2)
    b = score_file(
        model_path, path, sequential, "3%", rules=RULES, lists=lists, chunk_rows=3000, num_threads=1
    )
    assert a.chunks == b.chunks > 2
    out = pl.read_parquet(threaded)
    assert out.equals(pl.read_parquet(sequential))
    assert out["explanation"].is_not_null().sum() == a.selected > 0


def test_chunking_csv_and_parquet_give_the_same_output(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    frame, path = consignments
    lists = _lists(frame)
    one = workdir / "one.parquet"
    many = workdir / "many.parquet"
    from_csv = workdir / "csv.parquet"
    score_file(model_path, path, one, "2%/day", rules=RULES, lists=lists, chunk_rows=1_000_000)
    score_file(model_path, path, many, "2%/day", rules=RULES, lists=lists, chunk_rows=2500)
    csv = workdir / "input.csv"
    frame.drop("truth_fraud", "truth_commodity_code", "truth_pattern").write_csv(csv)
    score_file(model_path, csv, from_csv, "2%/day", rules=RULES, lists=lists, chunk_rows=7000)
    a, b, c = pl.read_parquet(one), pl.read_parquet(many), pl.read_parquet(from_csv)
    assert a.equals(b)
    assert a.equals(c)
    # per-day capacity: floor(2 % of each day's rows), counted on the arrival day
    days = frame.select(pl.col("arrival_date").alias("day")).with_columns(a["lane"])
    per_day = days.group_by("day").agg(pl.len().alias("n"), (pl.col("lane") == "RED").sum().alias("red"))
    for row in per_day.iter_rows(named=True):
        assert row["red"] == int(row["n"] * 0.02 + 1e-9)


def test_per_office_capacity_and_kept_columns(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    _, path = consignments
    out_path = workdir / "office.parquet"
    score_file(
        model_path, path, out_path, "15/office", chunk_rows=5000, keep_columns=["office", "origin_country"]
    )
    out = pl.read_parquet(out_path)
    assert out.columns[-2:] == ["office", "origin_country"]
    per_office = out.group_by("office").agg((pl.col("lane") == "RED").sum().alias("red"), pl.len())
    assert per_office["red"].to_list() == np.minimum(15, per_office["len"].to_numpy()).tolist()


def test_errors_before_scoring(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    frame, path = consignments
    with pytest.raises(RuleError, match="unknown field 'colour'"):
        score_file(model_path, path, workdir / "x.parquet", "1%", rules=[Rule("R", "x", "colour == 'red'")])
    with pytest.raises(RuleError, match="unknown list @nope"):
        score_file(
            model_path, path, workdir / "x.parquet", "1%", rules=[Rule("R", "x", "sender_id in @nope")]
        )
    broken = workdir / "broken.parquet"
    frame.drop("carrier").write_parquet(broken)
    with pytest.raises(ConsignmentSchemaError) as info:
        score_file(model_path, broken, workdir / "x.parquet", "1%")
    assert info.value.column == "carrier"
    with pytest.raises(ValueError, match="invalid capacity"):
        score_file(model_path, path, workdir / "x.parquet", "lots")
    assert not (workdir / "x.parquet").exists()


def test_score_one_matches_batch(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    frame, path = consignments
    out_path = workdir / "batch.parquet"
    lists = _lists(frame)
    score_file(model_path, path, out_path, "1%", rules=RULES, lists=lists)
    batch = pl.read_parquet(out_path)
    model = load_model(model_path)
    scorer = ConsignmentScorer(model, RULES, lists, explain_top_k=3)
    records = frame.drop(
        "inspected", "seized", "commodity_code", "truth_fraud", "truth_commodity_code", "truth_pattern"
    )
    for i in (0, 17, 4242):
        record = records.row(i, named=True)
        record["declared_at"] = record["declared_at"].isoformat()  # as from JSON
        record["arrival_date"] = record["arrival_date"].isoformat()
        got = scorer(record)
        assert got["consignment_id"] == batch["consignment_id"][i]
        assert got["score"] == pytest.approx(batch["score"][i], abs=1e-12)
        assert got["rule_hits"] == batch["rule_hits"][i].to_list()
        assert got["lane"] in ("GREEN", "AMBER")
        assert got["explanation"].count(";") == 2
        assert score_one(record, model, rules=RULES, lists=lists)["score"] == got["score"]
    with pytest.raises(ConsignmentSchemaError, match="unknown field"):
        scorer({**records.row(0, named=True), "sender_name": "John Smith"})


def test_inspect_and_learn_exploit_beats_random() -> None:
    table = simulate_inspect_and_learn(weeks=4, capacity=0.02, n_per_week=15_000, seed=0)
    assert table.columns == ["week", "strategy", "inspections", "seizures", "precision", "frauds", "recall"]
    assert table.height == 4 * 3
    assert sorted(set(table["week"].to_list())) == [1, 2, 3, 4]
    assert set(table["strategy"].to_list()) == {"exploit", "explore", "random"}
    # 2 % of the week's consignments (about 15,000 a week), the same for every strategy
    assert table["inspections"].is_between(270, 330).all()
    assert (table.group_by("week").agg(pl.col("inspections").n_unique())["inspections"] == 1).all()
    assert ((table["precision"] >= 0) & (table["precision"] <= 1)).all()
    totals = table.group_by("strategy").agg(
        (pl.col("seizures").sum() / pl.col("inspections").sum()).alias("precision")
    )
    prec = dict(zip(totals["strategy"], totals["precision"], strict=True))
    assert prec["exploit"] > 3 * prec["random"]
    assert prec["explore"] > 2 * prec["random"]
    with pytest.raises(ValueError, match="unknown strategy"):
        simulate_inspect_and_learn(weeks=1, strategies=("greedy",))


def test_ops_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "sim.parquet"
    res = runner.invoke(app, ["simulate-consignments", "--n", "40000", "--out", str(data), "--seed", "3",
                              "--inspection-rate", "0.3"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert pl.read_parquet(data).height == 40_000
    model = tmp_path / "m.zip"
    res = runner.invoke(app, ["train-consignments", "--input", str(data), "--out", str(model)])
    assert res.exit_code == 0, res.output
    assert "trained model consignment-lgbm-" in res.output
    assert "trees (100%)" in res.stderr  # progress, plain lines when not on a terminal
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [r.to_dict() for r in RULES[:1]]}))
    out = tmp_path / "scored.parquet"
    res = runner.invoke(app, ["score", "--model", str(model), "--input", str(data), "--capacity", "1%",
                              "--output", str(out), "--rules", str(rules)])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "400 selected" in res.output
    assert "score: 40,000 / 40,000 consignments (100%)" in res.stderr
    assert (pl.read_parquet(out)["lane"] == "RED").sum() == 400
    res = runner.invoke(app, ["score", "--model", str(model), "--input", str(data), "--capacity", "lots"])
    assert res.exit_code == 2 and "invalid capacity" in res.output
    res = runner.invoke(app, ["inspect-and-learn", "--weeks", "2", "--n-per-week", "8000"])
    assert res.exit_code == 0, res.output
    assert "| week | exploit | explore | random |" in res.output
    assert res.output.count("\n| ") >= 3


@pytest.mark.parametrize(
    "capacity",
    [
        "2%",
        "40",
        "3%/day",
        "2/day/office",
        # a share per office with one office's count far above the share (the candidates' bound)
        Capacity(share=0.002, per=("office",), office_counts={"FRCDG01": 300}),
    ],
)
def test_score_file_selects_what_ranking_every_row_selects(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path, capacity: str | Capacity
) -> None:
    # score_file ranks only each chunk's candidates: the lanes and reasons must be those of
    # select_for_inspection over every row (scores and rule hits from the same file)
    frame, path = consignments
    lists = _lists(frame)
    out_path = workdir / "ranked.parquet"
    score_file(model_path, path, out_path, capacity, rules=RULES, lists=lists, chunk_rows=3000, seed=9)
    out = pl.read_parquet(out_path)
    cap = Capacity.parse(capacity)
    hits = evaluate_rules(frame, RULES, lists)
    sel = select_for_inspection(
        out["score"].to_numpy(),
        cap,
        rule_hits=hits.matrix,
        rule_weights=[r.weight for r in RULES],
        groups=_group_frame(frame, cap.per) if cap.per else None,
        seed=9,
    )
    assert sel.n_selected > 0
    assert out["lane"].cast(pl.String).to_list() == [LANES[i] for i in sel.lane]
    assert out["selection_reason"].to_list() == [REASONS[i] for i in sel.reason]


@pytest.mark.parametrize(
    "capacity",
    ["1%", "25", "3%/day", "0.5%/office", "2%/day/office", "4/day/office",
     Capacity(share=0.002, per=("office",), office_counts={"FRCDG01": 300})],
)  # fmt: skip
def test_candidate_bound_is_the_largest_group_capacity(
    consignments: tuple[pl.DataFrame, Path], capacity: str | Capacity
) -> None:
    # the bound pass 1 keeps per group: exactly the largest capacity of any group of the file, so
    # that a share per day or office keeps a few rows of each chunk, not the share of the whole file
    frame, path = consignments
    cap = Capacity.parse(capacity)
    chunks = plan_chunks(path, 3000)
    columns = ("declared_at", "arrival_date", "office")
    bound = _largest_group_capacity(cap, str(path), "parquet", chunks, columns)
    if cap.per:
        keys = _group_frame(frame, cap.per)
        assert keys is not None
        codes, groups = group_codes(keys, frame.height)
        offices = [str(g[cap.per.index("office")]) for g in groups] if "office" in cap.per else None
        expected = int(cap.limits(np.bincount(codes), offices).max())
    else:
        expected = int(cap.limits(np.array([frame.height])).max())
    assert bound == expected
    if cap.share is not None and cap.per and not cap.office_counts:
        assert bound < cap.share * frame.height / 2  # far below a share of the whole file


def test_a_share_per_day_keeps_few_candidates(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    # 3 % of each of a dozen arrival days: pass 1 keeps the features of a few rows per chunk, and pass 2
    # explains the selected rows from them instead of reading and encoding every chunk again
    frame, path = consignments
    out_path = workdir / "per-day.parquet"
    report = score_file(
        model_path, path, out_path, "3%/day", rules=RULES, lists=_lists(frame), chunk_rows=10_000
    )
    assert report.chunks == 2 and report.selected > 0
    assert report.reread_chunks == 0
    assert pl.read_parquet(out_path).filter(pl.col("lane") == "RED")["explanation"].null_count() == 0


def test_running_top_k_floor_is_the_kth_largest_offered() -> None:
    rng = np.random.default_rng(3)
    running = _RunningTopK(50)
    offered: list[float] = []
    assert running.floor() == -np.inf
    for size in (20, 20, 5, 300, 1, 80):
        values = np.round(rng.normal(size=size), 1)  # ties
        running.offer(values)
        offered += values.tolist()
        expected = sorted(offered, reverse=True)[49] if len(offered) >= 50 else -np.inf
        assert running.floor() == expected
    assert _RunningTopK(0).floor() == -np.inf


def test_running_floors_keep_fewer_candidates_and_every_selected_row(
    model_path: Path, consignments: tuple[pl.DataFrame, Path], workdir: Path
) -> None:
    # pass 1 with the floors that score_file shares between its local chunk threads (whole-file
    # capacity): each chunk keeps a subset of the candidates it keeps alone, and still every row the
    # selection chooses
    frame, path = consignments
    lists = _lists(frame)
    cap = Capacity.parse("2%")
    chunks = plan_chunks(path, 3000)
    columns = tuple(pq.ParquetFile(path).schema_arrow.names)
    bound = _largest_group_capacity(cap, str(path), "parquet", chunks, columns)
    tasks = [
        ChunkTask(
            i, str(path), "parquet", off, n, columns, tuple(RULES), lists, candidate_bound=bound, seed=4
        )
        for i, (off, n) in enumerate(chunks)
    ]
    model = as_scorer(load_model(model_path), 1)
    floors = CandidateFloors.of(bound)
    shared = [score_chunk(t, model, floors) for t in tasks]
    alone = [score_chunk(t, model) for t in tasks]
    for a, b in zip(shared, alone, strict=True):
        assert np.isin(a.candidates, b.candidates).all()
        assert np.array_equal(a.scores, b.scores)
    n_shared = sum(r.candidates.shape[0] for r in shared)
    n_alone = sum(r.candidates.shape[0] for r in alone)
    assert n_shared < 0.6 * n_alone, (n_shared, n_alone)
    out_path = workdir / "floors.parquet"
    report = score_file(model_path, path, out_path, cap, rules=RULES, lists=lists, chunk_rows=3000, seed=4)
    chosen = np.flatnonzero(pl.read_parquet(out_path)["selection_reason"].is_not_null().to_numpy())
    assert chosen.shape[0] == report.selected > 0
    assert np.isin(chosen, np.concatenate([r.candidates + r.offset for r in shared])).all()


def test_sparse_text_matches_a_scatter_into_nulls():
    positions = np.array([0, 3, 4, 9], dtype=np.int64)
    texts = ["hs4=6404 (+2.03)", None, "", "desc_kw=shoe (+1.75); é"]
    built = _sparse_text(10, positions, texts)
    expected = (
        pl.repeat(None, 10, dtype=pl.String, eager=True)
        .scatter(positions, pl.Series(texts, dtype=pl.String))
        .to_arrow(compat_level=pl.CompatLevel.oldest())
    )
    built.validate(full=True)
    assert built.type == pa.large_string()
    assert built.equals(expected)
    assert built.null_count == 7  # the six rows without a text and the selected row whose text is None
    assert _sparse_text(5, positions[:0], []).null_count == 5
    with pytest.raises(ValueError, match="2 explanation"):
        _sparse_text(10, positions, texts[:2])


def test_a_reused_feature_matrix_equals_a_fresh_one(
    model_path: Path, consignments: tuple[pl.DataFrame, Path]
) -> None:
    # score_file's worker copies of the model write each chunk's matrix into one buffer per thread
    frame, _ = consignments
    prepared = prepare_consignments(frame)
    fresh = as_scorer(load_model(model_path))
    reusing = replace(fresh, reuse_matrix=True)
    first = reusing.features(prepared[:5000])
    assert np.array_equal(first, fresh.features(prepared[:5000]), equal_nan=True)
    assert first.flags.f_contiguous
    second = reusing.features(prepared[5000:8000])  # the same buffer, overwritten
    assert np.shares_memory(first, second)
    assert np.array_equal(second, fresh.features(prepared[5000:8000]), equal_nan=True)
    larger = reusing.features(prepared)  # a larger chunk: a larger buffer
    assert np.array_equal(larger, fresh.features(prepared), equal_nan=True)
    assert not np.shares_memory(first, larger)
    assert not np.shares_memory(fresh.features(prepared[:10]), fresh.features(prepared[:10]))
    copy = pickle.loads(pickle.dumps(reusing))  # what Dask sends: the model, not the buffers  # noqa: S301 (our own bytes)
    assert copy.reuse_matrix and getattr(copy._scratch, "buffer", None) is None
    assert np.array_equal(copy.features(prepared[:50]), fresh.features(prepared[:50]), equal_nan=True)


def test_to_numpy_into_a_buffer() -> None:
    feats = pl.DataFrame({"a": [1.0, None, float("nan")], "b": pl.Series([1, 2, None], dtype=pl.Int64)})
    expected = np.array([[1.0, 1.0], [np.nan, 2.0], [np.nan, np.nan]])
    assert np.array_equal(to_numpy(feats), expected, equal_nan=True)
    buffer = np.full(10, -1.0)
    matrix = to_numpy(feats, order="fortran", buffer=buffer)
    assert np.array_equal(matrix, expected, equal_nan=True) and np.shares_memory(matrix, buffer)
    assert buffer[6:].tolist() == [-1.0] * 4
    for bad in (np.zeros(5), np.zeros(6, dtype=np.float32), np.zeros((6, 1))):
        with pytest.raises(ValueError, match="flat float64 array of >= 6 values"):
            to_numpy(feats, order="fortran", buffer=bad)
    with pytest.raises(ValueError, match="order='fortran'"):
        to_numpy(feats, buffer=buffer)

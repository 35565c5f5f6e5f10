"""RiskModel (fit, calibration, save/load, version, explanations) and the ranking metrics."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stopnet.risk.kcs import KCS_SPEC
from stopnet.risk.metrics import auc, base_rate, evaluate_scores, precision_at_k, recall_at_k, top_k_count
from stopnet.risk.model import Calibration, ModelFormatError, RiskModel, _date_slices
from tests.risk.test_features import START, synthetic_declarations

# -- metrics -------------------------------------------------------------------------------------

Y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
S = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])


def test_precision_recall_at_k_by_hand() -> None:
    assert precision_at_k(Y, S, 10) == 1.0  # top 1 row: y=1
    assert precision_at_k(Y, S, 20) == 0.5  # top 2 rows: 1, 0
    assert precision_at_k(Y, S, 30) == pytest.approx(2 / 3)
    assert precision_at_k(Y, S, 100) == pytest.approx(0.3)
    assert recall_at_k(Y, S, 10) == pytest.approx(1 / 3)
    assert recall_at_k(Y, S, 30) == pytest.approx(2 / 3)
    assert recall_at_k(Y, S, 100) == 1.0
    assert recall_at_k(np.zeros(4), np.arange(4), 50) == 0.0
    # 5 % of 10 rows rounds to 1 row (at least one row is always selected)
    assert top_k_count(10, 5) == 1 and top_k_count(10, 15) == 2 and top_k_count(1000, 5) == 50
    assert top_k_count(8134, 5) == 407 and top_k_count(8134, 10) == 813


def test_ties_are_broken_by_row_order() -> None:
    y = np.array([0, 1, 1, 0])
    s = np.array([0.5, 0.5, 0.5, 0.1])
    assert precision_at_k(y, s, 25) == 0.0  # first of the tied rows
    assert precision_at_k(y, s, 50) == 0.5


def test_auc_and_base_rate_by_hand() -> None:
    # positives 0.9, 0.7, 0.05 vs 7 negatives: pairs won = 7 + 6 + 0 = 13 of 21
    assert auc(Y, S) == pytest.approx(13 / 21)
    assert base_rate(Y) == pytest.approx(0.3)
    assert np.isnan(auc(np.ones(3), np.arange(3)))


def test_evaluate_scores_keys_and_errors() -> None:
    out = evaluate_scores(Y, S)
    assert set(out) == {
        *(f"precision_at_{k}" for k in (1, 2, 5, 10)),
        *(f"recall_at_{k}" for k in (1, 2, 5, 10)),
        "auc",
        "base_rate",
        "n",
        "k_percent",
    }
    assert out["k_percent"] == [1, 2, 5, 10] and out["n"] == 10
    json.dumps(out)
    with pytest.raises(ValueError):
        precision_at_k(Y, S[:-1], 5)
    with pytest.raises(ValueError):
        precision_at_k(Y, S, 0)
    with pytest.raises(ValueError):
        precision_at_k(np.array([0, 2]), np.array([0.1, 0.2]), 50)


# -- model ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def data() -> tuple[pl.DataFrame, pl.DataFrame]:
    frame = synthetic_declarations(n=2400, days=60, seed=3)
    cut = START + dt.timedelta(days=45)
    return frame.filter(pl.col("date") < cut), frame.filter(pl.col("date") >= cut)


@pytest.fixture(scope="module")
def model(data: tuple[pl.DataFrame, pl.DataFrame]) -> RiskModel:
    train, _ = data
    return RiskModel.fit(
        train, KCS_SPEC, "fraud", "date", seed=1, params={"num_leaves": 7}, name="test-model"
    )


def test_fit_learns_and_reports_time_split(model: RiskModel, data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, test = data
    p = model.predict_proba(test)
    assert p.shape == (test.height,) and np.all((p >= 0) & (p <= 1))
    assert auc(test["fraud"].to_numpy(), p) > 0.6
    info = model.training
    assert info["early_stopped"] is True and info["best_iteration"] >= 1
    # early stopping / calibration slices are the latest dates of the training frame, in order
    assert (
        str(train["date"].min())
        < info["holdout_start"]
        <= info["calibration_start"]
        <= str(train["date"].max())
    )
    assert info["fit_rows"] + info["early_stopping_rows"] + info["calibration_rows"] == train.height
    assert model.calibration.method == "platt" and model.calibration.a > 0


def test_platt_calibration_keeps_the_ranking(
    model: RiskModel, data: tuple[pl.DataFrame, pl.DataFrame]
) -> None:
    _, test = data
    raw, p = model.raw_score(test), model.predict_proba(test)
    np.testing.assert_array_equal(np.argsort(-raw, kind="stable"), np.argsort(-p, kind="stable"))


def test_save_load_round_trip(
    model: RiskModel, data: tuple[pl.DataFrame, pl.DataFrame], tmp_path: Path
) -> None:
    _, test = data
    path = tmp_path / "m.zip"
    version = model.save(path)
    assert version == model.version
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert version.startswith("test-model-") and version.endswith(sha[:16])
    loaded = RiskModel.load(path)
    assert loaded.version == version
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert loaded.explain(test.head(3)) == model.explain(test.head(3))
    # saving the loaded model again gives the same bytes (deterministic zip)
    loaded.save(tmp_path / "again.zip")
    assert (tmp_path / "again.zip").read_bytes() == path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == ["meta.json", "model.txt"]
    clone = pickle.loads(pickle.dumps(model))  # noqa: S301 - Dask workers pickle models
    np.testing.assert_array_equal(clone.predict_proba(test), model.predict_proba(test))


def test_load_rejects_foreign_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ModelFormatError):
        RiskModel.load(bad)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("meta.json", json.dumps({"format": "other"}))
        zf.writestr("model.txt", "tree")
    bad.write_bytes(buf.getvalue())
    with pytest.raises(ModelFormatError):
        RiskModel.load(bad)


def test_explanations_sum_to_raw_score(model: RiskModel, data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    _, test = data
    rows = test.head(25)
    contrib = model.contributions(rows)
    assert contrib.shape == (25, len(model.feature_names) + 1)
    np.testing.assert_allclose(contrib.sum(axis=1), model.raw_score(rows), rtol=1e-9, atol=1e-9)
    top = model.explain(rows, top_k=5)
    assert len(top) == 25 and all(len(r) == 5 for r in top)
    for row, c in zip(top, contrib, strict=True):
        values = [abs(v) for _, v in row]
        assert values == sorted(values, reverse=True)
        assert values[0] == pytest.approx(np.abs(c[:-1]).max())
        assert all(name in model.feature_names for name, _ in row)


def test_same_seed_same_model(data: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    train, test = data
    small = train.tail(900)
    a = RiskModel.fit(small, KCS_SPEC, seed=5, params={"num_leaves": 7}, max_rounds=60)
    b = RiskModel.fit(small, KCS_SPEC, seed=5, params={"num_leaves": 7}, max_rounds=60)
    np.testing.assert_array_equal(a.predict_proba(test), b.predict_proba(test))


def test_fit_ignores_rows_without_label_and_handles_tiny_frames(
    data: tuple[pl.DataFrame, pl.DataFrame],
) -> None:
    train, test = data
    part = train.with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0).then(None).otherwise(pl.col("fraud")).alias("fraud")
    )
    m = RiskModel.fit(part, KCS_SPEC, seed=0, max_rounds=50)
    assert m.training["labelled_rows"] == part["fraud"].is_not_null().sum()
    assert m.predict_proba(test).shape == (test.height,)
    two_days = train.filter(pl.col("date") <= START + dt.timedelta(days=1))
    tiny = RiskModel.fit(two_days, KCS_SPEC, seed=0, default_rounds=10)
    assert tiny.calibration.method == "none" and tiny.predict_proba(test).shape == (test.height,)


def test_date_slices_cut_whole_dates() -> None:
    dates = pl.Series("d", [dt.date(2020, 1, 1) + dt.timedelta(days=i // 10) for i in range(100)])
    hold, cal = _date_slices(dates, 0.2)
    assert hold == dt.date(2020, 1, 9) and cal == dt.date(2020, 1, 10)
    assert _date_slices(dates.head(20), 0.2) == (None, None)


def test_calibration_fallbacks() -> None:
    assert Calibration.fit(np.array([0.1, 0.2]), np.array([1.0, 1.0]), "platt").method == "none"
    iso = Calibration.fit(np.array([-2.0, -1.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0, 1.0]), "isotonic")
    assert iso.method == "isotonic" and iso.apply(np.array([3.0]))[0] == 1.0
    with pytest.raises(ValueError):
        Calibration.fit(np.zeros(2), np.array([0.0, 1.0]), "magic")

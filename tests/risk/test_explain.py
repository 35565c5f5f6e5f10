"""Exact SHAP contributions by per-tree tables equal LightGBM's own ``pred_contrib``."""

from __future__ import annotations

import pickle
import threading

import lightgbm as lgb
import numpy as np
import pytest

from stopnet.risk.explain import ContributionTables


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.column_stack(
        [
            rng.normal(size=n),
            rng.exponential(size=n),
            rng.integers(0, 12, n).astype(float),  # categorical codes
            np.where(rng.random(n) < 0.3, 0.0, rng.normal(size=n)),  # many zeros
        ]
    )
    x[rng.random(n) < 0.15, 0] = np.nan
    x[rng.random(n) < 0.1, 2] = np.nan
    x[rng.random(n) < 0.05, 3] = np.nan
    logit = x[:, 1] - np.nan_to_num(x[:, 0]) + np.isin(x[:, 2], [1, 4, 7]) * 1.5 + (x[:, 3] == 0) * 0.8
    return x, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)


@pytest.mark.parametrize("zero_as_missing", [False, True])
def test_equal_to_lightgbm_pred_contrib(zero_as_missing: bool) -> None:
    x, y = _data(6000, 0)
    params = {"objective": "binary", "num_leaves": 7, "verbose": -1, "zero_as_missing": zero_as_missing}
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[2]), 40)
    tables = ContributionTables(booster)
    assert tables.supported
    later, _ = _data(3000, 1)
    later[:5] = [np.nan, 0.0, -3.0, 1e-40]  # all missing or odd: NaN, zero, a negative category, ~0
    exact = booster.predict(later, pred_contrib=True)
    np.testing.assert_allclose(tables.contributions(later), exact, rtol=0, atol=1e-12)
    # the tables are filled as codes come: a second batch reuses them and still agrees
    again, _ = _data(2000, 2)
    np.testing.assert_allclose(
        tables.contributions(again), booster.predict(again, pred_contrib=True), atol=1e-12
    )
    # picklable (Dask workers), still exact after the round trip
    copy = pickle.loads(pickle.dumps(tables))  # noqa: S301
    np.testing.assert_allclose(copy.contributions(later), exact, rtol=0, atol=1e-12)


def test_concurrent_use_beside_full_predictions_stays_exact() -> None:
    # one tree's contributions are asked with start_iteration: that must never disturb (or be disturbed
    # by) whole-model predictions running at the same time on the caller's booster
    x, y = _data(4000, 3)
    booster = lgb.train({"objective": "binary", "num_leaves": 7, "verbose": -1}, lgb.Dataset(x, y), 30)
    tables = ContributionTables(booster)
    batches = [_data(1500, 10 + i)[0] for i in range(6)]
    expected = [booster.predict(b, pred_contrib=True) for b in batches]
    scores = booster.predict(batches[0], raw_score=True)
    errors: list[str] = []

    def explain(i: int) -> None:
        for _ in range(3):
            got = tables.contributions(batches[i])
            if not np.allclose(got, expected[i], rtol=0, atol=1e-12):
                errors.append(f"batch {i}")

    def predict() -> None:
        for _ in range(20):
            if not np.array_equal(booster.predict(batches[0], raw_score=True), scores):
                errors.append("scores")

    threads = [threading.Thread(target=explain, args=(i,)) for i in range(6)] + [
        threading.Thread(target=predict)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_falls_back_to_lightgbm_when_not_covered() -> None:
    x, y = _data(3000, 4)
    big = lgb.train(
        {"objective": "binary", "num_leaves": 40, "verbose": -1, "min_data_in_leaf": 5}, lgb.Dataset(x, y), 5
    )
    tables = ContributionTables(big)  # more than 12 splits per tree: LightGBM's own pred_contrib
    assert not tables.supported
    np.testing.assert_array_equal(tables.contributions(x[:500]), big.predict(x[:500], pred_contrib=True))

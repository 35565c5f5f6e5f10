"""Risk-history features: time safety (no future or own label leaks), exact values, persistence."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import polars as pl
import pytest

from stopnet.risk.features import FeatureEncoder, FeatureSpec, HistoryEncoder, key_name
from stopnet.risk.kcs import KCS_SPEC

START = dt.date(2020, 1, 1)


def synthetic_declarations(n: int = 1500, days: int = 40, seed: int = 0) -> pl.DataFrame:
    """Small KCS-like frame (snake_case columns as :func:`stopnet.risk.kcs.read_kcs` returns).

    Fraud depends on the importer (some are risky), on the HS chapter and on a repeated goods profile, so
    a model with histories can learn something.
    """
    rng = np.random.default_rng(seed)
    importers = [f"IMP{i:03d}" for i in range(60)]
    risky = set(importers[:12])
    hs_pool = ["392690", "950300", "071080", "630790", "850440", "732690", "854370", "620822"]
    importer = rng.choice(importers, n)
    hs = rng.choice(hs_pool, n)
    profile = rng.integers(0, 40, n)
    mass = np.round(10.0 + profile * 3.5, 1)
    price = np.round(mass * (20.0 + 5.0 * profile), 2)
    p = 0.08 + 0.5 * np.isin(importer, list(risky)) + 0.15 * (hs == "950300") + 0.2 * (profile % 7 == 0)
    fraud = (rng.random(n) < np.clip(p, 0, 0.95)).astype(np.int8)
    dates = sorted(START + dt.timedelta(days=int(d)) for d in rng.integers(0, days, n))
    seller = [None if rng.random() < 0.1 else f"S{rng.integers(0, 80):03d}" for _ in range(n)]
    return pl.DataFrame(
        {
            "declaration_id": [f"D{i:06d}" for i in range(n)],
            "date": dates,
            "office_id": rng.choice(["20", "30", "40"], n).tolist(),
            "process_type": ["B"] * n,
            "import_type": rng.choice(["11", "87"], n).tolist(),
            "import_use": rng.choice(["21", "11"], n).tolist(),
            "payment_type": rng.choice(["11", "43"], n).tolist(),
            "mode_of_transport": rng.choice(["10", "40"], n).tolist(),
            "declarant_id": rng.choice([f"DCL{i}" for i in range(15)], n).tolist(),
            "importer_id": importer.tolist(),
            "seller_id": seller,
            "courier_id": [None] * n,
            "hs_code": hs.tolist(),
            "departure_country": rng.choice(["CN", "US", "DE"], n).tolist(),
            "origin_country": rng.choice(["CN", "US", "DE", "VN"], n).tolist(),
            "tax_rate": rng.choice([0.0, 8.0, 5.2], n),
            "tax_type": rng.choice(["A", "C", "FCN1"], n).tolist(),
            "origin_indicator": rng.choice(["E", "G", "Y"], n).tolist(),
            "net_mass": mass,
            "item_price": price,
            "fraud": fraud,
            "critical_fraud": fraud,
        },
        schema_overrides={"date": pl.Date, "fraud": pl.Int8, "critical_fraud": pl.Int8},
    )


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return synthetic_declarations()


def _features(frame: pl.DataFrame, spec: FeatureSpec = KCS_SPEC) -> pl.DataFrame:
    return FeatureEncoder(spec).fit_transform(frame, "fraud", "date")


def _assert_rows_equal(a: pl.DataFrame, b: pl.DataFrame, mask: np.ndarray) -> None:
    assert a.columns == b.columns
    left = a.filter(pl.Series(mask)).to_numpy()
    right = b.filter(pl.Series(mask)).to_numpy()
    assert left.shape == right.shape and left.shape[0] > 0
    np.testing.assert_array_equal(left, right)


def test_future_labels_never_leak(frame: pl.DataFrame) -> None:
    """Flip every label on or after D: no feature of any row dated on or before D may change."""
    base = _features(frame)
    dates = frame["date"].to_numpy()
    for cut in (START + dt.timedelta(days=5), START + dt.timedelta(days=20), START + dt.timedelta(days=33)):
        cut64 = np.datetime64(cut)
        flipped = frame.with_columns(
            pl.when(pl.col("date") >= cut).then(1 - pl.col("fraud")).otherwise(pl.col("fraud")).alias("fraud")
        )
        changed = _features(flipped)
        _assert_rows_equal(base, changed, dates <= cut64)
        # ...while rows after D do see the flipped labels of D (the test can fail).
        after = dates > cut64
        assert not np.array_equal(
            base.filter(pl.Series(after)).to_numpy(), changed.filter(pl.Series(after)).to_numpy()
        )


def test_own_label_never_influences_own_features(frame: pl.DataFrame) -> None:
    base = _features(frame)
    rng = np.random.default_rng(1)
    for i in rng.choice(frame.height, 5, replace=False):
        flipped = frame.with_columns(
            pl.when(pl.int_range(pl.len()) == int(i))
            .then(1 - pl.col("fraud"))
            .otherwise(pl.col("fraud"))
            .alias("fraud")
        )
        changed = _features(flipped)
        same_day = (frame["date"] == frame["date"][int(i)]).to_numpy()
        _assert_rows_equal(base, changed, same_day)  # the row itself and its same-date neighbours


def test_history_matches_brute_force(frame: pl.DataFrame) -> None:
    """hist_n / hist_rate equal a direct computation over strictly earlier dates."""
    keys = (("importer_id",), ("importer_id", "hs_code"), ("seller_id",))
    enc = HistoryEncoder(keys=keys, smoothing=5.0)
    out = enc.fit_transform_time_safe(frame, "fraud", "date")
    rows = frame.select("date", "importer_id", "hs_code", "seller_id", "fraud").to_dicts()
    for i in range(0, len(rows), 97):
        r = rows[i]
        earlier = [q for q in rows if q["date"] < r["date"]]
        prior = (sum(q["fraud"] for q in earlier) + 1.0) / (len(earlier) + 2.0)
        for k in keys:
            same = [q for q in earlier if all(q[c] == r[c] for c in k)]
            n, pos = len(same), sum(q["fraud"] for q in same)
            name = key_name(k)
            assert out[f"hist_n__{name}"][i] == n
            assert out[f"hist_rate__{name}"][i] == pytest.approx((pos + 5.0 * prior) / (n + 5.0))


def test_transform_after_fit_uses_all_labels() -> None:
    train = pl.DataFrame(
        {
            "date": [START, START, START + dt.timedelta(days=1), START + dt.timedelta(days=2)],
            "importer_id": ["A", "A", "A", "B"],
            "fraud": [1, 0, 1, None],
        },
        schema_overrides={"date": pl.Date},
    )
    enc = HistoryEncoder(keys=(("importer_id",),), smoothing=2.0)
    safe = enc.fit_transform_time_safe(train, "fraud", "date")
    assert safe["hist_n__importer_id"].to_list() == [0.0, 0.0, 2.0, 0.0]
    prior = (2 + 1) / (
        3 + 2
    )  # 2 frauds out of 3 labelled rows, Beta(1, 1); the null label counts for nothing
    later = pl.DataFrame({"importer_id": ["A", "B", "C"]})
    out = enc.transform(later)
    assert out["hist_n__importer_id"].to_list() == [3.0, 0.0, 0.0]
    assert out["hist_rate__importer_id"].to_list() == pytest.approx([(2 + 2 * prior) / 5, prior, prior])


def test_label_delay_hides_recent_labels(frame: pl.DataFrame) -> None:
    enc = HistoryEncoder(keys=(("importer_id",),), label_delay_days=7)
    out = enc.fit_transform_time_safe(frame, "fraud", "date")
    rows = frame.select("date", "importer_id").to_dicts()
    for i in range(0, len(rows), 131):
        r = rows[i]
        n = sum(
            1
            for q in rows
            if q["importer_id"] == r["importer_id"] and q["date"] < r["date"] - dt.timedelta(days=7)
        )
        assert out["hist_n__importer_id"][i] == n


def test_non_label_features_ignore_labels(frame: pl.DataFrame) -> None:
    enc = FeatureEncoder(KCS_SPEC)
    a = enc.fit_transform(frame, "fraud", "date")
    b = FeatureEncoder(KCS_SPEC).fit_transform(frame.with_columns(fraud=1 - pl.col("fraud")), "fraud", "date")
    non_label = [c for c in a.columns if not c.startswith("hist_")]
    assert len(non_label) > 20
    assert a.select(non_label).equals(b.select(non_label))
    assert "log_vpk_ratio__hs6" in a.columns and "freq__importer_id" in a.columns
    assert a.columns == enc.feature_names()


def test_frequency_excludes_the_row_itself(frame: pl.DataFrame) -> None:
    enc = FeatureEncoder(KCS_SPEC)
    train = enc.fit_transform(frame, "fraud", "date")
    counts = frame.group_by("importer_id").len()
    first = frame["importer_id"][0]
    total = counts.filter(pl.col("importer_id") == first)["len"][0]
    assert train["freq__importer_id"][0] == total - 1
    assert enc.transform(frame.head(1))["freq__importer_id"][0] == total


def test_encoder_state_round_trip(frame: pl.DataFrame) -> None:
    import json

    train, later = (
        frame.filter(pl.col("date") < START + dt.timedelta(days=30)),
        frame.filter(pl.col("date") >= START + dt.timedelta(days=30)),
    )
    enc = FeatureEncoder(KCS_SPEC)
    enc.fit_transform(train, "fraud", "date")
    again = FeatureEncoder.from_dict(json.loads(json.dumps(enc.to_dict())))
    assert enc.transform(later).equals(again.transform(later))
    assert pickle.loads(pickle.dumps(enc)).transform(later).equals(enc.transform(later))  # noqa: S301
    assert FeatureSpec.from_dict(KCS_SPEC.to_dict()) == KCS_SPEC


def test_unseen_categories_and_keys_are_missing_not_errors(frame: pl.DataFrame) -> None:
    enc = FeatureEncoder(KCS_SPEC)
    enc.fit_transform(frame, "fraud", "date")
    odd = frame.head(2).with_columns(
        office_id=pl.lit("99"), importer_id=pl.lit("NEW"), hs_code=pl.lit("999999"), net_mass=pl.lit(0.0)
    )
    out = enc.transform(odd)
    assert out["cat__office_id"].null_count() == 2
    assert out["hist_n__importer_id"].to_list() == [0.0, 0.0]
    assert out["log_vpk_ratio__hs6"].null_count() == 2


def test_spec_validation() -> None:
    with pytest.raises(ValueError):
        FeatureSpec(history_keys=((),))
    with pytest.raises(ValueError):
        FeatureSpec(smoothing=-1)
    with pytest.raises(RuntimeError, match="not fitted"):
        HistoryEncoder(keys=(("a",),)).transform(pl.DataFrame({"a": ["x"]}))


def _nan_equal(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape and a.shape[0] > 0
    np.testing.assert_array_equal(a, b)  # NaN == NaN here; every other value exactly equal


def test_row_path_equals_frame_path_on_declarations(frame: pl.DataFrame) -> None:
    # frequencies, same-day counts, date parts, tax, combined keys, HS prefixes, unseen values
    from stopnet.risk.features import to_numpy
    from stopnet.risk.kcs import kcs_spec

    spec = kcs_spec(6, profiles=False)
    train = frame.filter(pl.col("date") < START + dt.timedelta(days=30))
    later = frame.filter(pl.col("date") >= START + dt.timedelta(days=30))
    odd = later.head(3).with_columns(
        office_id=pl.lit("99"), importer_id=pl.lit("NEW"), hs_code=pl.lit(" 9999 "), net_mass=pl.lit(0.0)
    )
    later = pl.concat([later, odd])
    enc = FeatureEncoder(spec)
    enc.fit_transform(train, "fraud", "date")
    assert enc.supports_rows()
    _nan_equal(enc.transform_rows(later.to_dicts()), to_numpy(enc.transform(later)))
    assert not FeatureEncoder(KCS_SPEC).supports_rows()  # price levels and log bins: frames only


def test_row_path_equals_frame_path_on_consignments() -> None:
    from stopnet.risk.consignments import coerce_consignments
    from stopnet.risk.pipeline import as_scorer, prepare_consignments, prepare_record, train_consignment_model
    from stopnet.risk.simulation import generate_consignments

    model = train_consignment_model(generate_consignments(8000, start="2026-01-05", days=20, seed=3), seed=0)
    later = generate_consignments(1500, start="2026-02-01", days=5, seed=4, labels="none")
    later = coerce_consignments(later).with_row_index("i")
    # unseen carrier and sender, no keyword, upper case keyword, zero weight and quantity, no marketplace
    later = later.with_columns(
        carrier=pl.when(pl.col("i") == 0).then(pl.lit("Nowhere Post")).otherwise(pl.col("carrier")),
        sender_id=pl.when(pl.col("i") == 1).then(pl.lit("never-seen")).otherwise(pl.col("sender_id")),
        description=pl.when(pl.col("i") == 2)
        .then(pl.lit("assorted items"))
        .when(pl.col("i") == 3)
        .then(pl.lit("SNEAKERS, 2 pairs"))
        .otherwise(pl.col("description")),
        weight_kg=pl.when(pl.col("i") == 4).then(0.0).otherwise(pl.col("weight_kg")),
        quantity=pl.when(pl.col("i") == 5).then(0).otherwise(pl.col("quantity")),
        marketplace=pl.when(pl.col("i") == 6).then(None).otherwise(pl.col("marketplace")),
    ).drop("i")
    scorer = as_scorer(model, 1)
    by_frame = scorer.features(prepare_consignments(later))
    by_rows = scorer.features_rows([prepare_record(r) for r in later.to_dicts()])
    _nan_equal(by_rows, by_frame)
    assert np.isnan(by_rows[0, model.feature_names.index("cat__carrier")])
    assert np.array_equal(scorer.predict_matrix(by_rows), model.predict_proba(prepare_consignments(later)))

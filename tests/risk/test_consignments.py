"""Consignment schema, readers, pseudonymisation and the simulated stream."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from stopnet.risk.consignments import (
    CONSIGNMENT_LABEL_SCHEMA,
    CONSIGNMENT_SCHEMA,
    IMPORT_DECLARATION_SCHEMA,
    ConsignmentSchemaError,
    consignment_from_dict,
    pseudonymise,
    pseudonymise_series,
    read_consignments,
    read_import_declarations,
)
from stopnet.risk.simulation import COMMODITY_CODES, FraudPattern, generate_consignments


@pytest.fixture(scope="module")
def stream() -> pl.DataFrame:
    return generate_consignments(60_000, start="2026-01-05", days=35, seed=4, truth=True)


def test_generated_stream_follows_the_schema(stream: pl.DataFrame) -> None:
    for name, dtype in {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}.items():
        assert stream.schema[name] == dtype, name
    assert stream["consignment_id"].n_unique() == stream.height
    assert stream["declared_at"].is_sorted()
    assert (stream["arrival_date"] > stream["declared_at"].cast(pl.Date)).all()
    assert set(stream["channel"].unique()) <= {"POSTAL", "EXPRESS", "AIR_CARGO"}
    # most parcels come from the big e-commerce origins, mostly by post or express
    share = stream["origin_country"].value_counts(normalize=True)
    top = dict(zip(share["origin_country"], share["proportion"], strict=True))
    assert top["CN"] > 0.4 and top["CN"] + top["HK"] + top.get("TR", 0) + top.get("IN", 0) > 0.6
    assert (stream["channel"] != "AIR_CARGO").mean() > 0.9  # type: ignore[operator]
    # parties are pseudonyms (hex), never names
    assert stream["sender_id"].str.contains(r"^[0-9a-f]{16}$").all()
    assert not stream["sender_id"].str.contains("sender").any()


def test_labels_and_commodity_codes(stream: pl.DataFrame) -> None:
    seized = stream.filter(pl.col("seized"))
    assert seized["inspected"].all()
    assert seized["truth_fraud"].all()
    assert set(seized["commodity_code"].unique().to_list()) <= set(COMMODITY_CODES)
    assert (
        stream.filter(~pl.col("seized"))["commodity_code"].null_count()
        == stream.filter(~pl.col("seized")).height
    )
    codes = set(stream["truth_commodity_code"].drop_nulls().unique().to_list())
    assert {"MED-WEIGHT", "IPR-FOOT", "IPR-WATCH"} <= codes <= set(COMMODITY_CODES)
    rate = stream["truth_fraud"].mean()
    assert 0.005 < rate < 0.06  # type: ignore[operator]
    assert abs(stream["inspected"].mean() - 0.05) < 0.01  # type: ignore[operator]


def test_planted_patterns_drift_over_time(stream: pl.DataFrame) -> None:
    day = (pl.col("declared_at") - pl.lit(dt.datetime(2026, 1, 5))).dt.total_days()
    s = stream.with_columns(day.alias("day"))
    pens = s.filter(pl.col("truth_pattern") == "weight_loss_pens")
    assert pens.filter(pl.col("day") < 7).height == 0  # starts in week 2
    assert (
        pens.filter(pl.col("day") >= 14).height
        > pens.filter((pl.col("day") >= 7) & (pl.col("day") < 14)).height
    )
    assert (pens["departure_country"] == "TR").all() and (pens["origin_country"] == "CN").all()
    sneakers = s.filter(pl.col("truth_pattern") == "misdescribed_sneakers")
    assert (sneakers["carrier"] == "SwiftXpress").all()
    early = sneakers.filter(pl.col("day") < 21)["description"].unique().to_list()
    late = sneakers.filter(pl.col("day") >= 21)["description"].unique().to_list()
    assert all("hoe" in d or "neaker" in d for d in early)
    assert not any("hoe" in d or "neaker" in d for d in late)  # declared as gifts / samples later
    watches = s.filter(pl.col("truth_pattern") == "undervalued_watches")
    assert watches["sender_id"].n_unique() <= 40
    assert (watches["declared_value"] / watches["quantity"] < 130).all()


def test_generation_is_reproducible_and_seeded() -> None:
    a = generate_consignments(5000, seed=1, truth=True)
    b = generate_consignments(5000, seed=1, truth=True)
    c = generate_consignments(5000, seed=2, truth=True)
    assert a.equals(b)
    assert not a.drop("consignment_id").equals(c.drop("consignment_id"))
    assert generate_consignments(0).height == 0
    full = generate_consignments(2000, seed=1, labels="full", truth=True)
    assert full["inspected"].all() and full["seized"].to_list() == full["truth_fraud"].to_list()
    none = generate_consignments(100, labels="none")
    assert "inspected" not in none.columns


def test_custom_pattern() -> None:
    pattern = FraudPattern(
        name="fake_toys", commodity_code="IPR-TOYS", share=0.05, fraud_rate=1.0, start_day=3,
        origin_country=("VN",), descriptions=("Toy figure",), hs_codes=("950300",),
    )  # fmt: skip
    frame = generate_consignments(20_000, days=7, seed=3, fraud_patterns=[pattern], truth=True)
    planted = frame.filter(pl.col("truth_pattern") == "fake_toys")
    assert 500 < planted.height < 1000
    assert (planted["origin_country"] == "VN").all() and (planted["truth_commodity_code"] == "IPR-TOYS").all()
    with pytest.raises(ValueError, match="unknown commodity code"):
        FraudPattern(name="x", commodity_code="NOPE", share=0.1)


def test_ten_thousand_rows_are_fast_enough_to_scale() -> None:
    # 10 M rows take ~25 s on 2 cores; here only check that generation is vectorised (no per-row loop)
    frame = generate_consignments(200_000, seed=9)
    assert frame.height == 200_000


# --------------------------------------------------------------------------------------------------
# readers
# --------------------------------------------------------------------------------------------------


def _small() -> pl.DataFrame:
    frame = generate_consignments(200, seed=5).with_columns(
        pl.Series("hs_code", ["040900"] * 200)  # leading zero must survive CSV
    )
    return frame


def test_read_csv_and_parquet_round_trip(tmp_path: Path) -> None:
    frame = _small()
    frame.write_csv(tmp_path / "c.csv")
    frame.write_parquet(tmp_path / "c.parquet")
    from_csv = read_consignments(tmp_path / "c.csv")
    from_pq = read_consignments(tmp_path / "c.parquet")
    assert from_csv["hs_code"].to_list() == ["040900"] * 200
    assert from_csv.equals(from_pq)
    assert from_pq.equals(frame)


@pytest.mark.parametrize(
    ("change", "column", "message"),
    [
        (lambda f: f.drop("sender_id"), "sender_id", "required column is missing"),
        (lambda f: f.with_columns(pl.lit("abc").alias("declared_value")), "declared_value", "cannot convert"),
        (lambda f: f.with_columns(pl.lit("TRUCK").alias("channel")), "channel", "unknown channel"),
        (lambda f: f.with_columns(pl.lit("China").alias("origin_country")), "origin_country", "ISO-2"),
        (lambda f: f.with_columns(pl.lit("12ab").alias("hs_code")), "hs_code", "2-10 digits"),
        (lambda f: f.with_columns(pl.lit(-1.0).alias("weight_kg")), "weight_kg", "negative weight"),
        (
            lambda f: f.with_columns(pl.lit("2026-13-45").alias("declared_at")),
            "declared_at",
            "cannot convert",
        ),
        (lambda f: f.with_columns(pl.lit(None, pl.String).alias("office")), "office", "missing value"),
        (lambda f: f.with_columns(pl.lit("maybe").alias("inspected")), "inspected", "expected a boolean"),
    ],
)
def test_invalid_files_name_the_column(tmp_path: Path, change, column: str, message: str) -> None:
    bad = change(_small().with_columns(pl.col("declared_at").cast(pl.String)))
    path = tmp_path / "bad.csv"
    bad.write_csv(path)
    with pytest.raises(ConsignmentSchemaError) as info:
        read_consignments(path)
    assert info.value.column == column
    assert message in str(info.value)
    assert f"column {column!r}" in str(info.value)


def test_numeric_hs_code_in_parquet_is_rejected(tmp_path: Path) -> None:
    frame = _small().with_columns(pl.lit(40900).alias("hs_code"))
    frame.write_parquet(tmp_path / "x.parquet")
    with pytest.raises(ConsignmentSchemaError, match="leading zeros"):
        read_consignments(tmp_path / "x.parquet")


def test_unsupported_file_type(tmp_path: Path) -> None:
    (tmp_path / "x.xlsx").write_text("x")
    with pytest.raises(ConsignmentSchemaError, match="unsupported file type"):
        read_consignments(tmp_path / "x.xlsx")


def test_require_labels(tmp_path: Path) -> None:
    generate_consignments(50, labels="none").write_parquet(tmp_path / "x.parquet")
    with pytest.raises(ConsignmentSchemaError, match="inspected"):
        read_consignments(tmp_path / "x.parquet", require_labels=True)


def test_consignment_from_dict() -> None:
    record = _small().drop("inspected", "seized", "commodity_code").row(0, named=True)
    record["declared_at"] = record["declared_at"].isoformat()
    one = consignment_from_dict(record)
    assert one.schema == pl.Schema({k: v for k, v in CONSIGNMENT_SCHEMA.items()})
    with pytest.raises(ConsignmentSchemaError, match="unknown field"):
        consignment_from_dict({**record, "name": "John"})
    with pytest.raises(ConsignmentSchemaError, match="required field is missing"):
        consignment_from_dict({k: v for k, v in record.items() if k != "office"})
    with pytest.raises(ConsignmentSchemaError, match="HS codes must be text"):
        consignment_from_dict({**record, "hs_code": 40900})
    with pytest.raises(ConsignmentSchemaError, match="unknown channel"):
        consignment_from_dict({**record, "channel": "BIKE"})


def test_pseudonymisation() -> None:
    key = b"secret-key-of-the-administration"
    a = pseudonymise("ACME Trading Ltd", key)
    assert a == pseudonymise("  acme trading ltd ", key)  # normalised
    assert a != pseudonymise("ACME Trading Ltd", b"another key")
    assert len(a) == 16 and int(a, 16) >= 0
    assert "acme" not in a.lower()
    assert len(pseudonymise("x", key, length=64)) == 64
    with pytest.raises(ValueError):
        pseudonymise("x", b"")
    series = pseudonymise_series(pl.Series(["A", "B", "A", None]), key)
    assert series[0] == series[2] != series[1] and series[3] is None


def test_read_import_declarations(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "declaration_id": ["D1", "D2"],
            "date": ["2026-01-02", "2026-01-03"],
            "office_id": ["30", "40"],
            "declarant_id": ["A", "B"],
            "importer_id": ["I1", "I2"],
            "hs_code": ["0409001000", "8518300000"],
            "tax_rate": [8.0, 0.0],
            "net_mass": [1.5, 0.2],
            "item_price": [100.0, 20.0],
            "fraud": [1, 0],
        }
    )
    frame.write_csv(tmp_path / "d.csv")
    out = read_import_declarations(tmp_path / "d.csv")
    assert out["hs_code"].to_list() == ["0409001000", "8518300000"]
    assert out.schema["date"] == pl.Date and out.schema["fraud"] == IMPORT_DECLARATION_SCHEMA["fraud"]
    with pytest.raises(ConsignmentSchemaError) as info:
        frame.drop("importer_id").write_csv(tmp_path / "e.csv")
        read_import_declarations(tmp_path / "e.csv")
    assert info.value.column == "importer_id"
    assert np.array_equal(out["net_mass"].to_numpy(), [1.5, 0.2])


def test_codes_are_those_of_the_reference_data() -> None:
    from stopnet.reference import get_reference
    from stopnet.risk.consignments import CHANNELS

    ref = get_reference()
    assert all(ref.has("channels", c) for c in CHANNELS)
    assert all(ref.has("commodities", c) for c in COMMODITY_CODES)

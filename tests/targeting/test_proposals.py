"""Proposals: a planted rising route x category is found, with its evidence; accept makes a draft rule."""

from __future__ import annotations

import datetime as dt

import polars as pl

from .conftest import OPS, stream


def _block(seed: int, n: int, origin: str, hs: str, start: dt.date, days: int, seized: int) -> pl.DataFrame:
    base = stream(n, seed=seed, labels="none").with_row_index("i")
    dates = [start + dt.timedelta(days=int(i) % days) for i in range(n)]
    return base.with_columns(
        pl.format("P{}-{}", pl.lit(seed), pl.col("i")).alias("consignment_id"),
        pl.lit(origin).alias("origin_country"),
        pl.lit("FR").alias("destination_country"),
        pl.lit(hs).alias("hs_code"),
        pl.Series("arrival_date", dates),
        pl.Series("declared_at", [dt.datetime(d.year, d.month, d.day) - dt.timedelta(days=2) for d in dates]),
        pl.lit(True).alias("inspected"),
        (pl.col("i") < seized).alias("seized"),
    ).drop("i")


def test_a_planted_rising_route_and_category_is_proposed(client, post, ingest, world):
    officer = world["fr_officer"]
    frame = pl.concat(
        [
            _block(11, 40, "CN", "300490", dt.date(2025, 4, 1), 40, seized=2),  # medicines CN->FR: 5 %
            _block(12, 20, "CN", "300490", dt.date(2025, 5, 18), 12, seized=12),  # ... then 60 %
            _block(13, 40, "TR", "640411", dt.date(2025, 4, 1), 40, seized=4),  # footwear TR->FR: 10 %
            _block(14, 20, "TR", "640411", dt.date(2025, 5, 18), 12, seized=2),  # ... still 10 %
        ]
    )
    ingest(officer, frame)
    r = post(officer, f"{OPS}/proposals", {"today": "2025-05-30", "recent_days": 14, "baseline_days": 56})
    assert r.status_code == 200, r.text
    proposals = r.json()
    assert [(p["origin_country"], p["destination_country"], p["commodity_group"]) for p in proposals] == [
        ("CN", "FR", "medicines")
    ]
    p = proposals[0]
    assert p["kind"] == "new" and p["status"] == "open" and p["org_code"] == "FR-CUS"
    ev = p["evidence"]["inspections"]
    assert (
        ev["baseline_seizures"],
        ev["baseline_inspections"],
        ev["recent_seizures"],
        ev["recent_inspections"],
    ) == (2, 40, 12, 20)
    assert ev["q_value"] < 0.001 and ev["flagged"]
    assert "Fisher" in p["evidence"]["test"]
    assert p["expression"].startswith(
        'origin_country == "CN" and destination_country == "FR" and hs_code ~ "^('
    )

    # running it again updates the open proposal instead of duplicating it
    again = post(officer, f"{OPS}/proposals", {"today": "2025-05-30"}).json()
    assert [x["id"] for x in again] == [p["id"]]

    # another administration sees none of it
    assert client.get(f"{OPS}/proposals", headers=world["de_officer"].headers).json() == []
    assert post(world["de_officer"], f"{OPS}/proposals/{p['id']}/accept", {}).status_code == 404

    # accept: a draft rule that compiles and hits the planted consignments
    r = post(officer, f"{OPS}/proposals/{p['id']}/accept", {})
    assert r.status_code == 200, r.text
    rule = r.json()["rule"]
    assert rule["status"] == "draft" and rule["current"]["expression"] == p["expression"]
    assert r.json()["proposal"]["status"] == "accepted"
    assert post(officer, f"{OPS}/proposals/{p['id']}/dismiss", {}).status_code == 409
    test = post(officer, f"{OPS}/rules/{rule['id']}/test", {}).json()
    assert test["hits"] == 60 and test["seizures"] == 14
    post(officer, f"{OPS}/rules/{rule['id']}/activate", {})

    # with the rule active, the same trend proposes a change of it (more weight)
    change = post(officer, f"{OPS}/proposals", {"today": "2025-05-30"}).json()
    assert len(change) == 1 and change[0]["kind"] == "change" and change[0]["rule"] == rule["code"]
    assert change[0]["weight"] == 2.0
    r = post(officer, f"{OPS}/proposals/{change[0]['id']}/dismiss", {})
    assert r.status_code == 200 and r.json()["proposal"]["status"] == "dismissed"

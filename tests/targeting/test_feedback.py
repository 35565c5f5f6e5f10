"""Selection within capacity, inspection results as labels, retraining a new model version, API scoring."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter

import polars as pl
from typer.testing import CliRunner

from stopnet.config import get_settings
from stopnet.targeting.schemas import MIN_VALIDATION_SEIZURES
from tests.conftest import case_payload
from tests.pages import HTML

from .conftest import API, OP, OPS, stream

DAY = dt.date(2025, 5, 20)


def test_selection_within_capacity_is_stored(client, post, ingest, world):
    officer = world["fr_officer"]
    frame = stream(800, seed=5, start="2025-05-12", days=14)
    ingest(officer, frame)
    day_rows = frame.filter(pl.col("arrival_date") == DAY)
    assert day_rows.height > 20
    r = post(
        officer,
        f"{OPS}/rules",
        {"code": "WATCH", "name": "watches", "expression": 'description ~ "watch"', "weight": 1},
    )
    rule_id = r.json()["id"]
    post(officer, f"{OPS}/rules/{rule_id}/test", {})
    post(officer, f"{OPS}/rules/{rule_id}/activate", {})

    r = post(
        officer, f"{OPS}/selections", {"day": str(DAY), "capacity": "3/office", "exploration_share": 0.34}
    )
    assert r.status_code == 201, r.text
    sel = r.json()
    assert sel["n_consignments"] == day_rows.height
    assert sel["capacity"] == "3/office"
    red = [row for row in sel["rows"] if row["lane"] == "RED"]
    per_office = Counter(row["office"] for row in red)
    offices = Counter(day_rows["office"].to_list())
    assert all(per_office[o] == min(3, n) for o, n in offices.items())  # filled, never exceeded
    assert sel["n_selected"] == len(red) == sum(min(3, n) for n in offices.values())
    assert {row["reason"] for row in red} <= {"RULE", "SCORE", "EXPLORE"}
    assert "EXPLORE" in {row["reason"] for row in red}
    watch_hits = [row for row in sel["rows"] if row["rule_hits"]]
    assert all(row["lane"] in ("RED", "AMBER") for row in watch_hits)
    assert sum(sel["lanes"].values()) == day_rows.height

    # stored: the day's latest selection reads back the same
    got = client.get(f"{OPS}/selections", params={"day": str(DAY)}, headers=officer.headers).json()
    assert [s["id"] for s in got] == [sel["id"]] and got[0]["n_selected"] == sel["n_selected"]
    # a share of the day per office
    r = post(
        officer, f"{OPS}/selections", {"day": str(DAY), "capacity": "10%/office", "exploration_share": 0}
    )
    share = r.json()
    assert share["n_selected"] == sum(int(n * 0.1 + 1e-9) for n in offices.values())
    # bad capacity: clear error
    r = post(officer, f"{OPS}/selections", {"day": str(DAY), "capacity": "lots"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "capacity"
    r = post(officer, f"{OPS}/selections", {"day": "2025-01-01", "capacity": "5"})
    assert r.status_code == 422 and "no consignment" in r.json()["errors"][0]["message"]


def test_inspection_feedback_retrain_new_model_version_and_api_score(
    client, post, ingest, world, database_url, monkeypatch, tmp_path, signed_in
):
    officer = world["fr_officer"]
    history = stream(2000, seed=2, start="2025-03-01", days=40, labels="full")
    ingest(officer, history)
    today = stream(300, seed=9, start="2025-05-19", days=3, labels="none")
    ingest(officer, today)

    # no model yet: rules only, the score is empty
    first = today.row(0, named=True)
    body = {
        "operation": OP,
        "consignment": {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in first.items()},
    }
    r = post(officer, f"{API}/score", body)
    assert r.status_code == 200, r.text
    assert r.json()["score"] is None and r.json()["model_version"] is None

    # select and record inspection results, one a seizure linked to its case
    sel = post(officer, f"{OPS}/selections", {"day": "2025-05-20", "capacity": "4"}).json()
    red = [row["consignment_id"] for row in sel["rows"] if row["lane"] == "RED"]
    assert len(red) == 4
    case = client.post(f"/api/v1/operations/{OP}/cases", json=case_payload(), headers=officer.headers)
    assert case.status_code == 201, case.text
    r = post(
        officer,
        f"{OPS}/consignments/{red[0]}/inspection",
        {"outcome": "seizure", "case_id": case.json()["id"]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["commodity_code"] == "MED-WEIGHT"  # taken from the case's first seizure
    r = post(officer, f"{OPS}/consignments/{red[1]}/inspection", {"outcome": "nothing_found"})
    assert r.status_code == 201
    assert (
        post(officer, f"{OPS}/consignments/{red[1]}/inspection", {"outcome": "nothing_found"}).status_code
        == 409
    )
    r = post(officer, f"{OPS}/consignments/{red[2]}/inspection", {"outcome": "seizure"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "case_id"
    # another administration cannot record on FR's consignment (it does not even see it)
    r = post(world["de_officer"], f"{OPS}/consignments/{red[2]}/inspection", {"outcome": "nothing_found"})
    assert r.status_code == 404

    perf = client.get(f"{OPS}/performance", headers=officer.headers).json()
    week = [w for w in perf["weeks"] if w["selected"]]
    assert week and week[-1]["inspected"] == 2 and week[-1]["seizures"] == 1 and week[-1]["precision"] == 0.5

    # retrain FR's model from the CLI (as the operation's coordinator): a new model version is registered
    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    get_settings.cache_clear()
    from stopnet.cli import app as cli

    out = tmp_path / "model.zip"
    result = CliRunner().invoke(
        cli,
        ["risk", "retrain", "--operation", OP, "--for", "FR-CUS", "--out", str(out), "--max-rounds", "30"],
    )
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert out.exists() and report["model_version"].startswith("consignment-lgbm-")
    assert (
        report["labelled"] == 2002 and report["validation"]["n"] > 0 and 0 <= report["validation"]["auc"] <= 1
    )
    assert report["train_until"] < report["validation_from"]
    # validation: every inspected consignment declared from validation_from on, and its seizures
    cut = dt.date.fromisoformat(report["validation_from"])
    recent = history.filter(pl.col("declared_at").cast(pl.Date) >= cut)
    assert report["validation"]["n"] == recent.height + 2  # and the two results recorded above
    assert report["validation"]["seizures"] == int(recent.get_column("seized").sum()) + 1
    models = client.get(f"{OPS}/models", headers=world["coordinator"].headers).json()
    assert [m["active"] for m in models] == [True] and models[0]["version"] == report["model_version"]
    assert models[0]["metrics"]["validation"]["seizures"] == report["validation"]["seizures"]
    assert models[0]["org_code"] == report["org_code"] == "FR-CUS" and not models[0]["shared"]
    # FR sees its own model; another administration neither sees it nor is scored by it
    assert [m["version"] for m in client.get(f"{OPS}/models", headers=officer.headers).json()] == [
        report["model_version"]
    ]
    assert client.get(f"{OPS}/models", headers=world["de_officer"].headers).json() == []
    # the performance page says what the validation figures rest on, greyed when too few seizures
    seizures = report["validation"]["seizures"]
    page = signed_in(officer).get(f"/operations/{OP}/targeting/performance", headers=HTML)
    assert page.status_code == 200
    assert f"{report['validation']['n']} / {seizures}" in page.text
    assert ("too few seizures to rely on" in page.text) == (seizures < MIN_VALIDATION_SEIZURES)

    # scores now name the model version, with explanations
    run = post(officer, f"{OPS}/scoring", {"day": "2025-05-20"}).json()
    assert run["model_version"] == report["model_version"] and run["scored"] == sel["n_consignments"]
    stored = client.get(f"{OPS}/consignments/{red[3]}/score", headers=officer.headers).json()
    assert stored["model_version"] == report["model_version"] and 0 <= stored["score"] <= 1
    assert len(stored["explanation"]) == 3 and {"feature", "value", "contribution"} <= set(
        stored["explanation"][0]
    )

    # the single-consignment API (features built row by row) gives the stored batch score exactly
    same = today.filter(pl.col("consignment_id") == red[3]).row(0, named=True)
    one = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in same.items()}
    r = post(officer, f"{API}/score", {"operation": OP, "consignment": one})
    assert r.status_code == 200, r.text
    assert r.json()["score"] == stored["score"] and r.json()["explanation"] == stored["explanation"]

    # single-consignment scoring: score, lane, explanation, model version (names pseudonymised, not echoed)
    rec = dict(body["consignment"])
    rec.pop("sender_id")
    rec["sender_name"] = "Shenzhen Example Trading Co"
    r = post(officer, f"{API}/score", {"operation": OP, "consignment": rec})
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["model_version"] == report["model_version"] and 0 <= got["score"] <= 1
    assert got["lane"] in ("GREEN", "AMBER") and len(got["explanation"]) == 3
    assert "Shenzhen" not in r.text
    bad = post(officer, f"{API}/score", {"operation": OP, "consignment": {**rec, "origin_country": "China"}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "origin_country"

    # a retrained model can also be scored by the coordinator for an administration
    r = post(
        world["coordinator"],
        f"{API}/score",
        {"operation": OP, "org_code": "FR-CUS", "consignment": body["consignment"]},
    )
    assert r.status_code == 200 and r.json()["model_version"] == report["model_version"]

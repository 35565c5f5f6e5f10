"""The commands under ``stopnet risk``: ingest a file (names pseudonymised) and propose rules."""

from __future__ import annotations

import json

import polars as pl
from sqlalchemy import select
from typer.testing import CliRunner

from stopnet.config import get_settings
from stopnet.core.keys import pseudonym_master as master_key
from stopnet.db.models.targeting import Consignment
from stopnet.risk.consignments import pseudonymise
from stopnet.targeting.service import org_key

from .conftest import OP
from .test_proposals import _block


def _cli(monkeypatch, database_url, tmp_path, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    monkeypatch.setenv("STOPNET_PSEUDONYM_KEY", "test-pseudonym-key")
    monkeypatch.setenv("STOPNET_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    from stopnet.cli import app as cli

    try:
        return CliRunner().invoke(cli, list(args))
    finally:
        get_settings.cache_clear()


def test_ingest_a_file_pseudonymises_names_then_propose(monkeypatch, database_url, tmp_path, world, db):
    frame = pl.concat(
        [
            _block(21, 40, "CN", "300490", __import__("datetime").date(2025, 4, 1), 40, seized=2),
            _block(22, 20, "CN", "300490", __import__("datetime").date(2025, 5, 18), 12, seized=12),
        ]
    )
    names = [f"Sender Company {i % 7}" for i in range(frame.height)]
    frame = frame.drop("sender_id").with_columns(
        pl.Series("sender_name", names), pl.lit("extra").alias("remark")
    )
    path = tmp_path / "consignments.csv"
    frame.write_csv(path)
    r = _cli(
        monkeypatch, database_url, tmp_path, "risk", "ingest", str(path), "--operation", OP, "--as", "FR-CUS"
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["stored"] == 60 and out["inspections_recorded"] == 60 and out["ignored_columns"] == ["remark"]
    stored = db.scalars(select(Consignment.sender_id)).all()
    key = org_key(b"test-pseudonym-key", "FR-CUS")
    assert set(stored) == {pseudonymise(f"Sender Company {i}", key) for i in range(7)}
    assert master_key(get_settings().model_copy(update={"pseudonym_key": "k"})) == b"k"
    # again: nothing new
    r = _cli(
        monkeypatch, database_url, tmp_path, "risk", "ingest", str(path), "--operation", OP, "--as", "FR-CUS"
    )
    assert json.loads(r.output)["already_stored"] == 60
    # a bad file: the column and the reason
    bad = tmp_path / "bad.csv"
    frame.with_columns(pl.lit("China").alias("origin_country")).write_csv(bad)
    r = _cli(
        monkeypatch, database_url, tmp_path, "risk", "ingest", str(bad), "--operation", OP, "--as", "FR-CUS"
    )
    assert r.exit_code == 2 and "origin_country" in r.output and "not an ISO-2 code" in r.output

    r = _cli(
        monkeypatch,
        database_url,
        tmp_path,
        "risk",
        "propose",
        "--operation",
        OP,
        "--as",
        "FR-CUS",
        "--today",
        "2025-05-30",
    )
    assert r.exit_code == 0, r.output
    proposals = json.loads(r.output)
    assert [(p["origin_country"], p["commodity_group"], p["kind"]) for p in proposals] == [
        ("CN", "medicines", "new")
    ]

"""Fixtures of the risk-targeting tests: simulated consignments as API records, and helpers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import pytest

from stopnet.risk.simulation import generate_consignments

OP = "TEST-OP"
API = "/api/v1/targeting"
OPS = f"{API}/operations/{OP}"


def records(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """A frame of consignments as JSON records (ISO dates), as an API client sends them."""
    out = []
    for row in frame.iter_rows(named=True):
        rec = {}
        for k, v in row.items():
            if isinstance(v, dt.datetime | dt.date):
                v = v.isoformat()
            rec[k] = v
        out.append(rec)
    return out


def stream(n: int = 600, seed: int = 1, start: str = "2025-05-12", days: int = 10, **kw: Any) -> pl.DataFrame:
    return generate_consignments(n, start=start, days=days, seed=seed, **kw)


@pytest.fixture
def post(client):  # type: ignore[no-untyped-def]
    """``post(actor, path, body)``: POST JSON with the actor's API token; returns the response."""

    def do(actor: Any, path: str, body: Any):  # type: ignore[no-untyped-def]
        return client.post(path, json=body, headers=actor.headers)

    return do


@pytest.fixture
def ingest(post):  # type: ignore[no-untyped-def]
    """``ingest(actor, frame_or_records, org_code=None)``: store consignments through the API (201)."""

    def do(actor: Any, data: Any, org_code: str | None = None) -> dict[str, Any]:
        recs = records(data) if isinstance(data, pl.DataFrame) else data
        body: dict[str, Any] = {"operation": OP, "consignments": recs}
        if org_code:
            body["org_code"] = org_code
        r = post(actor, f"{API}/consignments", body)
        assert r.status_code == 201, r.text
        return r.json()

    return do

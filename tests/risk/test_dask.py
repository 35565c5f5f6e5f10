"""Scoring on a Dask cluster writes exactly what a local run writes."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

distributed = pytest.importorskip("distributed")

from stopnet.risk.pipeline import score_file, train_consignment_model  # noqa: E402
from stopnet.risk.rules import Rule  # noqa: E402
from stopnet.risk.simulation import generate_consignments  # noqa: E402

RULES = [
    Rule(
        "R-SWIFT",
        "SwiftXpress footwear",
        'carrier == "SwiftXpress" and description ~ "shoe|sneaker|gift"',
        weight=2,
    ),
    Rule("R-PEN", "pens via TR", 'departure_country == "TR" and description ~ "pen"', weight=1.5),
    Rule("R-LIST", "watch list", "sender_id in @watch", weight=4),
]


@pytest.fixture(scope="module")
def cluster_client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, list[str]]]:
    tmp = tmp_path_factory.mktemp("dask")
    train = generate_consignments(40_000, start="2026-01-05", days=28, seed=11, inspection_rate=0.3)
    model_path = tmp / "model.zip"
    train_consignment_model(train, seed=1).save(model_path)
    data = generate_consignments(24_000, start="2026-02-02", days=7, seed=12)
    input_path = tmp / "input.parquet"
    data.write_parquet(input_path, row_group_size=2000)
    lists = {"watch": data["sender_id"].unique().sort().head(5).to_list()}
    return model_path, input_path, lists


@pytest.mark.parametrize("capacity", ["1%", "3%/day/office", "40/office"])
def test_dask_output_is_identical_to_local(cluster_client, setup, capacity: str) -> None:
    model_path, input_path, lists = setup
    local = input_path.with_name(f"local-{capacity.replace('/', '_')}.parquet")
    remote = input_path.with_name(f"dask-{capacity.replace('/', '_')}.parquet")
    kwargs = {"rules": RULES, "lists": lists, "chunk_rows": 5000, "seed": 5, "keep_columns": ["office"]}
    rep_local = score_file(model_path, input_path, local, capacity, **kwargs)
    rep_dask = score_file(model_path, input_path, remote, capacity, dask_scheduler=cluster_client, **kwargs)
    assert rep_dask.dask and not rep_local.dask
    assert rep_local.chunks == rep_dask.chunks > 2
    a, b = pl.read_parquet(local), pl.read_parquet(remote)
    assert a.height == 24_000
    assert a.equals(b)  # scores, rule hits, lanes, reasons and explanations, bit for bit
    assert (a["lane"] == "RED").sum() == rep_local.selected > 0
    assert a.filter(pl.col("lane") == "RED")["explanation"].null_count() == 0


def test_dask_by_scheduler_address(cluster_client, setup) -> None:
    model_path, input_path, lists = setup
    local = input_path.with_name("addr-local.parquet")
    remote = input_path.with_name("addr-dask.parquet")
    score_file(model_path, input_path, local, "2%", rules=RULES, lists=lists, chunk_rows=8000)
    address = cluster_client.scheduler.address
    score_file(
        model_path,
        input_path,
        remote,
        "2%",
        rules=RULES,
        lists=lists,
        chunk_rows=8000,
        dask_scheduler=address,
    )
    assert pl.read_parquet(local).equals(pl.read_parquet(remote))

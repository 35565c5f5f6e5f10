"""Benchmark: single-consignment scoring through the API (``POST /api/v1/targeting/score``).

1. builds a fresh database (SQLite by default, ``--backend postgres`` for PostgreSQL) with an operation,
   a customs administration and its officer's API token; stores 3,000 simulated consignments with
   inspection results, retrains the model from them (``targeting.service.retrain``, as the coordinator)
   and activates 2 risk profiles;
2. serves the application with uvicorn on 127.0.0.1 (a process of its own, one worker) and sends
   ``--requests`` consignments one at a time over one keep-alive HTTP connection (after 100 warm-up
   requests; 4 API tokens used in turn, as one token is limited to 1,200 requests a minute): authentication, operation and rules lookups, the warm model, rules, top-3 explanation;
3. in the same run, scores the same rows with the bare in-process call
   (``stopnet.risk.pipeline.ConsignmentScorer`` with the same model, rules and top-3 explanation).

Prints p50 / p95 / p99 latency of both and their ratio. Target: p99 <= 20 ms through HTTP.

    .venv/bin/python benchmarks/risk_api.py [--requests 2000] [--backend sqlite|postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, bench_sessions, free_port, fresh_database, machine, table, versions, wait_healthy

OP = "BENCH-OP"


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def as_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if isinstance(v, dt.date | dt.datetime) else v) for k, v in row.items()}


def seed(url: str, tmp: Path) -> tuple[list[str], list[Any], Any]:
    """Organisations, the operation, a token; stored consignments, a retrained model, 2 active rules."""
    from sqlalchemy import select

    from stopnet.access.service import cli_principal, create_token
    from stopnet.db.engine import make_engine, session_scope
    from stopnet.db.models import (
        Operation,
        OperationStatus,
        Organisation,
        OrgKind,
        Participant,
        ParticipantRole,
        Role,
        User,
    )
    from stopnet.risk.simulation import generate_consignments
    from stopnet.targeting import service
    from stopnet.targeting.schemas import RuleCreate

    engine = make_engine(url)
    factory = bench_sessions(engine)
    with session_scope(factory) as s:
        coord = Organisation(code="WCO-OCU", name="WCO OCU", kind=OrgKind.COORDINATOR)
        fr = Organisation(code="FR-CUS", name="France Customs", kind=OrgKind.CUSTOMS, country_code="FR")
        s.add_all([coord, fr])
        s.flush()
        op = Operation(
            code=OP,
            name="Benchmark",
            starts_on=dt.date(2025, 1, 1),
            ends_on=dt.date(2025, 12, 31),
            status=OperationStatus.ACTIVE,
            coordinator_org_id=coord.id,
        )
        s.add(op)
        s.flush()
        s.add_all(
            [
                Participant(operation_id=op.id, org_id=coord.id, role=ParticipantRole.COORDINATOR),
                Participant(operation_id=op.id, org_id=fr.id, role=ParticipantRole.MEMBER),
            ]
        )
        user = User(
            org_id=fr.id,
            email="officer@bench.test",
            display_name="officer",
            role=Role.OFFICER,
            password_hash="x",
        )
        s.add(user)
        s.flush()
        # several tokens, used in turn: one token is limited to 1,200 requests a minute (access/ratelimit.py)
        tokens = [create_token(s, None, fr, f"bench {i}", Role.OFFICER, user=user)[1] for i in range(4)]
    history = generate_consignments(3000, start="2025-03-01", days=40, seed=2, labels="full")
    with session_scope(factory) as s:
        op = s.scalar(select(Operation).where(Operation.code == OP))
        assert op is not None
        officer = cli_principal(s, "FR-CUS", Role.OFFICER)
        service.ingest_frame(s, officer, op, history, b"bench-key")
        for code, expr in (
            ("WATCH", 'origin_country in ("CN", "HK") and description ~ "watch"'),
            ("CHEAP", 'declared_value / weight_kg < 5 and channel == "EXPRESS"'),
        ):
            rule = service.create_rule(
                s, officer, op, RuleCreate(code=code, name=code, expression=expr, weight=1.0)
            )
            service.test_rule(s, officer, op, rule.id)
            service.activate_rule(s, officer, op, rule.id)
        coordinator = cli_principal(s, "WCO-OCU", Role.COORDINATOR)
        report = service.retrain(s, coordinator, op, tmp / "model.zip", max_rounds=80)
        rules = service.active_rules(s, op.id, fr.id)
    engine.dispose()
    print(f"model {report.model_version}: validation AUC {report.validation.get('auc', float('nan')):.3f}")
    from stopnet.risk.model import RiskModel

    return tokens, rules, RiskModel.load(tmp / "model.zip")


def serve(url: str, port: int, tmp: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "STOPNET_DATABASE_URL": url,
        "STOPNET_DATA_DIR": str(tmp),
        "STOPNET_SECRET_KEY": "bench",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "stopnet.web.app:create_app", "--host", "127.0.0.1",
           "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    args = ap.parse_args()

    import httpx2

    from stopnet.risk.pipeline import ConsignmentScorer
    from stopnet.risk.simulation import generate_consignments

    print(f"machine: {machine()}; load average {os.getloadavg()[0]:.1f}")
    print(f"versions: {versions('uvicorn', 'fastapi', 'lightgbm', 'polars', 'sqlalchemy')}")
    rows = [
        as_json(r)
        for r in generate_consignments(
            args.requests, start="2025-05-01", days=5, seed=7, labels="none"
        ).iter_rows(named=True)
    ]
    with tempfile.TemporaryDirectory(prefix="stopnet-risk-api-") as d, fresh_database(args.backend) as url:
        tmp = Path(d)
        tokens, rules, model = seed(url, tmp)
        port = free_port()
        proc = serve(url, port, tmp)
        try:
            http_ms: list[float] = []
            auth = [{"Authorization": f"Bearer {t}"} for t in tokens]
            with httpx2.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
                for i, row in enumerate(rows[:100]):  # warm-up: first model load, connection, caches
                    body = {"operation": OP, "consignment": row}
                    r = client.post("/api/v1/targeting/score", json=body, headers=auth[i % len(auth)])
                    assert r.status_code == 200, r.text
                versions_seen = set()
                for i, row in enumerate(rows):
                    body = {"operation": OP, "consignment": row}
                    t = time.perf_counter()
                    r = client.post("/api/v1/targeting/score", json=body, headers=auth[i % len(auth)])
                    http_ms.append((time.perf_counter() - t) * 1000)
                    assert r.status_code == 200, r.text
                    versions_seen.add(r.json()["model_version"])
            assert versions_seen == {model.version}, versions_seen
        finally:
            proc.terminate()
            proc.wait(timeout=20)
        scorer = ConsignmentScorer(model, rules, explain_top_k=3)
        for row in rows[:100]:
            scorer(row)
        bare_ms: list[float] = []
        for row in rows:
            t = time.perf_counter()
            scorer(row)
            bare_ms.append((time.perf_counter() - t) * 1000)
    out = []
    for name, v in (
        ("HTTP POST /api/v1/targeting/score (uvicorn, 1 worker)", http_ms),
        ("bare ConsignmentScorer call", bare_ms),
    ):
        out.append(
            [name, f"{percentile(v, 0.5):.2f}", f"{percentile(v, 0.95):.2f}", f"{percentile(v, 0.99):.2f}"]
        )
    ratio = [percentile(http_ms, q) / percentile(bare_ms, q) for q in (0.5, 0.95, 0.99)]
    out.append(["ratio HTTP / bare", *(f"{x:.2f}" for x in ratio)])
    print(f"{args.requests} requests, backend {args.backend}, load average {os.getloadavg()[0]:.1f}")
    print(table(["measure", "p50 ms", "p95 ms", "p99 ms"], out))
    print(f"target p99 <= 20 ms: {'met' if percentile(http_ms, 0.99) <= 20 else 'NOT met'}")


if __name__ == "__main__":
    main()

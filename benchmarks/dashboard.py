"""Benchmark: the operation dashboard's JSON endpoints at 1,000,000 seizures vs the bare SQL aggregates.

    .venv/bin/python benchmarks/dashboard.py                        # 1,000,000 seizures (≈615,000 cases)
    .venv/bin/python benchmarks/dashboard.py --seizures 100000      # smaller
    .venv/bin/python benchmarks/dashboard.py --reuse                # keep the loaded database between runs

1. creates a fresh PostgreSQL database (``--server``, default the local one; ``--database``), builds the
   schema from the migrations and loads one operation with ``--seizures`` seizures in ≈0.6 as many cases,
   with COPY (generated with numpy: 119 reporting administrations, 19 days, category, brand, route,
   channel, status and visibility mixes; 2 % drafts, which the dashboard must leave out);
2. serves the application with uvicorn on 127.0.0.1 (a process of its own, one worker) and calls it
   with httpx2 as an officer of one administration (the visibility clause applies), end to end over HTTP:
   the whole dashboard in one request (``/api/v1/operations/{code}/dashboard``) and as one request per
   panel (``.../dashboard/{panel}``, twelve), ``--repeat`` times each after ``--warmup`` calls; then
   ``--cold-repeat`` requests whose summary does not exist yet (a filter never asked before), which
   therefore run the aggregate scans;
3. in the same run, times the bare SQL aggregates for the same viewer and filters: the same GROUP BYs,
   with the viewer's ``case_read_clause`` in the WHERE, on a plain connection (no HTTP, no Python);
4. prints p50/p95 of each and the ratios, for no filter and for one region + e-commerce only; then
   changes a case three times and times the first request after each change (answered at once from
   the previous summary while a background thread rebuilds it) and the wait for the new figures.

Targets (issue 4): p95 ≤ 250 ms for the whole dashboard at 1 M seizures, within 2× of bare SQL.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import io
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2
import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from _common import bench_sessions, free_port, wait_healthy  # noqa: E402
from sqlalchemy import create_engine, select, text  # noqa: E402

from stopnet.access.service import create_token, principal_for  # noqa: E402
from stopnet.db.engine import make_engine  # noqa: E402
from stopnet.db.migrate import upgrade  # noqa: E402
from stopnet.db.models import (  # noqa: E402
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    User,
    Visibility,
)
from stopnet.reference import get_reference  # noqa: E402

CODE = "BENCH-STOP"
START = dt.date(2025, 5, 12)
DAYS = 19

ORIGINS = {"CN": 40, "HK": 14, "IN": 8, "TR": 7, "AE": 5, "SG": 4, "TH": 3, "VN": 3, "PK": 2, "US": 3}
CHANNELS_ECOM = {"POSTAL": 55, "EXPRESS": 45}
CHANNELS_OTHER = {
    "AIR_CARGO": 30,
    "SEA_CARGO": 15,
    "ROAD_CARGO": 20,
    "RAIL_CARGO": 5,
    "PASSENGER": 25,
    "OTHER": 5,
}
MODE_OF = {
    "POSTAL": "AIR",
    "EXPRESS": "AIR",
    "AIR_CARGO": "AIR",
    "SEA_CARGO": "SEA",
    "ROAD_CARGO": "ROAD",
    "RAIL_CARGO": "RAIL",
    "PASSENGER": "AIR",
    "OTHER": "UNKNOWN",
}
DETECTION = {
    "RISK_PROFILE": 35,
    "XRAY": 20,
    "INTELLIGENCE": 8,
    "RANDOM": 10,
    "RIGHTS_HOLDER_ALERT": 6,
    "PLATFORM_NOTICE": 3,
    "DOCUMENT_CHECK": 8,
    "PHYSICAL_INSPECTION": 7,
    "DETECTOR_DOG": 2,
    "OTHER": 1,
}


def _pick(rng: np.random.Generator, weights: dict[str, float], n: int) -> np.ndarray:
    keys = np.array(list(weights))
    p = np.array(list(weights.values()), dtype=float)
    return keys[rng.choice(len(keys), size=n, p=p / p.sum())]


def generate(n_seizures: int, seed: int = 4) -> tuple[list[tuple[str, str, str]], pl.DataFrame, pl.DataFrame]:
    """Administrations (code, country, region), cases and seizures, as polars frames ready for COPY."""
    rng = np.random.default_rng(seed)
    ref = get_reference()
    members = sorted(ref.wco_members)
    countries = [c for c in members if ref.region_of(c)][:119]
    admins = [(f"{c}-CUS", c, ref.region_of(c) or "") for c in countries]
    # cases per seizure ≈ 0.6: 1 seizure (60 %), 2 (25 %), 3 (10 %), 4-6 (5 %)
    per_case = rng.choice(
        [1, 2, 3, 4, 5, 6], size=int(n_seizures / 1.6) + 1000, p=[0.6, 0.25, 0.1, 0.03, 0.015, 0.005]
    )
    cum = np.cumsum(per_case)
    n_cases = int(np.searchsorted(cum, n_seizures) + 1)
    per_case = per_case[:n_cases]
    per_case[-1] -= int(cum[n_cases - 1] - n_seizures)
    # administrations: heavy-tailed activity
    activity = rng.pareto(1.2, len(admins)) + 0.05
    org_idx = rng.choice(len(admins), size=n_cases, p=activity / activity.sum())
    day_w = np.array(
        [
            min(1.0, 0.3 + 0.12 * d) * (0.6 if (START + dt.timedelta(d)).weekday() >= 5 else 1.0)
            for d in range(DAYS)
        ]
    )
    day = rng.choice(DAYS, size=n_cases, p=day_w / day_w.sum())
    is_ecom = rng.random(n_cases) < 0.63
    channel = np.where(is_ecom, _pick(rng, CHANNELS_ECOM, n_cases), _pick(rng, CHANNELS_OTHER, n_cases))
    mode = np.vectorize(MODE_OF.get)(channel)
    status = _pick(rng, {"validated": 80, "submitted": 18, "draft": 2}, n_cases)
    visibility = _pick(rng, {"participants": 80, "partners": 10, "own": 5, "coordinator": 5}, n_cases)
    origin = _pick(rng, ORIGINS, n_cases)
    hub = _pick(rng, {"": 60, "HK": 12, "AE": 10, "SG": 6, "TR": 6, "NL": 6}, n_cases)
    departure = np.where(hub == "", origin, hub)
    country = np.array([a[1] for a in admins])[org_idx]
    region = np.array([a[2] for a in admins])[org_idx]
    detection = _pick(rng, DETECTION, n_cases)
    dates = (np.datetime64(START) + day.astype("timedelta64[D]")).astype("datetime64[D]")
    cases = pl.DataFrame(
        {
            "id": np.arange(1, n_cases + 1),
            "org_idx": org_idx,
            "reference": [f"B-{i:07d}" for i in range(1, n_cases + 1)],
            "status": status,
            "visibility": visibility,
            "detected_on": dates,
            "reporting_country": country,
            "region_code": region,
            "transport_mode": mode,
            "is_ecommerce": is_ecom,
            "channel": channel,
            "departure_country": departure,
            "origin_country": origin,
            "destination_country": country,
            "detection_method": detection,
        }
    )
    # seizures
    case_id = np.repeat(cases["id"].to_numpy(), per_case)
    line_no = (
        np.concatenate([np.arange(1, k + 1) for k in per_case])
        if n_cases < 50_000
        else _line_numbers(per_case)
    )
    codes = list(ref.commodities)
    w = np.array(
        [
            5.0
            if c.startswith("IPR-CLOTH")
            else 3.0
            if c.startswith("IPR")
            else 2.0
            if c.startswith("MED")
            else 1.5
            for c in codes
        ]
    )
    commodity = np.array(codes)[rng.choice(len(codes), size=n_seizures, p=w / w.sum())]
    group_of = {c: ref.commodities[c].group for c in codes}
    group = np.vectorize(group_of.get)(commodity)
    brands = np.array(["", *[f"Brand {i:03d}" for i in range(400)]])
    bw = np.concatenate([[300.0], 1.0 / np.arange(1, 401) ** 0.9])
    brand = brands[rng.choice(len(brands), size=n_seizures, p=bw / bw.sum())]
    pieces = np.maximum(0, rng.lognormal(2.5, 1.9, n_seizures)).astype(np.int64)
    weight = np.round(rng.lognormal(0.5, 1.6, n_seizures), 3)
    seizures = pl.DataFrame(
        {
            "id": np.arange(1, n_seizures + 1),
            "case_id": case_id,
            "line_no": line_no,
            "commodity_code": commodity,
            "commodity_group": group,
            "brand": brand,
            "pieces": pieces,
            "weight_kg": weight,
        }
    )
    return admins, cases, seizures


def _line_numbers(per_case: np.ndarray) -> np.ndarray:
    starts = np.repeat(np.cumsum(per_case) - per_case, per_case)
    return np.arange(int(per_case.sum())) - starts + 1


def create_database(server: str, name: str) -> str:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = server.rsplit("/", 1)[0] + "/" + name
    upgrade(url)
    return url


def _copy(raw: Any, table: str, df: pl.DataFrame) -> None:
    buf = io.BytesIO()
    df.write_csv(buf, include_header=False, null_value="")
    cols = ", ".join(df.columns)
    with raw.cursor() as cur, cur.copy(f"COPY {table} ({cols}) FROM STDIN WITH (FORMAT csv)") as cp:
        cp.write(buf.getvalue())


def load(url: str, n_seizures: int) -> None:
    """Load the operation, its administrations and their cases and seizures."""
    t0 = time.perf_counter()
    admins, cases, seizures = generate(n_seizures)
    t_gen = time.perf_counter() - t0
    engine = make_engine(url)
    with bench_sessions(engine)() as s:
        orgs = [
            Organisation(
                code=code, name=f"{code} customs", kind=OrgKind.CUSTOMS, country_code=c, region_code=r
            )
            for code, c, r in admins
        ]
        ocu = Organisation(code="WCO-OCU", name="WCO OCU", kind=OrgKind.COORDINATOR)
        s.add_all([*orgs, ocu])
        s.flush()
        op = Operation(
            code=CODE,
            name="Benchmark operation",
            starts_on=START,
            ends_on=START + dt.timedelta(DAYS - 1),
            status=OperationStatus.ACTIVE,
            default_visibility=Visibility.PARTICIPANTS,
            coordinator_org_id=ocu.id,
            phases=[
                OperationPhase(
                    name="Operational phase",
                    starts_on=START,
                    ends_on=START + dt.timedelta(DAYS - 1),
                    accepts_reports=True,
                )
            ],
        )
        s.add(op)
        s.flush()
        s.add(Participant(operation_id=op.id, org_id=ocu.id, role=ParticipantRole.COORDINATOR))
        s.add_all([Participant(operation_id=op.id, org_id=o.id, role=ParticipantRole.MEMBER) for o in orgs])
        s.commit()
        op_id, org_ids = op.id, [o.id for o in orgs]
    now = dt.datetime.now(dt.UTC).isoformat()
    org_id = np.array(org_ids)[cases["org_idx"].to_numpy()]
    c = cases.drop("org_idx").with_columns(
        pl.lit(op_id).alias("operation_id"),
        pl.Series("reporting_org_id", org_id),
        pl.lit(1).alias("version"),
        pl.lit("").alias("office"),
        pl.lit("").alias("place"),
        pl.lit("").alias("transit_countries"),
        pl.lit("NONE").alias("concealment"),
        pl.lit("").alias("platform_name"),
        pl.lit("").alias("consignee_name"),
        pl.lit("").alias("notes"),
        pl.when(pl.col("status") != "draft").then(pl.lit(now)).otherwise(None).alias("submitted_at"),
    )
    s_df = seizures.with_columns(
        pl.lit(op_id).alias("operation_id"),
        pl.lit("").alias("description"),
        pl.lit("").alias("rights_holder"),
        pl.lit("").alias("hs_code"),
        pl.lit("TRADEMARK").alias("infringement_type"),
        pl.lit("COUNTERFEIT").alias("nature"),
    )
    t1 = time.perf_counter()
    raw = engine.raw_connection()
    try:
        _copy(raw.driver_connection, "case_report", c)
        _copy(raw.driver_connection, "seizure", s_df)
        cur = raw.driver_connection.cursor()
        cur.execute("SELECT setval('case_report_id_seq', (SELECT max(id) FROM case_report))")
        cur.execute("SELECT setval('seizure_id_seq', (SELECT max(id) FROM seizure))")
        raw.driver_connection.commit()
        raw.driver_connection.autocommit = True
        cur.execute("VACUUM ANALYZE case_report")
        cur.execute("VACUUM ANALYZE seizure")
    finally:
        raw.close()
    engine.dispose()
    print(
        f"loaded {len(cases):,} cases and {len(seizures):,} seizures: generated in {t_gen:.1f} s, "
        f"COPY + VACUUM ANALYZE in {time.perf_counter() - t1:.1f} s"
    )


# ------------------------------------------------------------------------------------------ measuring


def viewers(url: str) -> dict[str, tuple[str, Any]]:
    """A fresh API token and the principal of each benchmark viewer (officer of FR, coordinator)."""
    engine = make_engine(url)
    out: dict[str, tuple[str, Any]] = {}
    with bench_sessions(engine)() as s:
        for name, org_code, role in (
            ("officer", "FR-CUS", Role.OFFICER),
            ("coordinator", "WCO-OCU", Role.COORDINATOR),
        ):
            org = s.scalar(select(Organisation).where(Organisation.code == org_code))
            assert org is not None
            email = f"{name}@bench.test"
            user = s.scalar(select(User).where(User.email == email))
            if user is None:
                user = User(org_id=org.id, email=email, display_name=name, role=role, password_hash="x")
                s.add(user)
                s.flush()
            user.password_hash = password_hash()
            user.failed_logins, user.locked_until = 0, None
            _, raw = create_token(s, None, org, f"bench {time.time()}", role, user=user)
            out[name] = (raw, principal_for(user, org))
        s.commit()
    engine.dispose()
    return out


PASSWORD = "benchmark password, not a secret"


@functools.cache
def password_hash() -> str:
    from stopnet.access.passwords import hash_password

    return hash_password(PASSWORD)


def signed_in(base_url: str, email: str) -> httpx2.Client:
    """A client signed in through the login form, as a browser is (session cookie)."""
    client = httpx2.Client(base_url=base_url, timeout=600)
    form = client.get("/login", headers={"Accept": "text/html"}).text
    m = re.search(r'name="csrf_token" value="([^"]*)"', form)
    assert m is not None
    r = client.post(
        "/login",
        data={"email": email, "password": PASSWORD, "csrf_token": m.group(1), "next": "/"},
        headers={"Accept": "text/html"},
    )
    assert r.status_code == 303, r.text
    return client


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def summary(values: list[float]) -> str:
    return (
        f"p50 {pct(values, 0.5) * 1000:8.1f} ms   p95 {pct(values, 0.95) * 1000:8.1f} ms   (n={len(values)})"
    )


def timed(fn: Any, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def bare_sql(url: str, principal: Any, query: dict[str, str], repeat: int) -> list[float]:
    """The panels' GROUP BYs for one viewer (its visibility clause in the WHERE), straight on a connection."""
    from stopnet.analytics import service
    from stopnet.analytics.api import parse_filters

    engine = make_engine(url)
    filters, errors = parse_filters(query)
    assert not errors
    with bench_sessions(engine)() as s:
        op = s.scalar(select(Operation).where(Operation.code == CODE))
        assert op is not None
        stmts = service.bare_statements(s, principal, op, filters, service.DEFAULT_RECENT_DAYS)

    def run() -> None:
        with engine.connect() as conn:
            conn.execute(text("SET LOCAL work_mem = '128MB'"))  # the same settings as the dashboard's
            conn.execute(text("SET LOCAL jit = off"))
            for st in stmts:
                conn.execute(st).all()
            conn.rollback()

    run()  # warm the buffers
    out = timed(run, repeat)
    engine.dispose()
    return out


def make_app() -> Any:
    """The application with the dashboard's routers (``uvicorn --factory dashboard:make_app``)."""
    from stopnet.analytics.api import router as api_router
    from stopnet.analytics.views import router as views_router
    from stopnet.web.app import create_app

    app = create_app()
    paths = {getattr(r, "path", None) for r in app.routes}
    if "/api/v1/operations/{code}/dashboard" not in paths:  # until web/app.py includes them
        app.include_router(api_router)
        app.include_router(views_router)
    return app


def serve(url: str, port: int, tmp: str) -> subprocess.Popen[bytes]:
    """uvicorn in a process of its own (one worker), so that client and server do not share a GIL."""
    env = {
        **os.environ,
        "STOPNET_DATABASE_URL": url,
        "STOPNET_DATA_DIR": tmp,
        "STOPNET_SECRET_KEY": "bench",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "dashboard:make_app", "--app-dir", str(ROOT / "benchmarks"),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    wait_healthy(f"http://127.0.0.1:{port}", proc)
    return proc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seizures", type=int, default=1_000_000)
    ap.add_argument(
        "--server",
        default=os.environ.get(
            "STOPNET_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    ap.add_argument("--database", default="stopnet_bench_dashboard")
    ap.add_argument("--reuse", action="store_true", help="keep an already loaded database")
    ap.add_argument("--repeat", type=int, default=30, help="timed calls of the warm endpoints")
    ap.add_argument("--warmup", type=int, default=3, help="untimed calls before the warm timings")
    ap.add_argument("--cold-repeat", type=int, default=3, help="timed calls that must rebuild the summary")
    ap.add_argument("--sql-repeat", type=int, default=5, help="timed runs of the bare SQL")
    args = ap.parse_args()

    from stopnet.analytics.schemas import PANELS

    server = args.server.replace("postgresql://", "postgresql+psycopg://", 1)
    url = server.rsplit("/", 1)[0] + "/" + args.database
    loaded = False
    if args.reuse:
        try:
            probe = create_engine(url)
            with probe.connect() as c:
                loaded = (c.scalar(text("SELECT count(*) FROM seizure")) or 0) >= args.seizures
            probe.dispose()
        except Exception:
            loaded = False
    if not loaded:
        url = create_database(server, args.database)
        load(url, args.seizures)
    else:
        upgrade(url)  # the schema at head (indexes of later migrations)
    who = viewers(url)
    token, officer = who["officer"]

    print(
        f"\n{platform.node()} · {os.cpu_count()} CPUs · Python {platform.python_version()} · {url.rsplit('@', 1)[-1]}"
    )
    probe = create_engine(url)
    with probe.connect() as c:
        n_cases = c.scalar(text("SELECT count(*) FROM case_report"))
        n_seizures = c.scalar(text("SELECT count(*) FROM seizure"))
        pg = c.scalar(text("SHOW server_version"))
    probe.dispose()
    print(
        f"PostgreSQL {pg}: {n_cases:,} cases, {n_seizures:,} seizures; load average {os.getloadavg()[0]:.1f}"
    )

    port = free_port()
    base = f"/api/v1/operations/{CODE}/dashboard"
    rows: list[tuple[str, list[float]]] = []
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        proc = serve(url, port, tmp)
        try:
            client = signed_in(f"http://127.0.0.1:{port}", "officer@bench.test")  # a person, signed in
            machine = httpx2.Client(  # a machine client: an API token
                base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}, timeout=600
            )
            for label, query in (
                ("no filter", {}),
                ("region=EUR, e-commerce", {"region": "EUR", "is_ecommerce": "true"}),
            ):
                qs = "&".join(f"{k}={v}" for k, v in query.items())
                cold_days = iter(range(1, 12))

                def whole(qs: str = qs) -> None:
                    r = client.get(f"{base}?{qs}")
                    assert r.status_code == 200, r.text

                def panels(qs: str = qs, client: httpx2.Client = client) -> None:
                    for name in PANELS:
                        r = client.get(f"{base}/{name}?{qs}")
                        assert r.status_code == 200, r.text

                def cold(qs: str = qs, days: Any = cold_days) -> None:
                    # a date_from before the operation's start: the same figures, but a summary never built
                    r = client.get(f"{base}?{qs}&date_from=2025-05-{next(days):02d}")
                    assert r.status_code == 200 and r.headers["x-data-fresh"] == "true", r.text

                cold_times = timed(cold, args.cold_repeat)
                for _ in range(args.warmup):
                    whole()
                    panels()
                whole_times = timed(whole, args.repeat)
                panel_times = timed(panels, args.repeat)
                token_times = timed(lambda qs=qs: panels(qs, machine), args.repeat)
                sql_times = bare_sql(url, officer, query, args.sql_repeat)
                rows += [
                    (f"[{label}] whole dashboard, 1 request", whole_times),
                    (f"[{label}] whole dashboard, {len(PANELS)} panel requests", panel_times),
                    (f"[{label}] the same with an API token", token_times),
                    (f"[{label}] cold: summary built for the request", cold_times),
                    (f"[{label}] bare SQL aggregates, same run", sql_times),
                ]
                results[label] = (whole_times, panel_times, cold_times, sql_times)

            # reports flowing in: a changed case makes the summary stale; the next request answers at once
            # with the previous figures while one background thread rebuilds it
            after_change: list[float] = []
            refresh_wait: list[float] = []
            engine = make_engine(url)
            for i in range(3):
                with engine.begin() as c:
                    c.execute(
                        text(
                            "UPDATE case_report SET version = version + 1, updated_at = now() "
                            "WHERE id = (SELECT min(id) + :i FROM case_report)"
                        ),
                        {"i": i},
                    )
                t0 = time.perf_counter()
                r = client.get(base)
                after_change.append(time.perf_counter() - t0)
                t1 = time.perf_counter()
                while client.get(f"{base}/key-figures").headers["x-data-fresh"] != "true":
                    time.sleep(0.05)
                refresh_wait.append(time.perf_counter() - t1)
                print(
                    f"change {i + 1}: first answer {'stale (previous figures)' if r.headers['x-data-fresh'] == 'false' else 'fresh'}"
                )
            engine.dispose()
            rows.append(("[no filter] first request after a change", after_change))
            rows.append(("[no filter] then: wait for the refreshed figures", refresh_wait))
            client.close()
            machine.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)

    print()
    for label, values in rows:
        print(f"{label:<58} {summary(values)}")
    print()
    for label, (whole_times, panel_times, cold_times, sql_times) in results.items():
        sql95 = pct(sql_times, 0.95)
        print(
            f"[{label}] p95 / bare SQL p95: 1 request {pct(whole_times, 0.95) / sql95:.3f}, "
            f"{len(PANELS)} panel requests {pct(panel_times, 0.95) / sql95:.3f}, cold {pct(cold_times, 0.95) / sql95:.2f}"
        )
    worst = max(pct(results[k][i], 0.95) for k in results for i in (0, 1))
    print(
        f"target p95 <= 250 ms for the whole dashboard (summary current): {'met' if worst <= 0.25 else 'NOT met'} ({worst * 1000:.0f} ms)"
    )


if __name__ == "__main__":
    main()

"""Benchmark: a realistic mix of traffic on `stopnet serve --workers 2` against PostgreSQL, for minutes.

    .venv/bin/python benchmarks/load.py                       # 5 minutes, the nominal mix below
    .venv/bin/python benchmarks/load.py --duration 60         # a short run
    .venv/bin/python benchmarks/load.py --viewers 100 --administrations 20 --duration 30

1. creates a fresh PostgreSQL database (``--server``, default the local one) built by the migrations: one
   operation, ``--administrations`` participating customs administrations (an officer's API token each),
   the coordinating unit, and ``--seed-cases`` cases already reported (the operation under way);
2. starts ``stopnet serve --workers 2`` on 127.0.0.1 (a free port), the real application and command;
3. baseline: ``GET /healthz`` alone (``--baseline-seconds``), the server's floor on this machine;
4. the run, ``--duration`` seconds, every virtual user a coroutine with a think time, its first request
   at a random moment of its first period (no thundering herd):

   * ``--administrations`` reporters each report a case (2 seizures, ``Idempotency-Key``) every
     ``--report-every`` s: ``POST /api/v1/operations/{code}/cases``;
   * ``--viewers`` dashboard viewers each load the dashboard JSON every ``--view-every`` s, one in four
     with a filter (``commodity_group`` or ``region``): ``GET /api/v1/operations/{code}/dashboard``;
   * ``--searchers`` analysts each list cases with filters every ``--search-every`` s
     (``GET /api/v1/operations/{code}/cases?...``);
   * ``--exporters`` each export the operation's cases as CSV every ``--export-every`` s
     (``GET /api/v1/operations/{code}/exports/cases.csv``, read to the end);
   * ``--subscribers`` live-feed subscribers hold an SSE stream open (``GET .../feed``) and count the
     events they receive; time to the stream's first byte is the latency; they connect at random
     moments of the first ``--feed-ramp`` seconds (``0``: all at once, a herd);
   * a probe sends ``GET /healthz`` every 0.2 s during the run: the baseline under the same load;

5. prints, per endpoint: requests, throughput, p50/p95/p99/max latency and errors (any answer that is
   not 2xx, or a transport error), next to the ``/healthz`` baseline, and the CPU used.

Target (issue 8): zero errors and p99 under 1 s at the nominal rate. Everything stays on 127.0.0.1; the
number of connections (``--max-connections``) and the duration are bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
from _common import (
    DEFAULT_PG_URL,
    ROOT,
    bench_sessions,
    free_port,
    fresh_database,
    machine,
    postgres_pids,
    postgres_server_version,
    process_cpu,
    table,
    versions,
    wait_healthy,
)

CODE = "BENCH-LOAD"
MAX_DURATION = 1800
COUNTRIES = ["FR", "DE", "KE", "BR", "IN", "JP", "US", "ZA", "EG", "AU"]
REGIONS = ["EUR", "EUR", "ESA", "AMS", "AP", "AP", "AMS", "ESA", "MENA", "AP"]
GOODS = [("MED-WEIGHT", "FALSIFIED"), ("IPR-FOOT", "COUNTERFEIT"), ("IPR-WATCH", "COUNTERFEIT")]


# ------------------------------------------------------------------------------------------ set-up


def case_body(reference: str, rng: random.Random) -> dict[str, Any]:
    code, nature = rng.choice(GOODS)
    return {
        "reference": reference,
        "detected_on": (dt.date(2025, 5, 12) + dt.timedelta(days=rng.randrange(19))).isoformat(),
        "office": "Express hub",
        "transport_mode": "AIR",
        "is_ecommerce": True,
        "channel": rng.choice(["EXPRESS", "POSTAL"]),
        "departure_country": "HK",
        "origin_country": "CN",
        "detection_method": "RISK_PROFILE",
        "consignee_name": f"Consignee {rng.randrange(10**6)}",
        "seizures": [
            {"commodity_code": code, "pieces": rng.randrange(1, 500), "weight_kg": "2.5", "nature": nature},
            {
                "commodity_code": "IPR-FOOT",
                "brand": "Runfast",
                "pieces": rng.randrange(1, 50),
                "weight_kg": "4",
            },
        ],
    }


def seed(url: str, administrations: int, cases: int) -> dict[str, list[str]]:
    """Operation, administrations with an officer token each, a coordinator token; ``cases`` reported."""
    from stopnet.access.service import create_token, principal_for
    from stopnet.db.engine import make_engine
    from stopnet.db.models import (
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
    from stopnet.reporting.schemas import CaseCreate
    from stopnet.reporting.service import create_case

    rng = random.Random(8)
    engine = make_engine(url)
    tokens: dict[str, list[str]] = {"officers": [], "coordinator": []}
    with bench_sessions(engine)() as s:
        coord = Organisation(code="WCO-OCU", name="Coordinating unit", kind=OrgKind.COORDINATOR)
        s.add(coord)
        s.flush()
        op = Operation(
            code=CODE,
            name="Load benchmark",
            starts_on=dt.date(2025, 5, 12),
            ends_on=dt.date(2025, 5, 30),
            status=OperationStatus.ACTIVE,
            default_visibility=Visibility.PARTICIPANTS,
            coordinator_org_id=coord.id,
            phases=[
                OperationPhase(
                    name="ops",
                    starts_on=dt.date(2025, 5, 12),
                    ends_on=dt.date(2025, 5, 30),
                    accepts_reports=True,
                )
            ],
        )
        s.add(op)
        s.flush()
        s.add(Participant(operation_id=op.id, org_id=coord.id, role=ParticipantRole.COORDINATOR))
        cu = User(
            org_id=coord.id,
            email="coord@bench.test",
            display_name="c",
            role=Role.COORDINATOR,
            password_hash="x",
        )
        s.add(cu)
        s.flush()
        tokens["coordinator"].append(create_token(s, None, coord, "bench", Role.COORDINATOR, user=cu)[1])
        principals = []
        for i in range(administrations):
            org = Organisation(
                code=f"C{i:03d}-CUS",
                name=f"Customs {i}",
                kind=OrgKind.CUSTOMS,
                country_code=COUNTRIES[i % len(COUNTRIES)],
                region_code=REGIONS[i % len(REGIONS)],
            )
            s.add(org)
            s.flush()
            s.add(Participant(operation_id=op.id, org_id=org.id, role=ParticipantRole.MEMBER))
            user = User(
                org_id=org.id,
                email=f"o{i}@bench.test",
                display_name=f"o{i}",
                role=Role.OFFICER,
                password_hash="x",
            )
            s.add(user)
            s.flush()
            tokens["officers"].append(create_token(s, None, org, "bench", Role.OFFICER, user=user)[1])
            principals.append(principal_for(user, org))
        s.commit()
        for n in range(cases):
            p = principals[n % len(principals)]
            create_case(s, p, op, CaseCreate.model_validate(case_body(f"SEED-{n:06d}", rng)))
            if n % 200 == 199:
                s.commit()
        s.commit()
    # planner statistics, as autovacuum keeps them on a database in service: without them the
    # dashboard's aggregate plans nested loops over the seeded rows (4.3 s instead of 0.03 s for 3,000
    # cases) until autovacuum's first ANALYZE, up to a minute into the run
    with engine.connect() as c:
        c.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE")
    engine.dispose()
    return tokens


@contextmanager
def serve(url: str, workers: int, data_dir: Path) -> Iterator[tuple[str, list[int]]]:
    """``stopnet serve --workers N`` on a free port; yields its base URL and the process ids."""
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "STOPNET_DATABASE_URL": url,
        "STOPNET_SECRET_KEY": "bench-secret",
        "STOPNET_DATA_DIR": str(data_dir),
        "STOPNET_FEED_BROKER": "postgres",
    }
    cmd = [
        sys.executable,
        "-m",
        "stopnet.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(base, proc, timeout=120, log=data_dir / "server.log")
        yield base, [proc.pid, *descendants(proc.pid)]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def descendants(pid: int) -> list[int]:
    """Process ids of ``pid``'s children, grandchildren, ... (from /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        kids = parents.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds (user + system) used so far by the processes ``pids`` together."""
    return sum(process_cpu(pid) for pid in pids)


# ------------------------------------------------------------------------------------------ the run


class Stats:
    def __init__(self) -> None:
        self.latency: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.samples: dict[str, str] = {}
        self.events = 0
        self.started = time.monotonic()
        # (seconds since the start when the answer came, latency) of every answer: the timeline below
        self.when: list[tuple[float, float]] = []

    def ok(self, name: str, seconds: float) -> None:
        self.latency[name].append(seconds)
        if "SSE" not in name:
            self.when.append((time.monotonic() - self.started, seconds))

    def timeline(self, window: float = 30.0) -> list[list[str]]:
        """p50 / p99 / max of the answers of each ``window`` seconds (feed streams left out): when the
        tail happens, not only how long it is."""
        buckets: dict[int, list[float]] = defaultdict(list)
        for at, seconds in self.when:
            buckets[int(at // window)].append(seconds)
        return [
            [
                f"{k * window:.0f}-{(k + 1) * window:.0f} s",
                str(len(v)),
                f"{pct(v, 0.5) * 1000:.0f}",
                f"{pct(v, 0.99) * 1000:.0f}",
                f"{max(v) * 1000:.0f}",
            ]
            for k, v in sorted(buckets.items())
        ]

    def error(self, name: str, what: str) -> None:
        self.errors[name] += 1
        self.samples.setdefault(name, what[:200])


async def timed(
    stats: Stats, name: str, client: httpx2.AsyncClient, method: str, url: str, **kw: Any
) -> None:
    t0 = time.perf_counter()
    try:
        r = await client.request(method, url, **kw)
        await r.aread()
    except httpx2.HTTPError as e:
        stats.error(name, f"{type(e).__name__}: {e}")
        return
    elapsed = time.perf_counter() - t0
    if 200 <= r.status_code < 300:
        stats.ok(name, elapsed)
    else:
        stats.error(name, f"{r.status_code} {r.text}")


async def every(period: float, until: float, rng: random.Random, action: Any) -> None:
    """Run ``action`` every ``period`` seconds (jittered ±10 %), the first at a random point of the first."""
    await asyncio.sleep(min(rng.random() * period, max(0.0, until - time.monotonic())))
    while time.monotonic() < until:
        t0 = time.monotonic()
        await action()
        pause = period * rng.uniform(0.9, 1.1) - (time.monotonic() - t0)
        await asyncio.sleep(max(0.0, min(pause, until - time.monotonic())))


async def subscriber(
    stats: Stats, client: httpx2.AsyncClient, url: str, token: str, until: float, delay: float
) -> None:
    """One live-feed subscriber: connects after ``delay`` seconds, then holds the stream to the end."""
    await asyncio.sleep(min(delay, max(0.0, until - time.monotonic())))
    headers = {"Authorization": f"Bearer {token}", "Accept": "text/event-stream"}
    t0 = time.perf_counter()
    first = True
    try:
        async with (
            asyncio.timeout(max(0.0, until - time.monotonic())),
            client.stream("GET", url, headers=headers, timeout=httpx2.Timeout(30, read=60)) as r,
        ):
            if r.status_code != 200:
                stats.error("GET feed (SSE, first byte)", f"{r.status_code}")
                return
            async for line in r.aiter_lines():
                if first:
                    stats.ok("GET feed (SSE, first byte)", time.perf_counter() - t0)
                    first = False
                if line.startswith("event: case."):
                    stats.events += 1
    except TimeoutError:
        if first:
            stats.error("GET feed (SSE, first byte)", "no byte before the end of the run")
    except httpx2.HTTPError as e:
        stats.error("GET feed (SSE, first byte)", f"{type(e).__name__}: {e}")


async def run(base: str, tokens: dict[str, list[str]], args: argparse.Namespace) -> tuple[Stats, float]:
    stats = Stats()
    rng = random.Random(1)
    # idle connections are dropped by the client (3 s) before uvicorn drops them (5 s): otherwise a request
    # sent on a connection the server is closing fails with a ReadError, a race of the client, not the app
    limits = httpx2.Limits(
        max_connections=args.max_connections,
        max_keepalive_connections=args.max_connections,
        keepalive_expiry=3.0,
    )
    client = httpx2.AsyncClient(base_url=base, limits=limits, timeout=30)
    sse_client = httpx2.AsyncClient(base_url=base, limits=httpx2.Limits(max_connections=args.subscribers + 1))
    officers, coordinator = tokens["officers"], tokens["coordinator"][0]
    start = time.monotonic()
    until = start + args.duration
    api = f"/api/v1/operations/{CODE}"
    tasks = []
    for i, token in enumerate(officers):
        counter = iter(range(10**9))
        headers = {"Authorization": f"Bearer {token}"}

        async def report(i: int = i, headers: dict[str, str] = headers, counter: Any = counter) -> None:
            body = case_body(f"LOAD-{i:03d}-{next(counter):06d}", rng)
            h = {**headers, "Idempotency-Key": str(uuid.uuid4())}
            await timed(stats, "POST cases (report)", client, "POST", f"{api}/cases", json=body, headers=h)

        tasks.append(every(args.report_every, until, random.Random(i), report))
    for v in range(args.viewers):
        headers = {"Authorization": f"Bearer {officers[v % len(officers)]}"}
        params = [{}, {}, {}, {"commodity_group": "medicines"} if v % 2 else {"region": "EUR"}][v % 4]

        async def view(headers: dict[str, str] = headers, params: dict[str, str] = params) -> None:
            await timed(
                stats, "GET dashboard", client, "GET", f"{api}/dashboard", headers=headers, params=params
            )

        tasks.append(every(args.view_every, until, random.Random(1000 + v), view))
    for a in range(args.searchers):
        headers = {"Authorization": f"Bearer {officers[(7 * a) % len(officers)]}"}

        async def search(headers: dict[str, str] = headers, a: int = a) -> None:
            params = {"channel": "EXPRESS", "page_size": "50", "page": str(1 + a % 3)}
            await timed(
                stats,
                "GET cases (list, filtered)",
                client,
                "GET",
                f"{api}/cases",
                headers=headers,
                params=params,
            )

        tasks.append(every(args.search_every, until, random.Random(2000 + a), search))
    for x in range(args.exporters):
        headers = {"Authorization": f"Bearer {coordinator if x == 0 else officers[x % len(officers)]}"}

        async def export(headers: dict[str, str] = headers) -> None:
            await timed(
                stats, "GET export cases.csv", client, "GET", f"{api}/exports/cases.csv", headers=headers
            )

        tasks.append(every(args.export_every, until, random.Random(3000 + x), export))

    async def probe() -> None:
        await timed(stats, "GET /healthz (under load)", client, "GET", "/healthz")

    tasks.append(every(0.2, until, random.Random(4000), probe))
    feed = f"{api}/feed"
    ramp = random.Random(5000)
    tasks += [
        subscriber(
            stats, sse_client, feed, officers[s % len(officers)], until, ramp.random() * args.feed_ramp
        )
        for s in range(args.subscribers)
    ]
    await asyncio.gather(*tasks)
    elapsed = time.monotonic() - start
    await client.aclose()
    await sse_client.aclose()
    return stats, elapsed


async def baseline(base: str, seconds: float) -> list[float]:
    out: list[float] = []
    async with httpx2.AsyncClient(base_url=base) as client:
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            t0 = time.perf_counter()
            r = await client.get("/healthz")
            if r.status_code == 200:
                out.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)
    return out


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def row(name: str, values: list[float], errors: int, seconds: float) -> list[str]:
    ms = [f"{1000 * pct(values, q):.0f}" for q in (0.5, 0.95, 0.99)]
    top = f"{1000 * max(values):.0f}" if values else "-"
    return [name, str(len(values) + errors), f"{len(values) / seconds:.1f}", *ms, top, str(errors)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--duration", type=float, default=300, help="seconds of load (default 300)")
    ap.add_argument("--administrations", type=int, default=100)
    ap.add_argument(
        "--report-every", type=float, default=20.0, help="seconds between two cases of one administration"
    )
    ap.add_argument("--viewers", type=int, default=500)
    ap.add_argument("--view-every", type=float, default=30.0)
    ap.add_argument("--searchers", type=int, default=20)
    ap.add_argument("--search-every", type=float, default=15.0)
    ap.add_argument("--exporters", type=int, default=3)
    ap.add_argument("--export-every", type=float, default=60.0)
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument(
        "--feed-ramp",
        type=float,
        default=15.0,
        help="subscribers connect at random moments of the run's first FEED_RAMP seconds (default 15; "
        "0: all at the same instant, a thundering herd of SSE connections)",
    )
    ap.add_argument("--seed-cases", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--baseline-seconds", type=float, default=5.0)
    ap.add_argument("--max-connections", type=int, default=300)
    ap.add_argument("--server", default=DEFAULT_PG_URL, help="PostgreSQL server URL (a database is created)")
    args = ap.parse_args()
    if not 1 <= args.duration <= MAX_DURATION:
        ap.error(f"--duration must be between 1 and {MAX_DURATION} seconds")
    if args.administrations < 1:
        ap.error("--administrations must be at least 1")

    print(f"machine: {machine()}; PostgreSQL {postgres_server_version(args.server)}")
    print(f"versions: {versions('uvicorn', 'starlette', 'fastapi', 'sqlalchemy', 'psycopg', 'httpx2')}")
    nominal = {
        "reports": args.administrations / args.report_every,
        "dashboard": args.viewers / args.view_every,
        "case lists": args.searchers / args.search_every,
        "exports": args.exporters / args.export_every,
    }
    print(
        "nominal mix (req/s): "
        + ", ".join(f"{k} {v:.2f}" for k, v in nominal.items())
        + f", health probe 5.00; {args.subscribers} live-feed streams held open; {args.duration:.0f} s"
    )
    with (
        fresh_database("postgres", args.server) as url,
        tempfile.TemporaryDirectory(prefix="stopnet-load-") as d,
    ):
        t0 = time.perf_counter()
        tokens = seed(url, args.administrations, args.seed_cases)
        print(
            f"seeded {args.administrations} administrations and {args.seed_cases} cases in {time.perf_counter() - t0:.1f} s"
        )
        with serve(url, args.workers, Path(d)) as (base, pids):
            quiet = asyncio.run(baseline(base, args.baseline_seconds))
            pids = [pids[0], *descendants(pids[0])]  # every worker is up by now
            cpu0, pg0, load0, wall0 = (
                cpu_seconds(pids),
                cpu_seconds(postgres_pids()),
                time.process_time(),
                time.monotonic(),
            )
            stats, elapsed = asyncio.run(run(base, tokens, args))
            wall = time.monotonic() - wall0
            server_cores = (cpu_seconds(pids) - cpu0) / wall
            pg_cores = (cpu_seconds(postgres_pids()) - pg0) / wall  # backends that ended meanwhile are missed
            load_cores = (time.process_time() - load0) / wall
            log = (Path(d) / "server.log").read_text(errors="replace")
    rows = [row("GET /healthz (baseline, idle server)", quiet, 0, args.baseline_seconds)]
    for name in sorted(set(stats.latency) | set(stats.errors)):
        rows.append(row(name, stats.latency[name], stats.errors[name], args.duration))
    print()
    print(table(["endpoint", "requests", "ok/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"], rows))
    print("\nevery endpoint but the feed, by 30-second window of the run:")
    print(table(["window", "answers", "p50 ms", "p99 ms", "max ms"], stats.timeline()))
    total_errors = sum(stats.errors.values())
    print(
        f"\n{elapsed:.0f} s; {sum(len(v) for v in stats.latency.values())} answers, {total_errors} errors; "
        f"{stats.events} case events delivered to subscribers; CPU in cores (of {os.cpu_count()}): "
        f"server {server_cores:.2f}, PostgreSQL {pg_cores:.2f} (every database of the server), "
        f"load generator {load_cores:.2f}"
    )
    for name, sample in stats.samples.items():
        print(f"  first error of {name}: {sample}")
    if "Traceback" in log:
        at = log.index("Traceback")
        print(f"server log has {log.count('Traceback')} tracebacks; the first:\n" + log[at : at + 3000])
    worst = max((pct(v, 0.99) for v in stats.latency.values()), default=0.0)  # the feed's first byte too
    print(f"target: zero errors and p99 < 1 s: {'met' if total_errors == 0 and worst < 1.0 else 'NOT met'}")


if __name__ == "__main__":
    main()

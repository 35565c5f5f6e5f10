"""Benchmark: live-feed delivery, commit → receipt, for 500 SSE subscribers on 2 uvicorn processes.

    .venv/bin/python benchmarks/live_feed.py                      # 500 subscribers, 50 seizures/s, 60 s
    .venv/bin/python benchmarks/live_feed.py --seconds 15         # shorter
    .venv/bin/python benchmarks/live_feed.py --subscribers 100 --rate 20

1. creates a fresh PostgreSQL database (``--server``, default the local one) built by the migrations,
   with one operation, ``--orgs`` participating customs administrations (an officer and an API token
   each) and the coordinating unit;
2. starts 2 uvicorn server processes on 127.0.0.1 (one worker each, ports chosen free), the real
   application with ``STOPNET_FEED_BROKER=postgres``;
3. baseline 1, raw LISTEN/NOTIFY: a psycopg connection LISTENs; another commits ``NOTIFY`` at ``--rate``
   per second for ``--baseline-seconds``; latency = receipt − return of the commit;
4. baseline 2, one subscriber: one SSE stream while the writer reports cases for ``--baseline-seconds``;
5. the run: ``--subscribers`` SSE streams (raw asyncio sockets, half on each server, officers of every
   administration), all open before the writer starts; the writer, in its own process, reports
   ``--rate`` cases of one seizure per second for ``--seconds`` through ``reporting.service.create_case``
   and commits each (a third process: every event crosses processes through NOTIFY); it records the
   monotonic time just after each commit returns; each subscriber the time each event arrives;
6. prints p50/p95/p99/max latency, and for every subscriber the events lost (a case it may read that it
   never received) and duplicated (an event id received twice), plus ids out of order.

All traffic stays on 127.0.0.1; the number of connections and the duration are bounded by the flags.
Target (issue 6): p99 ≤ 500 ms, zero lost, zero duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import multiprocessing as mp
import os
import re
import statistics
import subprocess
import sys
import time
from array import array
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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

CODE = "BENCH-LIVE"
MAX_SUBSCRIBERS = 2000
MAX_SECONDS = 600


# ------------------------------------------------------------------------------------------ the app


def make_app() -> Any:
    """uvicorn factory: the application as ``stopnet serve`` builds it."""
    from stopnet.web.app import create_app

    return create_app()


@contextmanager
def servers(url: str, n: int, data_dir: Path) -> Iterator[tuple[list[int], list[int]]]:
    procs, ports = [], []
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT / "benchmarks")]),
        "STOPNET_DATABASE_URL": url,
        "STOPNET_SECRET_KEY": "bench-secret",
        "STOPNET_DATA_DIR": str(data_dir),
        "STOPNET_FEED_BROKER": "postgres",
    }
    try:
        for _ in range(n):
            port = free_port()
            cmd = [
                sys.executable, "-m", "uvicorn", "--factory", "live_feed:make_app", "--host", "127.0.0.1",
                "--port", str(port), "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "2",
            ]  # fmt: skip
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env))
            ports.append(port)
        for port, p in zip(ports, procs, strict=True):
            wait_healthy(f"http://127.0.0.1:{port}", p, timeout=90)
        yield ports, [p.pid for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    total = sum(v) / os.sysconf("SC_CLK_TCK")
    idle = (v[3] + v[4]) / os.sysconf("SC_CLK_TCK")
    return total - idle, total


class CpuMeter:
    """CPU used by the servers, this process (subscribers), PostgreSQL, and the whole machine."""

    def __init__(self, server_pids: list[int]) -> None:
        self.server_pids = server_pids
        self.pg_start = {p: process_cpu(p) for p in postgres_pids()}
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        busy, total = machine_busy()
        return {
            "servers": sum(process_cpu(p) for p in self.server_pids),
            "subscribers": time.process_time(),
            "postgres": 0.0,
            "machine_busy": busy,
            "machine_total": total,
            "wall": time.monotonic(),
        }

    def done(self) -> dict[str, float]:
        end = self._read()
        end["postgres"] = sum(process_cpu(p) - c0 for p, c0 in self.pg_start.items() if process_cpu(p) >= c0)
        d = {k: end[k] - self.start[k] for k in end}
        wall = d.pop("wall")
        total = d.pop("machine_total")
        busy = d.pop("machine_busy")
        out = {k: v / wall for k, v in d.items()}  # cores used on average
        out["machine"] = busy / wall
        out["cores"] = total / wall
        return out


# ------------------------------------------------------------------------------------------ data


def seed(url: str, orgs: int) -> tuple[list[str], int]:
    """Operation, administrations, officers and their tokens. Returns (tokens, operation id)."""
    import datetime as dt

    from stopnet.access.service import create_token
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

    engine = make_engine(url)
    with bench_sessions(engine)() as s:
        coord = Organisation(code="WCO-OCU", name="Coordinating unit", kind=OrgKind.COORDINATOR)
        s.add(coord)
        s.flush()
        op = Operation(
            code=CODE,
            name="Live feed benchmark",
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
        tokens = []
        countries = ["FR", "DE", "KE", "BR", "IN", "JP", "US", "ZA", "EG", "AU"]
        regions = ["EUR", "EUR", "ESA", "AMS", "AP", "AP", "AMS", "ESA", "MENA", "AP"]
        for i in range(orgs):
            org = Organisation(
                code=f"C{i:03d}-CUS",
                name=f"Customs {i}",
                kind=OrgKind.CUSTOMS,
                country_code=countries[i % len(countries)],
                region_code=regions[i % len(regions)],
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
            tokens.append(create_token(s, None, org, "bench", Role.OFFICER, user=user)[1])
        s.commit()
        op_id = op.id
    engine.dispose()
    return tokens, op_id


def writer(url: str, orgs: int, rate: float, seconds: float, start_at: float, prefix: str, out: Any) -> None:
    """Report ``rate`` cases per second for ``seconds`` (own process); send {case_id: commit time}."""
    sys.path.insert(0, str(ROOT / "src"))
    from sqlalchemy import select

    from stopnet.access.service import principal_for
    from stopnet.db.engine import make_engine
    from stopnet.db.models import Operation, Organisation, User
    from stopnet.reporting.schemas import CaseCreate
    from stopnet.reporting.service import create_case

    engine = make_engine(url)
    factory = bench_sessions(engine)
    with factory() as s:
        op = s.scalar(select(Operation).where(Operation.code == CODE))
        principals = [
            principal_for(u, s.get_one(Organisation, u.org_id))
            for u in s.scalars(select(User).order_by(User.id))
        ]
        s.expunge_all()
    assert op is not None and len(principals) == orgs
    n = int(rate * seconds)
    committed: dict[int, float] = {}
    late = 0
    base = {
        "detected_on": "2025-05-14",
        "transport_mode": "AIR",
        "is_ecommerce": True,
        "channel": "EXPRESS",
        "origin_country": "CN",
        "detection_method": "RISK_PROFILE",
        "consignee_name": "Personal Data",
    }
    start_at = max(start_at, time.monotonic() + 0.2)  # imports may have taken longer than planned
    cpu0 = time.process_time()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    for i in range(n):
        due = start_at + i / rate
        wait = due - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -0.05:
            late += 1
        data = CaseCreate.model_validate(
            {
                **base,
                "reference": f"{prefix}-{i:06d}",
                "seizures": [{"commodity_code": "MED-WEIGHT", "pieces": 10 + i % 7}],
            }
        )
        with factory() as s:
            op_ = s.get_one(Operation, op.id)
            case = create_case(s, principals[i % orgs], op_, data)
            s.commit()
            committed[case.id] = time.monotonic()
    engine.dispose()
    span = max(committed.values()) - start_at if committed else 0.0
    out.send(
        {
            "committed": committed,
            "late": late,
            "achieved_rate": len(committed) / span if span else 0.0,
            "writer_cpu": (time.process_time() - cpu0) / span if span else 0.0,
        }
    )


# ------------------------------------------------------------------------------------------ subscribers

CASE_ID = re.compile(rb'"case":\{"id":(\d+)')


class Stream:
    """One SSE subscriber on a raw socket (HTTP/1.1, chunked), recording (event id, case id, time)."""

    def __init__(self, port: int, token: str) -> None:
        self.port = port
        self.token = token
        self.ids = array("q")
        self.cases = array("q")
        self.times = array("d")
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)
        except OSError as e:
            self.error = f"connect: {e}"
            self.ready.set()
            return
        try:
            writer.write(
                f"GET /api/v1/operations/{CODE}/feed HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {self.token}\r\nAccept: text/event-stream\r\n\r\n".encode()
            )
            await writer.drain()
            status = await reader.readline()
            if b" 200 " not in status:
                self.error = status.decode(errors="replace").strip()
                self.ready.set()
                return
            while (await reader.readline()) not in (b"\r\n", b""):
                pass
            buf = b""
            while True:
                size_line = await reader.readline()
                if not size_line:
                    return
                size = int(size_line.strip() or b"0", 16)
                if size == 0:
                    return
                chunk = await reader.readexactly(size + 2)
                now = time.monotonic()
                self.ready.set()
                buf += chunk[:-2]
                *blocks, buf = buf.split(b"\n\n")
                for block in blocks:
                    if not block.startswith(b"id: ") or b"\ndata: " not in block:
                        continue  # retry line, keep-alives
                    m = CASE_ID.search(block)
                    self.ids.append(int(block[4 : block.index(b"\n")]))
                    self.cases.append(int(m.group(1)) if m else -1)
                    self.times.append(now)
        except (asyncio.CancelledError, asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()


async def open_streams(ports: list[int], tokens: list[str], n: int, timeout: float = 120.0) -> list[Stream]:
    streams = [Stream(ports[i % len(ports)], tokens[i % len(tokens)]) for i in range(n)]
    sem = asyncio.Semaphore(25)

    async def start(s: Stream) -> None:
        async with sem:
            s.task = asyncio.create_task(s.run())
            await asyncio.wait_for(s.ready.wait(), timeout)

    await asyncio.gather(*(start(s) for s in streams))
    errors = [s.error for s in streams if s.error]
    if errors:
        raise RuntimeError(f"{len(errors)} streams failed to open, e.g. {errors[0]}")
    return streams


async def close_streams(streams: list[Stream]) -> None:
    for s in streams:
        if s.task is not None:
            s.task.cancel()
    await asyncio.gather(*(s.task for s in streams if s.task), return_exceptions=True)


def run_writer(
    url: str, orgs: int, rate: float, seconds: float, prefix: str, delay: float = 1.0
) -> tuple[mp.Process, Any, float]:
    ctx = mp.get_context("spawn")
    recv, send = ctx.Pipe(duplex=False)
    start_at = time.monotonic() + delay
    p = ctx.Process(target=writer, args=(url, orgs, rate, seconds, start_at, prefix, send), daemon=True)
    p.start()
    return p, recv, start_at


async def measure(
    ports: list[int],
    pids: list[int],
    tokens: list[str],
    url: str,
    orgs: int,
    n: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    streams = await open_streams(ports, tokens, n)
    meter = CpuMeter(pids)
    p, recv, _ = run_writer(url, orgs, rate, seconds, f"S{n}", delay=2.0)
    while not recv.poll():
        await asyncio.sleep(0.1)
    result = recv.recv()
    cpu = meter.done()
    cpu["writer"] = result["writer_cpu"]
    p.join(timeout=10)
    committed: dict[int, float] = result["committed"]
    expected = set(committed)
    deadline = time.monotonic() + 15  # stragglers
    while time.monotonic() < deadline and any(len(set(s.cases) & expected) < len(expected) for s in streams):
        await asyncio.sleep(0.2)
    await close_streams(streams)
    latencies = []
    lost = dup = disorder = 0
    for s in streams:
        ids = list(s.ids)
        dup += len(ids) - len(set(ids))
        disorder += sum(1 for a, b in itertools.pairwise(ids) if b <= a)
        got = set()
        for case_id, t in zip(s.cases, s.times, strict=True):
            if case_id in committed and case_id not in got:
                latencies.append((t - committed[case_id]) * 1000)
                got.add(case_id)
        lost += len(expected - got)
    latencies.sort()

    def pct(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")

    return {
        "subscribers": n,
        "events": len(committed),
        "deliveries": len(latencies),
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": latencies[-1] if latencies else float("nan"),
        "lost": lost,
        "duplicated": dup,
        "out_of_order": disorder,
        "writer_late": result["late"],
        "achieved_rate": result["achieved_rate"],
        "cpu": cpu,
    }


def notify_baseline(url: str, rate: float, seconds: float) -> dict[str, Any]:
    """Raw LISTEN/NOTIFY round trip (commit of NOTIFY → receipt) at the same rate."""
    import threading

    import psycopg
    from sqlalchemy.engine import make_url

    conninfo = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    listener = psycopg.connect(conninfo, autocommit=True)
    listener.execute("LISTEN bench_baseline")
    sent: dict[int, float] = {}
    got: dict[int, float] = {}
    n = int(rate * seconds)

    def send() -> None:
        with psycopg.connect(conninfo) as c:
            start = time.monotonic()
            for i in range(n):
                wait = start + i / rate - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                c.execute("SELECT pg_notify('bench_baseline', %s)", (str(i),))
                c.commit()
                sent[i] = time.monotonic()

    t = threading.Thread(target=send)
    t.start()
    for note in listener.notifies(timeout=seconds + 10, stop_after=n):
        got[int(note.payload)] = time.monotonic()
    t.join()
    listener.close()
    lat = sorted((got[i] - sent[i]) * 1000 for i in got if i in sent)
    return {
        "events": n,
        "p50": statistics.median(lat),
        "p95": lat[int(0.95 * len(lat))],
        "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
        "max": lat[-1],
        "lost": n - len(got),
        "duplicated": 0,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subscribers", type=int, default=500)
    ap.add_argument("--rate", type=float, default=50.0, help="cases (one seizure each) committed per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="duration of the measured run")
    ap.add_argument("--baseline-seconds", type=float, default=10.0)
    ap.add_argument("--orgs", type=int, default=50, help="participating administrations (one token each)")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--server", default=DEFAULT_PG_URL, help="PostgreSQL server URL (a database is created)")
    args = ap.parse_args()
    if not (1 <= args.subscribers <= MAX_SUBSCRIBERS) or not (0 < args.seconds <= MAX_SECONDS):
        ap.error(f"at most {MAX_SUBSCRIBERS} subscribers and {MAX_SECONDS} seconds")
    print(f"machine: {machine()}; PostgreSQL {postgres_server_version(args.server)}")
    print(f"versions: {versions('uvicorn', 'starlette', 'fastapi', 'sqlalchemy', 'psycopg')}")
    with fresh_database("postgres", args.server) as url:
        tokens, _ = seed(url, args.orgs)
        base_notify = notify_baseline(url, args.rate, args.baseline_seconds)
        data_dir = ROOT / "tmp" / "live-feed-bench"
        data_dir.mkdir(parents=True, exist_ok=True)
        with servers(url, args.servers, data_dir) as (ports, pids):
            single = asyncio.run(
                measure(ports, pids, tokens, url, args.orgs, 1, args.rate, args.baseline_seconds)
            )
            run = asyncio.run(
                measure(ports, pids, tokens, url, args.orgs, args.subscribers, args.rate, args.seconds)
            )
    rows = []
    for label, r, secs in [
        ("raw LISTEN/NOTIFY (commit → notification)", base_notify, args.baseline_seconds),
        ("1 SSE subscriber", single, args.baseline_seconds),
        (
            f"{args.subscribers} SSE subscribers on {args.servers} processes",
            run,
            args.seconds,
        ),
    ]:
        rows.append(
            [
                label,
                f"{args.rate:g}/s × {secs:g} s",
                f"{r['p50']:.1f}",
                f"{r['p95']:.1f}",
                f"{r['p99']:.1f}",
                f"{r['max']:.1f}",
                str(r["lost"]),
                str(r["duplicated"]),
            ]
        )
    print()
    print(table(["path", "events", "p50 ms", "p95 ms", "p99 ms", "max ms", "lost", "duplicated"], rows))
    print()
    print(
        f"deliveries: {run['deliveries']} ({run['events']} events × {args.subscribers} subscribers), "
        f"out of order: {run['out_of_order']}, writer rate achieved: {run['achieved_rate']:.1f}/s "
        f"({run['writer_late']} commits started > 50 ms late)"
    )
    c = run["cpu"]
    print(
        f"CPU during the run, in cores used on average (of {c['cores']:.0f}): servers {c['servers']:.2f}, "
        f"subscribers {c['subscribers']:.2f}, writer {c['writer']:.2f}, PostgreSQL {c['postgres']:.2f} (backends alive throughout); "
        f"whole machine {c['machine']:.2f} (other work included)"
    )
    ok = run["p99"] <= 500 and run["lost"] == 0 and run["duplicated"] == 0 and run["out_of_order"] == 0
    print(f"target p99 ≤ 500 ms, none lost or duplicated: {'met' if ok else 'NOT met'}")
    print(json.dumps({"notify": base_notify, "single": single, "run": run}))


if __name__ == "__main__":
    main()

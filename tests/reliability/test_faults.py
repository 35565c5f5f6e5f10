"""Faults, live: PostgreSQL restarted under API traffic and a bulk import; a server worker killed.

Real uvicorn processes serve the real application against a private PostgreSQL server (conftest.py);
client threads report cases over HTTP with ``Idempotency-Key`` headers and retry, with the same key,
on 503 or on a connection error, as the API documentation tells integrators to. Afterwards the database
is counted: every acknowledged case is there exactly once, nothing unacknowledged slipped in, the bulk
import is there once, and every acknowledged case has exactly one live-feed event.
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import case_payload
from tests.servers import ServerProcess

from .conftest import FaultWorld, PrivatePostgres

pytestmark = pytest.mark.db

RETRY_DEADLINE = 60.0  # seconds a client keeps retrying one request


@dataclass
class Outcome:
    """What the clients saw, shared by their threads."""

    acked: dict[str, int] = field(default_factory=dict)  # reference -> case id
    sent: dict[str, tuple[dict[str, Any], dict[str, str]]] = field(default_factory=dict)  # body, headers
    unavailable: list[tuple[dict[str, Any], str | None]] = field(
        default_factory=list
    )  # 503 body, Retry-After
    transport_errors: int = 0
    replays: int = 0
    failures: list[str] = field(default_factory=list)  # anything a client must never see (500, ...)
    lock: threading.Lock = field(default_factory=threading.Lock)


def send_until_answered(
    targets: list[str], path: str, outcome: Outcome, *, retry_on_transport: bool = True, **kwargs: Any
) -> httpx2.Response | None:
    """POST until a final answer, retrying the same request (same key, same file) on 503 or connection
    errors; on a connection error move to the next server of ``targets`` (a load balancer's failover)."""
    deadline = time.monotonic() + RETRY_DEADLINE
    target = 0
    while time.monotonic() < deadline:
        try:
            r = httpx2.post(targets[target] + path, timeout=30, **kwargs)
        except httpx2.TransportError:
            with outcome.lock:
                outcome.transport_errors += 1
            target = (target + 1) % len(targets)
            time.sleep(0.1)
            continue
        if r.status_code == 503:
            with outcome.lock:
                outcome.unavailable.append((r.json(), r.headers.get("retry-after")))
            time.sleep(min(float(r.headers.get("retry-after", "1")), 0.5))
            continue
        return r
    with outcome.lock:
        outcome.failures.append(f"POST {path}: no answer within {RETRY_DEADLINE} s")
    return None


def reporter(
    name: str, targets: list[str], world: FaultWorld, outcome: Outcome, stop: threading.Event
) -> None:
    n = 0
    while not stop.is_set():
        n += 1
        reference = f"{name}-{n:05d}"
        headers = {**world.headers("fr_officer"), "Idempotency-Key": str(uuid.uuid4())}
        body = case_payload(reference, consignee_name=f"Person {reference}")
        path = f"/api/v1/operations/{world.op_code}/cases"
        r = send_until_answered(targets, path, outcome, json=body, headers=headers)
        if r is None:
            return
        with outcome.lock:
            if r.status_code == 201:
                outcome.acked[reference] = r.json()["id"]
                outcome.sent[reference] = (body, headers)
                outcome.replays += r.headers.get("idempotent-replayed") == "true"
            else:
                outcome.failures.append(f"{reference}: {r.status_code} {r.text[:300]}")


def import_file(rows: int) -> bytes:
    """A bulk file of ``rows`` cases (one seizure each) for DE-CUS."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["case_reference", "detected_on", "transport_mode", "is_ecommerce", "channel",
                "detection_method", "commodity_code", "pieces", "weight_kg", "consignee_name"])  # fmt: skip
    for i in range(rows):
        w.writerow([f"DE-IMP-{i:06d}", "2025-05-20", "AIR", "yes", "EXPRESS", "RISK_PROFILE", "IPR-FOOT",
                    str(1 + i % 40), "1.5", f"Person DE {i}"])  # fmt: skip
    return buf.getvalue().encode()


def wait_until(pred: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def count_rows(url: str, sql: str, **params: Any) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as c:
            return list(c.execute(text(sql), params).all())
    finally:
        engine.dispose()


def assert_acknowledged_exactly_once(world: FaultWorld, outcome: Outcome) -> None:
    rows = count_rows(
        world.url,
        "SELECT reference, id FROM case_report WHERE reporting_org_id = :org",
        org=world.org_ids["FR-CUS"],
    )
    counts = Counter(ref for ref, _ in rows)
    assert not [ref for ref, n in counts.items() if n != 1]  # the unique constraint holds anyway
    stored = dict(rows)
    # every acknowledged case is stored, under the id it was acknowledged with ...
    assert {ref: stored.get(ref) for ref in outcome.acked} == outcome.acked
    # ... and nothing else: a request the client never saw acknowledged left nothing behind
    assert set(stored) == set(outcome.acked)


def assert_clear_503s(outcome: Outcome) -> None:
    assert outcome.unavailable, "no client saw the outage: it did not happen under traffic"
    for body, retry_after in outcome.unavailable:
        assert body["error"] == "database_unavailable"
        assert body["cause"] in {"connection to the database lost", "database unreachable"}
        assert "retry" in body["detail"]
        assert retry_after is not None and int(retry_after) >= 1


def test_postgres_restart_under_api_traffic_and_bulk_import(
    private_pg: PrivatePostgres, fault_world: FaultWorld, serve: Any
) -> None:
    server: ServerProcess = serve(fault_world.url, workers=2)
    outcome, stop = Outcome(), threading.Event()
    clients = [
        threading.Thread(target=reporter, args=(f"FR-{i}", [server.url], fault_world, outcome, stop))
        for i in range(4)
    ]
    for t in clients:
        t.start()
    import_rows = 3000
    data = import_file(import_rows)
    import_answers: list[httpx2.Response | None] = []
    import_outcome = Outcome()

    def bulk_import() -> None:
        path = f"/api/v1/operations/{fault_world.op_code}/imports"
        files = {"file": ("de-seizures.csv", data, "text/csv")}
        import_answers.append(
            send_until_answered(
                [server.url], path, import_outcome, files=files, headers=fault_world.headers("de_officer")
            )
        )

    importer = threading.Thread(target=bulk_import)
    try:
        wait_until(lambda: len(outcome.acked) >= 20, 60, "the first acknowledged cases")
        importer.start()
        time.sleep(0.4)  # the import is being read and written
        private_pg.stop("immediate")  # a crash: every connection is cut, uncommitted work is lost
        before = len(outcome.acked)
        time.sleep(2.0)  # the outage: clients are answered 503 meanwhile
        private_pg.start()
        wait_until(lambda: len(outcome.acked) >= before + 40, 90, "traffic to recover after the restart")
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=90)
        if importer.ident is not None:
            importer.join(timeout=120)

    assert outcome.failures == [], server.output()[-3000:]
    assert import_outcome.failures == []
    assert_clear_503s(outcome)
    # a client that never got its answer retries with the same key, even after the crash: the stored
    # answer is replayed (same case id), nothing is created twice
    path = f"/api/v1/operations/{fault_world.op_code}/cases"
    for reference in sorted(outcome.acked)[:: max(1, len(outcome.acked) // 10)]:
        body, headers = outcome.sent[reference]
        again = httpx2.post(server.url + path, json=body, headers=headers, timeout=30)
        assert again.status_code == 201 and again.headers.get("idempotent-replayed") == "true"
        assert again.json()["id"] == outcome.acked[reference]
    assert_acknowledged_exactly_once(fault_world, outcome)

    # the import: answered once (201, or 200 "already imported" when its commit beat the crash but its
    # answer did not), present exactly once, all its rows
    answer = import_answers[0]
    assert answer is not None and answer.status_code in (200, 201), answer.text[:500] if answer else None
    batches = count_rows(fault_world.url, "SELECT id, cases_created FROM import_batch")
    assert len(batches) == 1 and batches[0][1] == import_rows
    imported = count_rows(
        fault_world.url,
        "SELECT count(*), count(DISTINCT reference) FROM case_report WHERE reporting_org_id = :org",
        org=fault_world.org_ids["DE-CUS"],
    )
    assert imported[0] == (import_rows, import_rows)
    print(
        f"\nrestart: {len(outcome.acked)} cases acknowledged, {len(outcome.unavailable)} answers 503, "
        f"{outcome.transport_errors} connection errors, {outcome.replays} idempotent replays; import answered "
        f"{answer.status_code} after {len(import_outcome.unavailable)} answers 503"
    )


def read_feed(server: ServerProcess, world: FaultWorld, want: set[int], timeout: float = 60) -> set[int]:
    """Case ids of the ``case.created`` events the feed replays from the start (until all are seen)."""
    seen: set[int] = set()
    deadline = time.monotonic() + timeout
    url = f"{server.url}/api/v1/operations/{world.op_code}/feed"
    while not want <= seen and time.monotonic() < deadline:
        headers = {**world.headers("coordinator"), "Accept": "text/event-stream", "Last-Event-ID": "0"}
        with httpx2.stream("GET", url, headers=headers, timeout=httpx2.Timeout(10, read=5)) as r:
            assert r.status_code == 200
            kind = None
            try:
                for line in r.iter_lines():
                    if line.startswith("event:"):
                        kind = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and kind == "case.created":
                        seen.add(json.loads(line[5:])["case"]["id"])
                    if want <= seen or time.monotonic() > deadline:
                        break
            except httpx2.ReadTimeout:
                pass
    return seen


def test_killed_worker_loses_no_acknowledged_case_or_event(fault_world: FaultWorld, serve: Any) -> None:
    first: ServerProcess = serve(fault_world.url)
    second: ServerProcess = serve(fault_world.url)
    outcome, stop = Outcome(), threading.Event()
    clients = [
        threading.Thread(
            target=reporter, args=(f"FR-{i}", [first.url, second.url], fault_world, outcome, stop)
        )
        for i in range(4)
    ]
    for t in clients:
        t.start()
    try:
        wait_until(lambda: len(outcome.acked) >= 30, 60, "the first acknowledged cases")
        first.kill()  # SIGKILL mid-traffic: requests in flight on it are cut
        before = len(outcome.acked)
        wait_until(lambda: len(outcome.acked) >= before + 30, 60, "the clients to fail over")
    finally:
        stop.set()
        for t in clients:
            t.join(timeout=90)

    assert outcome.failures == [], second.output()[-3000:]
    assert outcome.transport_errors >= 1  # the kill did cut requests
    assert_acknowledged_exactly_once(fault_world, outcome)
    # the outbox: exactly one case.created event per acknowledged case, committed with it
    events = count_rows(fault_world.url, "SELECT case_id FROM outbox_event WHERE kind = 'case.created'")
    assert Counter(case_id for (case_id,) in events) == Counter(outcome.acked.values())
    # and the surviving worker's feed delivers every one of them
    want = set(outcome.acked.values())
    assert read_feed(second, fault_world, want) >= want
    print(
        f"\nkill -9: {len(outcome.acked)} cases acknowledged, {outcome.transport_errors} connection errors, "
        f"{outcome.replays} idempotent replays; {len(events)} feed events"
    )

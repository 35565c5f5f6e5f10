"""The live feed across real server processes (uvicorn subprocesses on 127.0.0.1).

PostgreSQL: two servers; an event committed in one reaches the subscribers of the other through
LISTEN/NOTIFY (the servers poll only every 30 s here, so delivery within a second proves the
notification), and a lost LISTEN connection only delays delivery. SQLite: one server (its in-process
signal), plus writes from this test process, which the server finds by polling.
"""

from __future__ import annotations

import time

import httpx2
from sqlalchemy import select, text

from stopnet.db.models import Operation
from stopnet.db.models.sharing import OutboxEvent
from stopnet.reporting import service as reporting
from stopnet.reporting.schemas import CaseCreate
from tests.conftest import case_payload

from .test_feed import feed_url, post_case


def write_here(session_factory, world, reference: str, **overrides) -> None:
    """Report a case from this process (neither server's in-process signal fires)."""
    with session_factory() as s:
        op = s.get_one(Operation, world.op.id)
        data = CaseCreate.model_validate(case_payload(reference, **overrides))
        reporting.create_case(s, world["fr_officer"].principal, op, data)
        s.commit()


def refs(events) -> list[str]:
    return [e.data["case"]["reference"] for e in events]


def test_an_event_committed_in_one_process_reaches_subscribers_of_another(
    world, spawn, sse, engine, session_factory
):
    postgres = engine.dialect.name == "postgresql"
    if postgres:
        a = spawn(STOPNET_FEED_POLL_SECONDS="30")
        b = spawn(STOPNET_FEED_POLL_SECONDS="30")
    else:
        a = b = spawn()
    on_a = sse(feed_url(a.url), world["de_officer"].headers)
    on_b = sse(feed_url(b.url), world["coordinator"].headers)
    t0 = time.monotonic()
    post_case(b.url, world["fr_officer"], "X-1")  # committed by server B
    assert refs(on_a.take(1, timeout=10)) == ["X-1"]
    assert refs(on_b.take(1, timeout=10)) == ["X-1"]
    if postgres:
        assert time.monotonic() - t0 < 5, "delivered by NOTIFY, not by the 30 s poll"
    write_here(session_factory, world, "X-2")  # committed by a third process
    assert refs(on_a.take(1, timeout=10)) == ["X-2"]
    assert refs(on_b.take(1, timeout=10)) == ["X-2"]
    post_case(a.url, world["fr_officer"], "X-3")
    assert refs(on_a.take(1, timeout=10)) == ["X-3"]
    assert refs(on_b.take(1, timeout=10)) == ["X-3"]
    if postgres:
        # cut the servers' LISTEN connections: the next events still arrive (reconnection catches up)
        with engine.connect() as c:
            c.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND query ILIKE 'LISTEN%'"
                )
            )
        write_here(session_factory, world, "X-4")
        assert refs(on_a.take(1, timeout=35)) == ["X-4"]
        assert refs(on_b.take(1, timeout=35)) == ["X-4"]
    time.sleep(1.0)
    assert on_a.events.empty() and on_b.events.empty()
    ids = [e.id for e in on_a.received]
    assert ids == sorted(set(ids))


def test_reconnecting_after_a_server_restart_replays_what_was_missed(
    world, spawn, sse, engine, session_factory
):
    postgres = engine.dialect.name == "postgresql"
    a = spawn()
    other = spawn() if postgres else None
    stream = sse(feed_url(a.url), world["de_officer"].headers)
    post_case(a.url, world["fr_officer"], "R-1")
    first = stream.take(1)
    a.stop()  # the worker goes away (SIGTERM) with the stream open
    assert a.proc.returncode is not None
    assert stream.ended.wait(10), "the stream ends with its server"
    if other is not None:
        post_case(other.url, world["fr_officer"], "R-2")  # another worker keeps taking reports
    else:
        write_here(session_factory, world, "R-2")
    write_here(session_factory, world, "R-3")
    write_here(session_factory, world, "R-OWN", visibility="own")  # not for DE
    restarted = spawn()
    again = sse(
        feed_url(restarted.url), {**world["de_officer"].headers, "Last-Event-ID": stream.last_id or ""}
    )
    post_case(restarted.url, world["fr_officer"], "R-4")
    rest = again.take(3, timeout=15)
    assert refs(first) == ["R-1"]
    assert refs(rest) == ["R-2", "R-3", "R-4"]
    time.sleep(1.0)
    assert again.events.empty()
    ids = [e.id for e in first + rest]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    with httpx2.Client() as c:
        assert c.get(restarted.url + "/healthz").status_code == 200


def test_the_outbox_holds_exactly_the_committed_changes(world, spawn, session_factory):
    """Concurrent reports through a server: one event per case, none for a refused report."""
    server = spawn()
    ok = [post_case(server.url, world["fr_officer"], f"C-{i}")["id"] for i in range(5)]
    bad = httpx2.post(
        f"{server.url}/api/v1/operations/TEST-OP/cases",
        json=case_payload("C-BAD", detected_on="2024-01-01"),
        headers=world["fr_officer"].headers,
        timeout=30,
    )
    assert bad.status_code == 422
    with session_factory() as s:
        rows = s.execute(select(OutboxEvent.case_id).order_by(OutboxEvent.id)).scalars().all()
    assert rows == ok

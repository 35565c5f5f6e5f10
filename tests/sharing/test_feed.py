"""The live feed: outbox written with the change, visibility and filters per subscriber, replay."""

from __future__ import annotations

import itertools
import random
import threading
import time

import httpx2
import pytest
from sqlalchemy import select, text

from stopnet.access import policy
from stopnet.db.models import Case, CaseStatus, Operation, Visibility
from stopnet.db.models.sharing import Audience, OutboxEvent
from stopnet.reporting import service as reporting
from stopnet.reporting.schemas import CaseCorrection, CaseCreate
from stopnet.sharing import feed, outbox
from stopnet.sharing.broker import to_event
from tests.conftest import case_payload


def post_case(base: str, actor, reference: str, **overrides) -> dict:
    r = httpx2.post(
        f"{base}/api/v1/operations/TEST-OP/cases",
        json=case_payload(reference, **overrides),
        headers=actor.headers,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return r.json()


def feed_url(base: str) -> str:
    return f"{base}/api/v1/operations/TEST-OP/feed"


# ------------------------------------------------------------------------------ outbox


def test_event_is_written_only_when_the_change_commits(world, session_factory):
    op_id = world.op.id
    with session_factory() as s:
        op = s.get_one(Operation, op_id)
        reporting.create_case(
            s, world["fr_officer"].principal, op, CaseCreate.model_validate(case_payload("R-1"))
        )
        s.rollback()
        assert s.scalar(select(OutboxEvent.id)) is None
        assert s.scalar(select(Case.id)) is None
        case = reporting.create_case(
            s, world["fr_officer"].principal, op, CaseCreate.model_validate(case_payload("R-2"))
        )
        s.commit()
        rows = s.scalars(select(OutboxEvent)).all()
    assert [(r.kind, r.case_id) for r in rows] == [("case.created", case.id)]
    row = rows[0]
    assert row.case_org_id == world.orgs["FR-CUS"].id and row.case_visibility == "participants"
    assert row.payload["case"]["reference"] == "R-2"
    assert "Jean Dupont" not in str(row.payload) and "consignee" not in str(row.payload)
    assert "notes" not in row.payload["case"]


def test_events_of_a_rolled_back_savepoint_are_dropped(world, session_factory):
    with session_factory() as s:
        op = s.get_one(Operation, world.op.id)
        fr = world["fr_officer"].principal
        reporting.create_case(s, fr, op, CaseCreate.model_validate(case_payload("KEPT")))
        nested = s.begin_nested()
        reporting.create_case(s, fr, op, CaseCreate.model_validate(case_payload("DROPPED")))
        nested.rollback()
        s.commit()
        refs = [r.payload["case"]["reference"] for r in s.scalars(select(OutboxEvent))]
    assert refs == ["KEPT"]


def test_every_case_change_is_an_event(world, session_factory):
    with session_factory() as s:
        op = s.get_one(Operation, world.op.id)
        fr, ncp = world["fr_officer"].principal, world["fr_ncp"].principal
        case = reporting.create_case(s, fr, op, CaseCreate.model_validate(case_payload("R-1", submit=False)))
        s.commit()
        reporting.submit_case(s, fr, case.id, 1)
        s.commit()
        fields = {k: v for k, v in case_payload("R-1").items() if k not in ("reference", "submit")}
        body = CaseCorrection.model_validate({**fields, "expected_version": 2, "reason": "typo fixed"})
        reporting.correct_case(s, fr, case.id, body)
        s.commit()
        reporting.validate_case(s, ncp, case.id, 3)
        s.commit()
        rows = s.scalars(select(OutboxEvent).order_by(OutboxEvent.id)).all()
    assert [r.kind for r in rows] == ["case.created", "case.submitted", "case.corrected", "case.validated"]
    assert [r.case_status for r in rows] == ["draft", "submitted", "submitted", "validated"]
    assert [r.payload["case"]["version"] for r in rows] == [1, 2, 3, 4]
    assert rows == sorted(rows, key=lambda r: r.id)


def _emit(session, op_id: int, label: str) -> None:
    outbox.emit(session, "test.event", operation_id=op_id, audience=Audience.ORGS, payload={"label": label})


def test_ids_follow_commit_order(world, session_factory):
    """An event recorded first but committed last gets the larger id: ids are in commit order."""
    first, second = session_factory(), session_factory()
    try:
        _emit(first, world.op.id, "FIRST")
        _emit(second, world.op.id, "SECOND")
        second.commit()
        first.commit()
        rows = first.execute(select(OutboxEvent.payload).order_by(OutboxEvent.id)).scalars().all()
    finally:
        first.close()
        second.close()
    assert [p["label"] for p in rows] == ["SECOND", "FIRST"]


def test_a_reader_following_ids_never_misses_a_concurrent_commit(world, session_factory):
    """Writers commit concurrently (with delays between recording and committing); a reader that only
    ever asks for ``id > last seen`` must still see every event."""
    op_id = world.op.id
    stop = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        last = 0
        while True:
            with session_factory() as s:
                ids = s.scalars(
                    select(OutboxEvent.id).where(OutboxEvent.id > last).order_by(OutboxEvent.id)
                ).all()
            seen.extend(ids)
            last = ids[-1] if ids else last
            if stop.is_set() and not ids:
                return
            time.sleep(0.002)

    def writer(n: int) -> None:
        rng = random.Random(n)
        for i in range(15):
            with session_factory() as s:
                _emit(s, op_id, f"{n}-{i}")
                time.sleep(rng.random() * 0.01)
                s.commit()

    t = threading.Thread(target=reader)
    t.start()
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    time.sleep(0.1)
    stop.set()
    t.join(timeout=30)
    with session_factory() as s:
        every = s.scalars(select(OutboxEvent.id).order_by(OutboxEvent.id)).all()
    assert len(every) == 60
    assert seen == list(every)


# ------------------------------------------------------------------------------ visibility


def test_feed_visibility_is_exactly_case_read_clause(world, session_factory):
    """For every actor and every kind of case, the feed's predicate agrees with the SQL clause."""
    combos = list(
        itertools.product(
            ["FR-CUS", "DE-CUS", "KE-CUS"],
            list(Visibility),
            [CaseStatus.DRAFT, CaseStatus.SUBMITTED, CaseStatus.VALIDATED],
        )
    )
    with session_factory() as s:
        op = s.get_one(Operation, world.op.id)
        officers = {"FR-CUS": "fr_officer", "DE-CUS": "de_officer", "KE-CUS": "ke_officer"}
        for i, (org, vis, status) in enumerate(combos):
            p = world[officers[org]].principal
            data = CaseCreate.model_validate(
                case_payload(f"V-{i}", visibility=vis.value, submit=status is not CaseStatus.DRAFT)
            )
            case = reporting.create_case(s, p, op, data)
            case.status = status
        s.commit()
        events = [to_event(r) for r in s.scalars(select(OutboxEvent))]
        cases = {c.id: c for c in s.scalars(select(Case))}
        for ev in events:  # the status set above is the case's status now: use it for the check
            ev.case["status"] = cases[ev.case["id"]].status.value
        checked = 0
        for name, actor in world.actors.items():
            if actor.org_code == "XX-CUS":
                continue  # not a participant: the feed answers 404 before any event
            viewer = feed.viewer_for(s, actor.principal, op)
            readable = set(
                s.scalars(select(Case.id).where(policy.case_read_clause(s, actor.principal, op.id))).all()
            )
            for ev in events:
                assert viewer.can_see(ev) == (ev.case["id"] in readable), (
                    name,
                    cases[ev.case["id"]].reference,
                )
                checked += 1
    assert checked == 11 * len(combos)


def test_compile_clause_keeps_sql_null_logic():
    clause = (Case.region_code != "EUR") | (Case.reporting_org_id == 1)
    pred = feed.compile_clause(clause)
    assert pred({"region_code": "ESA", "reporting_org_id": 2})
    assert not pred({"region_code": None, "reporting_org_id": 2})  # NULL != 'EUR' is unknown
    assert pred({"region_code": None, "reporting_org_id": 1})
    with pytest.raises(feed.Unevaluable):
        feed.compile_clause(Case.reference.like("X%"))


# ------------------------------------------------------------------------------ streams (live server)


def test_stream_delivers_only_what_each_subscriber_may_read(world, live_server, sse):
    base = live_server.url
    subs = {
        name: sse(feed_url(base), world[name].headers)
        for name in (
            "fr_officer",
            "de_officer",
            "analyst_we",
            "analyst_esa",
            "partner",
            "coordinator",
            "rights_holder",
        )
    }
    post_case(base, world["fr_officer"], "FR-OWN", visibility="own")
    post_case(base, world["fr_officer"], "FR-COORD", visibility="coordinator")
    post_case(base, world["fr_officer"], "FR-PART", visibility="participants")
    post_case(base, world["fr_officer"], "FR-DRAFT", submit=False)
    post_case(base, world["ke_officer"], "KE-PARTNERS", visibility="partners")
    last = post_case(base, world["de_officer"], "DE-LAST", visibility="participants")
    expected = {
        "fr_officer": ["FR-OWN", "FR-COORD", "FR-PART", "FR-DRAFT", "KE-PARTNERS", "DE-LAST"],
        "de_officer": ["FR-PART", "KE-PARTNERS", "DE-LAST"],
        "analyst_we": ["FR-PART", "DE-LAST"],
        "analyst_esa": ["KE-PARTNERS"],
        "partner": ["KE-PARTNERS"],
        "coordinator": ["FR-COORD", "FR-PART", "KE-PARTNERS", "DE-LAST"],
        "rights_holder": [],
    }
    taken = {name: subs[name].take(len(refs), timeout=15) if refs else [] for name, refs in expected.items()}
    time.sleep(1.5)  # anything more would have arrived by now
    for name, refs in expected.items():
        got = taken[name]
        assert [e.data["case"]["reference"] for e in got] == refs, name
        assert subs[name].events.empty(), (name, subs[name].quiet(0))
        ids = [e.id for e in got]
        assert ids == sorted(set(ids)), name
        for e in got:
            assert e.type == "case.created"
            assert "consignee_name" not in e.data["case"] and "Jean Dupont" not in str(e.data)
    assert last["reference"] == "DE-LAST"


def test_stream_answers_only_participants(world, live_server, sse):
    base = live_server.url
    assert httpx2.get(feed_url(base), timeout=10).status_code == 401
    assert httpx2.get(feed_url(base), headers=world["xx_officer"].headers, timeout=10).status_code == 404
    assert (
        httpx2.get(
            feed_url(base) + "?types=bogus", headers=world["fr_officer"].headers, timeout=10
        ).status_code
        == 422
    )


def test_subscriber_filters(world, live_server, sse):
    base = live_server.url
    h = world["coordinator"].headers
    medicines = sse(feed_url(base), h, commodity_group="medicines")
    esa = sse(feed_url(base), h, region="esa")
    france = sse(feed_url(base), h, country="FR")
    postal = sse(feed_url(base), h, channel="POSTAL", types="case")
    alerts_only = sse(feed_url(base), h, types="alert")
    foot = [{"commodity_code": "IPR-FOOT", "pieces": 3, "weight_kg": "1"}]
    post_case(base, world["fr_officer"], "FR-MED")  # medicines + footwear, express, FR, EUR
    post_case(base, world["ke_officer"], "KE-FOOT", seizures=foot, channel="POSTAL")
    post_case(base, world["de_officer"], "DE-FOOT", seizures=foot)
    assert [e.data["case"]["reference"] for e in medicines.take(1)] == ["FR-MED"]
    assert [e.data["case"]["reference"] for e in esa.take(1)] == ["KE-FOOT"]
    assert [e.data["case"]["reference"] for e in france.take(1)] == ["FR-MED"]
    assert [e.data["case"]["reference"] for e in postal.take(1)] == ["KE-FOOT"]
    time.sleep(1.0)
    for s in (medicines, esa, france, postal, alerts_only):
        assert s.events.empty()


def test_reconnection_with_last_event_id_replays_what_was_missed_once(world, live_server, sse):
    base = live_server.url
    fr = world["fr_officer"]
    first = sse(feed_url(base), world["de_officer"].headers)
    post_case(base, fr, "A-1")
    post_case(base, fr, "A-2")
    got = first.take(2)
    first.close()
    for i in range(3, 8):  # while disconnected
        post_case(base, fr, f"A-{i}")
    post_case(base, fr, "A-OWN", visibility="own")  # not for DE
    again = sse(feed_url(base), {**world["de_officer"].headers, "Last-Event-ID": str(got[-1].id)})
    post_case(base, fr, "A-8")  # live, after the replay
    rest = again.take(6)
    assert [e.data["case"]["reference"] for e in rest] == [f"A-{i}" for i in range(3, 9)]
    assert again.quiet(1.5) == []
    ids = [e.id for e in got + rest]
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    # the query parameter does the same on a first connection (EventSource cannot send headers)
    third = sse(feed_url(base), world["de_officer"].headers, last_event_id=rest[3].id)
    assert [e.data["case"]["reference"] for e in third.take(2)] == ["A-7", "A-8"]
    assert third.quiet(1.0) == []


def test_idle_streams_move_their_cursor_past_invisible_events(world, live_server, sse, session_factory):
    base = live_server.url
    de = sse(feed_url(base), world["de_officer"].headers)
    post_case(base, world["fr_officer"], "HIDDEN", visibility="own")
    with session_factory() as s:
        hidden = s.scalar(select(OutboxEvent.id))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not de.ids:
        time.sleep(0.1)
    assert de.ids == [hidden], "a keep-alive carries the cursor past the event DE may not see"
    assert de.received == []


def test_a_cursor_from_another_database_resets(world, live_server, sse):
    s = sse(feed_url(live_server.url), world["de_officer"].headers, last_event_id=10_000_000)
    ev = s.take(1)[0]
    assert ev.type == "reset" and ev.data["reason"] == "unknown cursor"
    post_case(live_server.url, world["fr_officer"], "AFTER-RESET")
    assert s.take(1)[0].data["case"]["reference"] == "AFTER-RESET"


def test_outbox_sequence_is_the_feed_id(world, live_server, sse, session_factory):
    s = sse(feed_url(live_server.url), world["coordinator"].headers)
    post_case(live_server.url, world["fr_officer"], "SEQ")
    ev = s.take(1)[0]
    with session_factory() as db:
        assert db.scalar(select(OutboxEvent.id).where(OutboxEvent.kind == "case.created")) == ev.id
        if db.get_bind().dialect.name == "sqlite":
            assert db.execute(text("SELECT name FROM sqlite_sequence WHERE name = 'outbox_event'")).scalar()


def test_stream_is_neither_compressed_nor_held_back_for_a_client_that_takes_gzip(world, live_server, sse):
    """Pages and JSON are gzipped (tests/web/test_assets.py); the stream is not: each event goes out
    as it is sent, instead of waiting in a compressor's buffer."""
    s = sse(feed_url(live_server.url), {**world["de_officer"].headers, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in s._response.headers
    assert s._response.headers["content-type"].startswith("text/event-stream")
    t0 = time.monotonic()
    post_case(live_server.url, world["fr_officer"], "FR-GZIP", visibility="participants")
    (event,) = s.take(1, timeout=5)
    assert event.data["case"]["reference"] == "FR-GZIP"
    assert time.monotonic() - t0 < 5

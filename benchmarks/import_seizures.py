"""Benchmark: bulk import of seizures (CSV) end to end vs a bare bulk insert of the same rows.

    .venv/bin/python benchmarks/import_seizures.py                       # 100,000 rows, both backends
    .venv/bin/python benchmarks/import_seizures.py --rows 20000 --backend sqlite
    .venv/bin/python benchmarks/import_seizures.py --backend postgres --pg-url postgresql://u@host/postgres

1. generates ``--rows`` seizure rows (about 1.7 seizures per case, valid reference codes, dates inside the
   operation) into a CSV cached under ``tmp/import-bench/`` (outside git);
2. for each backend, in a fresh database built by the migrations (PostgreSQL: a new database on the server
   of ``--pg-url``, dropped afterwards; SQLite: a temporary file) seeded with the organisations, the
   operation and its participants, times :func:`stopnet.reporting.importer.import_seizures` end to end:
   read the file + parse + validate + write (cases, seizures, case versions, batch, audit) + commit;
3. in the same run, into another fresh database, times a bare bulk insert of the same rows: the rows are
   parsed into typed dicts beforehand (untimed), then only ``INSERT`` of the cases (ids returned) and of
   their seizures + commit, no validation, no case versions. PostgreSQL: psycopg ``COPY`` (ids drawn
   from the sequence), and with ``--with-core`` also SQLAlchemy Core executemany (insertmanyvalues, slow
   with psycopg); SQLite: Core executemany. The ratio is taken against the fastest bare insert.

Besides wall time, each run reports the CPU seconds of this process and of the PostgreSQL backend that
served it (read from /proc when the server runs on this machine): on a shared machine they move much
less than wall time.

Warm-up is excluded from both sides in the same way: before timing, each path runs once on a small file
in a throwaway database (imports, pydantic schemas, reference data, SQLAlchemy's statement cache); each
timed repetition then gets its own fresh database and an already-opened connection pool.
``--repeat N`` runs N repetitions (importer and bare alternate) and reports the median and the best.

Targets: >= 20,000 rows/s into PostgreSQL with full validation and within 2x of the bare COPY; SQLite within
4x of its bare insert.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import gc
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from _common import (
    DEFAULT_PG_URL,
    TMP,
    bench_sessions,
    fresh_database,
    machine,
    median,
    postgres_server_version,
    process_cpu,
    table,
)
from _common import timed as _timed

from stopnet.access.service import cli_principal
from stopnet.config import Settings
from stopnet.db.engine import make_engine
from stopnet.db.models import (
    Case,
    CaseStatus,
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Seizure,
    Visibility,
    utcnow,
)
from stopnet.reference import get_reference
from stopnet.reporting.importer import COLUMNS, import_seizures

OP_CODE = "BENCH-OP"
OP_START = dt.date(2025, 5, 12)
OP_END = dt.date(2025, 5, 30)
REPORTER = "FR-CUS"
WARMUP_ROWS = 500

# ----------------------------------------------------------------------------------------- row generator

OFFICES = [
    "Roissy CDG express hub",
    "Paris Chronopost hub",
    "Le Havre port",
    "Marseille Fos",
    "Lyon Saint-Exupery cargo",
    "Lille postal centre",
    "Orly passengers",
    "Strasbourg road border",
]
BRANDS = [
    ("Ozempic", "Novo Nordisk"),
    ("Viagra", "Pfizer"),
    ("Nike", "Nike Inc."),
    ("Adidas", "adidas AG"),
    ("Rolex", "Rolex SA"),
    ("Louis Vuitton", "LVMH"),
    ("Apple", "Apple Inc."),
    ("Samsung", "Samsung Electronics"),
    ("Chanel", "Chanel SAS"),
    ("Lego", "LEGO A/S"),
    ("", ""),
]
DESCRIPTIONS = {
    "medicines": ["semaglutide pens", "sildenafil tablets", "antibiotic capsules", "insulin vials", "pills"],
    "ipr": ["sneakers", "handbags", "watches", "phone cases", "t-shirts", "toys", "earphones"],
    "other": ["cosmetics", "perfume", "food supplements", "cigarettes", "vodka"],
}
HS = {
    "medicines": ["300490", "300420", "3004"],
    "ipr": ["640411", "420221", "910211", "851830"],
    "other": [""],
}
PLATFORMS = ["shop.example", "market.example", "social.example", "", ""]
NAMES = ["Jean Dupont", "Marie Martin", "A. Smith", "Li Wei", "", "", ""]
CHANNEL_BY_MODE = {
    "AIR": ["EXPRESS", "POSTAL", "AIR_CARGO", "PASSENGER"],
    "SEA": ["SEA_CARGO"],
    "ROAD": ["ROAD_CARGO", "POSTAL"],
    "RAIL": ["RAIL_CARGO"],
}
SEIZURES_PER_CASE = ([1, 2, 3, 4], [0.5, 0.35, 0.1, 0.05])  # mean 1.7


def generate_rows(n: int, seed: int = 20250512) -> list[dict[str, str]]:
    """``n`` valid seizure rows for the benchmark operation, grouped in cases of 1-4 (mean 1.7)."""
    ref = get_reference()
    rnd = random.Random(seed)
    commodities = list(ref.commodities)
    group = {c: ref.commodities[c].group for c in commodities}
    countries = sorted(ref.countries)
    sources = ["CN", "HK", "TR", "IN", "AE", "SG", "TH", "VN"]
    detections = list(ref.detection_methods)
    concealments = list(ref.concealments)
    platform_types = list(ref.platform_types)
    infringements = list(ref.infringement_types)
    natures = list(ref.natures)
    days = (OP_END - OP_START).days
    rows: list[dict[str, str]] = []
    case_no = 0
    while len(rows) < n:
        case_no += 1
        mode = rnd.choices(["AIR", "SEA", "ROAD", "RAIL"], [0.7, 0.15, 0.1, 0.05])[0]
        ecommerce = rnd.random() < 0.8
        transit = rnd.sample(countries, rnd.choice([0, 0, 0, 1, 2]))
        case = {
            "case_reference": f"FR-2025-{case_no:06d}",
            "detected_on": (OP_START + dt.timedelta(days=rnd.randint(0, days))).isoformat(),
            "office": rnd.choice(OFFICES),
            "place": rnd.choice(["", "", "terminal 2", "warehouse B"]),
            "transport_mode": mode,
            "is_ecommerce": "yes" if ecommerce else "no",
            "channel": rnd.choice(CHANNEL_BY_MODE[mode]),
            "departure_country": rnd.choice(sources),
            "origin_country": rnd.choice(sources),
            "destination_country": "FR",
            "transit_countries": ",".join(transit),
            "detection_method": rnd.choice(detections),
            "concealment": rnd.choice(concealments),
            "platform_type": rnd.choice(platform_types) if ecommerce else "",
            "platform_name": rnd.choice(PLATFORMS) if ecommerce else "",
            "consignee_name": rnd.choice(NAMES),
            "visibility": rnd.choice(["", "", "", "participants", "own"]),
            "notes": rnd.choice(["", "", "", "parcel declared as gift", "repeat consignee"]),
        }
        k = rnd.choices(*SEIZURES_PER_CASE)[0]
        for code in rnd.sample(commodities, k):
            g = group[code]
            brand, holder = rnd.choice(BRANDS)
            pieces = rnd.choice([0, 1, 2, 5, 10, 12, 24, 50, 100, 120, 500, 1000])
            weight = Decimal(rnd.randint(0 if pieces else 1, 50_000)) / 1000
            valued = rnd.random() < 0.6
            rows.append(
                case
                | {
                    "commodity_code": code,
                    "description": rnd.choice(DESCRIPTIONS[g]),
                    "brand": brand,
                    "rights_holder": holder,
                    "hs_code": rnd.choice(HS[g]),
                    "pieces": str(pieces),
                    "weight_kg": str(weight),
                    "value_amount": f"{rnd.randint(1, 2_000_000) / 100:.2f}" if valued else "",
                    "currency": rnd.choice(["EUR", "EUR", "USD", "CNY"]) if valued else "",
                    "infringement_type": rnd.choice(infringements),
                    "nature": rnd.choice(natures),
                }
            )
    del rows[n:]  # the last case may lose a seizure or two; it stays valid
    return rows


def write_csv(rows: list[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def csv_file(rows: int, seed: int) -> Path:
    path = TMP / "import-bench" / f"seizures-{rows}-{seed}.csv"
    if not path.exists():
        t, data = _timed(lambda: generate_rows(rows, seed))
        write_csv(data, path)
        print(f"generated {rows:,} rows in {t:.1f} s -> {path.relative_to(TMP.parent)}")
    return path


# ----------------------------------------------------------------------------------------- database


def seed_world(url: str) -> None:
    """The organisations, the operation and its participants that an import needs (as tests' ``world``)."""
    engine = make_engine(url)
    try:
        with bench_sessions(engine)() as s:
            orgs = {}
            for code, name, kind, country, region in [
                ("WCO-OCU", "WCO Operational Coordination Unit", OrgKind.COORDINATOR, None, None),
                (REPORTER, "France Customs", OrgKind.CUSTOMS, "FR", "EUR"),
                ("DE-CUS", "Germany Customs", OrgKind.CUSTOMS, "DE", "EUR"),
            ]:
                orgs[code] = Organisation(
                    code=code, name=name, kind=kind, country_code=country, region_code=region
                )
                s.add(orgs[code])
            s.flush()
            op = Operation(
                code=OP_CODE,
                name="Operation Bench",
                scope="Counterfeit medicines and IPR goods sold online",
                starts_on=OP_START,
                ends_on=OP_END,
                status=OperationStatus.ACTIVE,
                default_visibility=Visibility.PARTICIPANTS,
                coordinator_org_id=orgs["WCO-OCU"].id,
                phases=[
                    OperationPhase(
                        name="Operational phase", starts_on=OP_START, ends_on=OP_END, accepts_reports=True
                    )
                ],
            )
            s.add(op)
            s.flush()
            s.add(
                Participant(operation_id=op.id, org_id=orgs["WCO-OCU"].id, role=ParticipantRole.COORDINATOR)
            )
            s.add(Participant(operation_id=op.id, org_id=orgs[REPORTER].id, role=ParticipantRole.MEMBER))
            s.add(Participant(operation_id=op.id, org_id=orgs["DE-CUS"].id, role=ParticipantRole.MEMBER))
            s.commit()
    finally:
        engine.dispose()


def count_rows(engine: Any) -> tuple[int, int]:
    from sqlalchemy import func, select

    with engine.connect() as c:
        cases = c.scalar(select(func.count()).select_from(Case))
        seizures = c.scalar(select(func.count()).select_from(Seizure))
    return int(cases or 0), int(seizures or 0)


def _warm_engine(url: str) -> tuple[Any, int | None]:
    """An engine whose pool already holds one open connection (reused by the timed code), and the
    PostgreSQL backend pid of that connection (None for SQLite, which runs in this process)."""
    from sqlalchemy import text

    engine = make_engine(url)
    with engine.connect() as c:
        pid = (
            c.execute(text("SELECT pg_backend_pid()")).scalar()
            if engine.dialect.name == "postgresql"
            else None
        )
    return engine, pid


@dataclass
class Run:
    """One timed run: wall seconds and CPU seconds of this process and of the database backend."""

    wall: float
    client_cpu: float
    server_cpu: float


def measure(fn: Callable[[], Any], pid: int | None) -> tuple[Run, Any]:
    gc.collect()
    c0, s0 = process_cpu(), (process_cpu(pid) if pid else 0.0)
    wall, result = _timed(fn)
    c1, s1 = process_cpu(), (process_cpu(pid) if pid else 0.0)
    return Run(wall, c1 - c0, s1 - s0), result


# ----------------------------------------------------------------------------------------- the two paths


def run_importer(url: str, path: Path) -> tuple[Run, Any]:
    """Seed (untimed), then time read file + import_seizures + commit; check what was written."""
    from sqlalchemy import select

    seed_world(url)
    engine, pid = _warm_engine(url)
    size = path.stat().st_size
    settings = Settings(
        database_url=url,
        secret_key="bench",
        data_dir=TMP / "import-bench" / "var",
        max_upload_bytes=max(20 * 1024 * 1024, size + 1),
        max_import_rows=max(200_000, 2 * 10**6),
    )
    factory = bench_sessions(engine, settings)

    def go() -> Any:
        data = path.read_bytes()
        with factory() as s:
            principal = cli_principal(s, REPORTER)
            op = s.scalars(select(Operation).where(Operation.code == OP_CODE)).one()
            result = import_seizures(s, principal, op, path.name, data, settings)
            s.commit()
        return result

    try:
        run, result = measure(go, pid)
        cases, seizures = count_rows(engine)
        if (cases, seizures) != (result.cases_created, result.seizures_created) or seizures != result.rows:
            raise SystemExit(f"importer wrote {cases} cases / {seizures} seizures; expected {result}")
        return run, result
    finally:
        engine.dispose()


def parse_for_bare(
    path: Path, org_id: int, op_id: int
) -> tuple[list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """The file's rows as typed dicts ready for INSERT (untimed): cases, and per case its seizures."""
    ref = get_reference()
    now = utcnow()
    cases: dict[str, dict[str, Any]] = {}
    seizures: dict[str, list[dict[str, Any]]] = {}
    with path.open(newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            key = r["case_reference"]
            if key not in cases:
                cases[key] = {
                    "operation_id": op_id,
                    "reporting_org_id": org_id,
                    "reference": key,
                    "status": CaseStatus.SUBMITTED,
                    "version": 1,
                    "visibility": Visibility(r["visibility"] or "participants"),
                    "detected_on": dt.date.fromisoformat(r["detected_on"]),
                    "reporting_country": "FR",
                    "region_code": "EUR",
                    "office": r["office"],
                    "place": r["place"],
                    "transport_mode": r["transport_mode"],
                    "is_ecommerce": r["is_ecommerce"] == "yes",
                    "channel": r["channel"],
                    "departure_country": r["departure_country"] or None,
                    "origin_country": r["origin_country"] or None,
                    "destination_country": r["destination_country"] or None,
                    "transit_countries": r["transit_countries"],
                    "detection_method": r["detection_method"],
                    "concealment": r["concealment"] or "NONE",
                    "platform_type": r["platform_type"] or None,
                    "platform_name": r["platform_name"],
                    "consignee_name": r["consignee_name"],
                    "notes": r["notes"],
                    "created_by_id": None,
                    "submitted_at": now,
                    "import_batch_id": None,
                    "created_at": now,
                    "updated_at": now,
                }
                seizures[key] = []
            lines = seizures[key]
            lines.append(
                {
                    "operation_id": op_id,
                    "line_no": len(lines) + 1,
                    "commodity_code": r["commodity_code"],
                    "commodity_group": ref.commodities[r["commodity_code"]].group,
                    "description": r["description"],
                    "brand": r["brand"],
                    "rights_holder": r["rights_holder"],
                    "hs_code": r["hs_code"],
                    "pieces": int(r["pieces"] or 0),
                    "weight_kg": Decimal(r["weight_kg"] or 0),
                    "value_amount": Decimal(r["value_amount"]) if r["value_amount"] else None,
                    "currency": r["currency"] or None,
                    "infringement_type": r["infringement_type"] or "TRADEMARK",
                    "nature": r["nature"] or "COUNTERFEIT",
                    "created_at": now,
                    "updated_at": now,
                }
            )
    return list(cases.values()), [seizures[k] for k in cases]


def _ids(url: str) -> tuple[int, int]:
    from sqlalchemy import select

    engine = make_engine(url)
    try:
        with engine.connect() as c:
            org = c.scalar(select(Organisation.id).where(Organisation.code == REPORTER))
            op = c.scalar(select(Operation.id).where(Operation.code == OP_CODE))
    finally:
        engine.dispose()
    assert org is not None and op is not None
    return org, op


def run_bare_core(url: str, path: Path) -> Run:
    """Core executemany: INSERT cases RETURNING id (insertmanyvalues), then INSERT seizures; commit."""
    from sqlalchemy import insert

    seed_world(url)
    org_id, op_id = _ids(url)
    case_rows, seizure_lists = parse_for_bare(path, org_id, op_id)
    engine, pid = _warm_engine(url)

    def go() -> None:
        with engine.begin() as c:
            ids: list[int] = []
            for i in range(0, len(case_rows), 5000):
                res = c.execute(
                    insert(Case).returning(Case.id, sort_by_parameter_order=True), case_rows[i : i + 5000]
                )
                ids.extend(res.scalars().all())
            rows = [
                s | {"case_id": cid} for cid, lines in zip(ids, seizure_lists, strict=True) for s in lines
            ]
            for i in range(0, len(rows), 10000):
                c.execute(insert(Seizure), rows[i : i + 10000])

    try:
        run, _ = measure(go, pid)
        _check_bare(engine, len(case_rows), sum(map(len, seizure_lists)))
        return run
    finally:
        engine.dispose()


CASE_COPY_COLUMNS = [
    "id",
    "operation_id",
    "reporting_org_id",
    "reference",
    "status",
    "version",
    "visibility",
    "detected_on",
    "reporting_country",
    "region_code",
    "office",
    "place",
    "transport_mode",
    "is_ecommerce",
    "channel",
    "departure_country",
    "origin_country",
    "destination_country",
    "transit_countries",
    "detection_method",
    "concealment",
    "platform_type",
    "platform_name",
    "consignee_name",
    "notes",
    "created_by_id",
    "submitted_at",
    "import_batch_id",
    "created_at",
    "updated_at",
]
SEIZURE_COPY_COLUMNS = [
    "case_id",
    "operation_id",
    "line_no",
    "commodity_code",
    "commodity_group",
    "description",
    "brand",
    "rights_holder",
    "hs_code",
    "pieces",
    "weight_kg",
    "value_amount",
    "currency",
    "infringement_type",
    "nature",
    "created_at",
    "updated_at",
]


def run_bare_copy(url: str, path: Path) -> Run:
    """psycopg COPY: ids drawn from the sequence, COPY case_report, COPY seizure; commit."""
    seed_world(url)
    org_id, op_id = _ids(url)
    case_rows, seizure_lists = parse_for_bare(path, org_id, op_id)
    for c in case_rows:
        c["status"] = c["status"].value
        c["visibility"] = c["visibility"].value
    engine, pid = _warm_engine(url)

    def go() -> None:
        raw = engine.raw_connection()
        try:
            conn = raw.driver_connection
            with conn.cursor() as cur:
                cur.execute(
                    "SELECT nextval(pg_get_serial_sequence('case_report', 'id')) FROM generate_series(1, %s)",
                    (len(case_rows),),
                )
                ids = [r[0] for r in cur.fetchall()]
                with cur.copy(f"COPY case_report ({', '.join(CASE_COPY_COLUMNS)}) FROM STDIN") as cp:
                    for cid, row in zip(ids, case_rows, strict=True):
                        row["id"] = cid
                        cp.write_row([row[k] for k in CASE_COPY_COLUMNS])
                with cur.copy(f"COPY seizure ({', '.join(SEIZURE_COPY_COLUMNS)}) FROM STDIN") as cp:
                    for cid, lines in zip(ids, seizure_lists, strict=True):
                        for s in lines:
                            s["case_id"] = cid
                            cp.write_row([s[k] for k in SEIZURE_COPY_COLUMNS])
            conn.commit()
        finally:
            raw.close()

    try:
        run, _ = measure(go, pid)
        _check_bare(engine, len(case_rows), sum(map(len, seizure_lists)))
        return run
    finally:
        engine.dispose()


def _check_bare(engine: Any, cases: int, seizures: int) -> None:
    got = count_rows(engine)
    if got != (cases, seizures):
        raise SystemExit(f"bare insert wrote {got}; expected {(cases, seizures)}")


# ----------------------------------------------------------------------------------------- main


def bench_backend(
    backend: str, path: Path, warm: Path, repeat: int, pg_url: str, with_core: bool
) -> dict[str, list[Run]]:
    bares: dict[str, Callable[[str, Path], Run]] = (
        {"copy": run_bare_copy} | ({"core": run_bare_core} if with_core else {})
        if backend == "postgres"
        else {"core": run_bare_core}
    )
    # warm-up, untimed, in a throwaway database per path
    with fresh_database(backend, pg_url) as url:
        run_importer(url, warm)
    for fn in bares.values():
        with fresh_database(backend, pg_url) as url:
            fn(url, warm)
    out: dict[str, list[Run]] = {"importer": []} | {k: [] for k in bares}
    for i in range(repeat):
        with fresh_database(backend, pg_url) as url:
            run, result = run_importer(url, path)
        out["importer"].append(run)
        line = [f"{backend} #{i + 1}: importer {_fmt(run)} ({result.cases_created:,} cases)"]
        for name, fn in bares.items():
            with fresh_database(backend, pg_url) as url:
                r = fn(url, path)
            out[name].append(r)
            line.append(f"bare {name} {_fmt(r)}")
        print("; ".join(line), flush=True)
    return out


def _fmt(r: Run) -> str:
    return f"{r.wall:.2f} s (cpu {r.client_cpu:.2f} + server {r.server_cpu:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--backend", choices=("postgres", "sqlite", "both"), default="both")
    ap.add_argument("--pg-url", default=DEFAULT_PG_URL, help="server URL; a new database is created on it")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (each in a fresh database)")
    ap.add_argument("--seed", type=int, default=20250512)
    ap.add_argument(
        "--with-core",
        action="store_true",
        help="PostgreSQL: also time the Core executemany bare insert (slow: psycopg re-parses every "
        "insertmanyvalues batch; about 1 minute for 100,000 rows)",
    )
    args = ap.parse_args()

    path = csv_file(args.rows, args.seed)
    warm = TMP / "import-bench" / f"warmup-{WARMUP_ROWS}.csv"
    write_csv(generate_rows(WARMUP_ROWS, args.seed + 1), warm)
    size = path.stat().st_size
    with path.open(encoding="utf-8") as f:
        n_cases = len({line.split(",", 1)[0] for line in f}) - 1
    backends = ["postgres", "sqlite"] if args.backend == "both" else [args.backend]

    print(f"machine: {machine()}")
    if "postgres" in backends:
        print(f"PostgreSQL {postgres_server_version(args.pg_url)} on {args.pg_url.rsplit('@', 1)[-1]}")
    print(
        f"file: {args.rows:,} rows, {n_cases:,} cases ({args.rows / n_cases:.2f} seizures/case), "
        f"{size / 1024 / 1024:.1f} MiB; repeat {args.repeat}, warm-up excluded"
    )
    if size > 20 * 1024 * 1024:
        print("note: the file is larger than the default 20 MiB upload limit; the benchmark raises it")
    results = {b: bench_backend(b, path, warm, args.repeat, args.pg_url, args.with_core) for b in backends}

    rows_out = []
    verdicts = []
    for b, res in results.items():
        imp = median([r.wall for r in res["importer"]])
        bare_name = min((k for k in res if k != "importer"), key=lambda k: median([r.wall for r in res[k]]))
        bare = median([r.wall for r in res[bare_name]])
        for k, runs in res.items():
            label = "importer (full validation)" if k == "importer" else f"bare insert ({k})"
            walls = [r.wall for r in runs]
            rows_out.append(
                [
                    f"{b}: {label}",
                    f"{median(walls):.2f}",
                    f"{args.rows / median(walls):,.0f}",
                    f"{args.rows / min(walls):,.0f}",
                    f"{median([r.client_cpu for r in runs]):.2f}",
                    f"{median([r.server_cpu for r in runs]):.2f}" if b == "postgres" else "-",
                ]
            )
        ratio = imp / bare
        cpu_ratio = median([r.client_cpu + r.server_cpu for r in res["importer"]]) / median(
            [r.client_cpu + r.server_cpu for r in res[bare_name]]
        )
        rows_out.append(
            [
                f"{b}: importer / bare ({bare_name})",
                f"{ratio:.2f}x",
                "",
                "",
                f"{cpu_ratio:.2f}x (all CPU)",
                "",
            ]
        )
        if b == "postgres":
            met = args.rows / imp >= 20_000
            verdicts.append(f">= 20,000 rows/s into PostgreSQL: {'MET' if met else 'NOT MET'}")
        limit = 2 if b == "postgres" else 4  # PostgreSQL: against the bare COPY (issue 22)
        verdicts.append(f"{b}: within {limit}x of the bare insert: {'MET' if ratio <= limit else 'NOT MET'}")
    print()
    print(
        table(
            ["measure", "median s", "rows/s (median)", "rows/s (best)", "client CPU s", "server CPU s"],
            rows_out,
        )
    )
    print()
    for v in verdicts:
        print("target", v)
    sys.stdout.flush()


if __name__ == "__main__":
    main()

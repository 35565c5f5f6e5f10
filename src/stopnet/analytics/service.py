"""Dashboard aggregates of one operation, over the cases the viewer may read.

Only submitted and validated cases count (drafts never do), and only those that
:func:`stopnet.access.policy.case_read_clause` lets the viewer read. Every filter applies to every panel.

How it is computed (docs/dashboard.md has the reasons and the figures):

1. **Summary (SQL).** Two statements of SQL ``GROUP BY``s (SQLAlchemy Core, ``UNION ALL`` of one branch per
   panel over a common table expression) aggregate the operation's counted cases and seizures by each
   panel's key *and* by the four columns that case visibility depends on (reporting administration,
   region, status, visibility level): the *visibility key*. This summary does not depend on the viewer;
   it depends on the operation, the filters and the data. It is kept in memory and reused until the
   operation's data changes (probe: the latest ``case_report.updated_at`` of the operation, which every
   create, correction, submission and validation moves), or for at most :data:`CACHE_TTL_SECONDS`.
2. **Viewer (SQL + columnar).** The viewer's ``case_read_clause`` is evaluated in SQL, not on the cases
   but on the summary's distinct visibility keys (a ``VALUES`` list of a few hundred rows at most): since
   the clause only reads those four columns, a key passes exactly when every case with that key is
   readable. The summary's rows of the allowed keys are then added up per panel key (polars
   ``group_by``). A clause that reads any other column of the case cannot be evaluated this way: the
   summary is then computed with the clause itself in the ``WHERE``, for that viewer alone.

So the figures are exact for every viewer and never include a case that the viewer may not read, while
the costly scans of the case and seizure tables run once per operation, filters and data version, not
once per viewer and request.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import math
import threading
import time
import unicodedata
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Engine,
    Integer,
    Select,
    String,
    bindparam,
    case,
    cast,
    column,
    func,
    literal,
    null,
    select,
    text,
    type_coerce,
    union_all,
    values,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session
from sqlalchemy.sql import visitors
from sqlalchemy.sql.schema import Column

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core import trends as stats
from stopnet.db.models import Case, CaseStatus, Operation, Seizure
from stopnet.reference import COMMODITY_GROUPS, get_reference

from .schemas import (
    PANELS,
    BrandRow,
    Brands,
    Breakdown,
    BreakdownRow,
    Countries,
    CountryRow,
    Dashboard,
    DashboardFilters,
    DayPoint,
    GroupFigures,
    KeyFigures,
    Progression,
    RouteRow,
    Routes,
    TrendRow,
    Trends,
    panel_attr,
)

__all__ = [
    "CACHE_TTL_SECONDS",
    "COUNTED",
    "DEFAULT_RECENT_DAYS",
    "bare_statements",
    "clear_cache",
    "dashboard",
    "panel",
    "panel_csv",
]

log = logging.getLogger("stopnet.analytics")

#: Only these cases count in aggregates.
COUNTED = (CaseStatus.SUBMITTED, CaseStatus.VALIDATED)
#: The columns of a case that its visibility depends on (what ``case_read_clause`` reads).
VIS_COLUMNS = ("reporting_org_id", "region_code", "status", "visibility")
#: A summary is recomputed after this long even if the data-version probe saw no change.
CACHE_TTL_SECONDS = 60.0
#: A summary whose last build took longer than this is refreshed in the background (the stale one answers).
SYNC_REBUILD_SECONDS = 0.5
# Under a stream of reports the data changes between almost every two requests: a summary younger than
# this answers at once (marked not up to date) while one background thread rebuilds it, so that a
# busy operation costs one rebuild per interval, not one per viewer (benchmarks/load.py).
REBUILD_GAP_SECONDS = 1.0
CACHE_ENTRIES = 16
DEFAULT_RECENT_DAYS = 5
TOP_ROUTES = 25
TOP_BRANDS = 20
TREND_ROWS = 30
TREND_ALPHA = 0.05
TREND_MIN_RATIO = 1.5
MEASURES = ("cases", "seizures", "pieces", "grams", "ecom_cases", "ecom_seizures")
SUMMARY_SCHEMA: dict[str, Any] = {
    "panel": pl.String,
    "k1": pl.String,
    "k2": pl.String,
    **{c: pl.String for c in VIS_COLUMNS},
    **{m: pl.Int64 for m in MEASURES},
}
SUMMARY_SCHEMA["reporting_org_id"] = pl.Int64

# ---------------------------------------------------------------------------------------------- SQL


@dataclass(frozen=True)
class Windows:
    """The trend windows: baseline ``[base_from, base_to]`` and recent ``[recent_from, recent_to]``."""

    base_from: dt.date
    base_to: dt.date
    recent_from: dt.date
    recent_to: dt.date


def trend_windows(
    op: Operation, filters: DashboardFilters, recent_days: int, today: dt.date
) -> Windows | None:
    """The last ``recent_days`` days up to the end of the period against the earlier days of it.

    The period is the filters' dates within the operation's; it ends today at the latest (a running
    operation), never at the latest reported date (which would depend on cases the viewer cannot read).
    """
    start = max(op.starts_on, filters.date_from or op.starts_on)
    end = min(op.ends_on, filters.date_to or op.ends_on, max(today, op.starts_on))
    recent_from = end - dt.timedelta(days=recent_days - 1)
    base_to = recent_from - dt.timedelta(days=1)
    if base_to < start:
        return None
    return Windows(start, base_to, recent_from, end)


def _case_where(op_id: int, f: DashboardFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Case.operation_id == op_id, Case.status.in_(COUNTED)]
    if f.date_from is not None:
        where.append(Case.detected_on >= f.date_from)
    if f.date_to is not None:
        where.append(Case.detected_on <= f.date_to)
    if f.region is not None:
        where.append(Case.region_code.in_(f.codes("region")))
    if f.country is not None:
        where.append(Case.reporting_country.in_(f.codes("country")))
    if f.channel is not None:
        where.append(Case.channel.in_(f.codes("channel")))
    if f.origin is not None:
        where.append(Case.origin_country.in_(f.codes("origin")))
    if f.destination is not None:
        where.append(Case.destination_country.in_(f.codes("destination")))
    if f.is_ecommerce is not None:
        where.append(Case.is_ecommerce.is_(f.is_ecommerce))
    return where


def _seizure_where(op_id: int, f: DashboardFilters) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [Seizure.operation_id == op_id]
    if f.commodity_group is not None:
        where.append(Seizure.commodity_group.in_(f.codes("commodity_group")))
    if f.commodity_code is not None:
        where.append(Seizure.commodity_code.in_(f.codes("commodity_code")))
    return where


def _grams() -> ColumnElement[Any]:
    """Weight in whole grams (``Numeric(14, 3)`` kilograms), so that sums are exact integers."""
    return cast(func.round(Seizure.weight_kg * 1000), BigInteger)


def _str(expr: ColumnElement[Any] | None) -> ColumnElement[Any]:
    return cast(null(), String) if expr is None else cast(expr, String)


def _int(expr: ColumnElement[Any]) -> ColumnElement[Any]:
    return cast(expr, BigInteger)


def summary_statements(
    op_id: int,
    filters: DashboardFilters,
    windows: Windows | None,
    *,
    clause: ColumnElement[bool] | None = None,
    by_visibility: bool = True,
) -> list[Select[Any]]:
    """The two summary statements: case-level panels, then seizure-level panels.

    Each returns rows ``(panel, k1, k2, <visibility key>, cases, seizures, pieces, grams, ecom_cases,
    ecom_seizures)``. ``k2`` of the channel, route, commodity and brand rows is the trend window of the
    rows (``before``, ``after``, or NULL outside both). ``clause`` (a viewer's ``case_read_clause``)
    restricts the cases; with ``by_visibility=False`` the visibility key is not grouped on (the bare
    per-viewer queries, for comparison).

    Totals, regions and countries come from one ``org`` branch (a case's region and country are its
    reporting administration's), and the trend counts of channels, routes, commodities and brands from
    their breakdowns: eight GROUP BYs in all.
    """
    case_where = _case_where(op_id, filters)
    if clause is not None:
        case_where.append(clause)
    seizure_where = _seizure_where(op_id, filters)
    # plain strings in the result (no enum conversion of thousands of rows); no cast in the SQL
    vis_cols = [
        type_coerce(getattr(Case, c), Integer if c == "reporting_org_id" else String).label(c)
        for c in VIS_COLUMNS
    ]

    def window_of(day: Any) -> Any:
        if windows is None:
            return None
        return case(
            (day.between(windows.recent_from, windows.recent_to), "after"),
            (day.between(windows.base_from, windows.base_to), "before"),
            else_=null(),
        )

    def branch(base: Any, name: str, k1: Any, k2: Any, measures: list[Any], where: Any = None) -> Select[Any]:
        keys = [_str(k1).label("k1"), _str(k2).label("k2")]
        vis = (
            [base.c[c] for c in VIS_COLUMNS] if by_visibility else [_str(None).label(c) for c in VIS_COLUMNS]
        )
        stmt = select(literal(name, String).label("panel"), *keys, *vis, *measures).select_from(base)
        if where is not None:
            stmt = stmt.where(where)
        group = [k for k in (k1, k2) if k is not None]
        if by_visibility:
            group += [base.c[c] for c in VIS_COLUMNS]
        return stmt.group_by(*group) if group else stmt

    # --- case level: seizures per case first (so that a case counts once), then one GROUP BY per panel
    per_case = (
        select(
            Seizure.case_id.label("case_id"),
            func.count().label("n"),
            _int(func.sum(Seizure.pieces)).label("p"),
            _int(func.sum(_grams())).label("g"),
        )
        .where(*seizure_where)
        .group_by(Seizure.case_id)
        .subquery("per_case")
    )
    case_base = (
        select(
            Case.detected_on,
            Case.reporting_country,
            Case.transport_mode,
            Case.channel,
            Case.detection_method,
            Case.origin_country,
            Case.destination_country,
            Case.is_ecommerce,
            *(vis_cols if by_visibility else []),
            per_case.c.n,
            per_case.c.p,
            per_case.c.g,
        )
        .join(per_case, per_case.c.case_id == Case.id)
        .where(*case_where)
        .cte("case_base")
    )
    cb = case_base.c
    ecom = cb.is_ecommerce.is_(True)
    case_measures = [
        _int(func.count()).label("cases"),
        _int(func.sum(cb.n)).label("seizures"),
        _int(func.sum(cb.p)).label("pieces"),
        _int(func.sum(cb.g)).label("grams"),
        _int(func.sum(case((ecom, 1), else_=0))).label("ecom_cases"),
        _int(func.sum(case((ecom, cb.n), else_=0))).label("ecom_seizures"),
    ]
    route = (
        func.coalesce(cb.origin_country, "")
        + literal(">", String)
        + func.coalesce(cb.destination_country, "")
    )
    case_branches = [
        branch(case_base, "org", cb.reporting_country, None, case_measures),
        branch(case_base, "day", cb.detected_on, None, case_measures),
        branch(case_base, "transport_mode", cb.transport_mode, None, case_measures),
        branch(case_base, "detection_method", cb.detection_method, None, case_measures),
        branch(case_base, "channel", cb.channel, window_of(cb.detected_on), case_measures),
        branch(case_base, "route", route, window_of(cb.detected_on), case_measures),
    ]

    # --- seizure level: commodities and brands
    seizure_base = (
        select(
            Seizure.commodity_code,
            Seizure.brand,
            Seizure.pieces,
            _grams().label("grams"),
            Case.detected_on,
            Case.is_ecommerce,
            *(vis_cols if by_visibility else []),
        )
        .join(Case, Case.id == Seizure.case_id)
        .where(*seizure_where, *case_where)
        .cte("seizure_base")
    )
    sb = seizure_base.c
    zero = _int(literal(0))
    seizure_measures = [
        zero.label("cases"),
        _int(func.count()).label("seizures"),
        _int(func.sum(sb.pieces)).label("pieces"),
        _int(func.sum(sb.grams)).label("grams"),
        zero.label("ecom_cases"),
        _int(func.sum(case((sb.is_ecommerce.is_(True), 1), else_=0))).label("ecom_seizures"),
    ]
    seizure_branches = [
        branch(seizure_base, "commodity", sb.commodity_code, window_of(sb.detected_on), seizure_measures),
        branch(seizure_base, "brand", sb.brand, window_of(sb.detected_on), seizure_measures, sb.brand != ""),
    ]
    return [
        select(union_all(*case_branches).subquery()),
        select(union_all(*seizure_branches).subquery()),
    ]


# ---------------------------------------------------------------------------------------------- summary


class _NotAdaptable(Exception):
    """The viewer's clause reads a case column outside the visibility key."""


def _adapt(clause: ColumnElement[bool], target: Any) -> ColumnElement[bool]:
    """``clause`` with every ``case_report`` column replaced by the same-named column of ``target``."""
    table = Case.__table__

    def replace(element: Any, **kw: Any) -> Any:
        if isinstance(element, Column) and element.table is table:
            if element.name not in VIS_COLUMNS:
                raise _NotAdaptable(element.name)
            return target.c[element.name]
        return None

    opts: dict[str, Any] = {}
    return visitors.replacement_traverse(clause, opts, replace)


def _clause_key(clause: ColumnElement[bool]) -> tuple[str, tuple[tuple[str, Any], ...]]:
    """A hashable identity of a viewer's clause: its SQL text and its parameter values."""
    compiled = clause.compile(compile_kwargs={"render_postcompile": False})
    params = tuple(
        sorted(
            (k, tuple(v) if isinstance(v, list | tuple | set | frozenset) else v)
            for k, v in compiled.params.items()
        )
    )
    return str(compiled), params


@dataclass(frozen=True)
class _Totals:
    """The viewer's sums per panel and key: ``panel -> list of row dicts``."""

    panels: dict[str, list[dict[str, Any]]]
    windows: dict[str, list[dict[str, Any]]]  # channel, route, commodity, brand: rows per trend window
    administrations: int
    as_of: dt.datetime
    fresh: bool = True
    #: panel models built from these sums (the same for every request of this viewer and summary)
    built: dict[str, Any] = field(default_factory=dict, compare=False)


@dataclass
class _Summary:
    version: tuple[Any, ...]
    built_at: float  # time.monotonic() when the build started
    as_of: dt.datetime  # the same, as a UTC date and time: the data is at least this recent
    build_seconds: float
    frame: pl.DataFrame  # the summary rows, with a "vk" column (index of the visibility key)
    vkeys: pl.DataFrame  # vk, reporting_org_id, region_code, status, visibility (in that order)
    #: per viewer clause, the visibility keys it allows; shared with the next summary of the same key
    #: when that one has the same visibility keys (the clause's verdict on them cannot differ)
    allowed: dict[Any, frozenset[int]] = field(default_factory=dict)
    #: per set of allowed keys, the sums (viewers allowed the same keys see the same figures)
    totals: dict[frozenset[int], _Totals] = field(default_factory=dict)


class _Cache:
    """Summaries of one database, least recently used out first; one build at a time per key."""

    def __init__(self) -> None:
        self.entries: OrderedDict[Any, _Summary] = OrderedDict()
        self.lock = threading.Lock()
        self.building: dict[Any, threading.Lock] = {}
        self.refreshing: set[Any] = set()

    def key_lock(self, key: Any) -> threading.Lock:
        with self.lock:
            return self.building.setdefault(key, threading.Lock())

    def get(self, key: Any) -> _Summary | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: Any, entry: _Summary) -> None:
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > CACHE_ENTRIES:
                old, _ = self.entries.popitem(last=False)
                self.building.pop(old, None)


_CACHES: weakref.WeakKeyDictionary[Engine, _Cache] = weakref.WeakKeyDictionary()
_CACHES_LOCK = threading.Lock()


def _engine_of(session: Session) -> Engine:
    bind = session.get_bind()
    return bind if isinstance(bind, Engine) else bind.engine


def _cache_for(engine: Engine) -> _Cache:
    with _CACHES_LOCK:
        cache = _CACHES.get(engine)
        if cache is None:
            cache = _CACHES[engine] = _Cache()
        return cache


def clear_cache() -> None:
    """Forget every summary (tests and benchmarks)."""
    with _CACHES_LOCK:
        _CACHES.clear()


def data_version(engine: Engine, op_id: int) -> tuple[Any, ...]:
    """Moves whenever a case of the operation is created or changed: its latest ``updated_at``.

    Read on a connection of its own, like the summary: committed data only (a shared summary must never
    hold another request's uncommitted changes). Index ``ix_case_report_op_updated`` makes it one probe.
    """
    with engine.connect() as conn:
        latest = conn.scalar(select(func.max(Case.updated_at)).where(Case.operation_id == op_id))
    return (op_id, latest)


def _run(engine: Engine, stmt: Select[Any]) -> pl.DataFrame:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # this transaction only: hash aggregates in memory, and no JIT compilation (which costs more
            # than it saves on these short, wide statements)
            conn.execute(text("SET LOCAL work_mem = '128MB'"))
            conn.execute(text("SET LOCAL jit = off"))
        rows = conn.execute(stmt).all()
        conn.rollback()
    return pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row")


def _build(
    engine: Engine, version: tuple[Any, ...], statements: Sequence[Select[Any]], previous: _Summary | None
) -> _Summary:
    """Run the summary statements (at the same time on PostgreSQL, one connection each).

    The visibility keys are numbered in sorted order, so that a rebuild after new reports of the same
    administrations has the same keys as ``previous``: it then keeps its viewers' allowed keys.
    """
    started, as_of, t0 = time.monotonic(), dt.datetime.now(dt.UTC), time.perf_counter()
    if engine.dialect.name == "postgresql" and len(statements) > 1:
        with ThreadPoolExecutor(max_workers=len(statements), thread_name_prefix="dashboard") as pool:
            frames = list(pool.map(lambda st: _run(engine, st), statements))
    else:
        frames = [_run(engine, st) for st in statements]
    frame = pl.concat(frames)
    vkeys = (
        frame.select(VIS_COLUMNS)
        .unique()
        .sort(VIS_COLUMNS, nulls_last=True)
        .with_row_index("vk")
        .with_columns(pl.col("vk").cast(pl.Int32))
    )
    frame = frame.join(vkeys, on=list(VIS_COLUMNS), how="left", nulls_equal=True).drop(VIS_COLUMNS)
    entry = _Summary(version, started, as_of, time.perf_counter() - t0, frame, vkeys)
    if previous is not None and previous.vkeys.equals(vkeys):
        entry.allowed = previous.allowed
    return entry


def _summary(
    engine: Engine, key: Any, op_id: int, statements: Callable[[], Sequence[Select[Any]]]
) -> tuple[_Summary, bool]:
    """The summary of ``key`` and whether it is up to date (built after the operation's latest change).

    A summary is rebuilt when the operation's data changed, or when it is older than
    :data:`CACHE_TTL_SECONDS`. The rebuild happens before answering, unless the summary's last build took
    more than :data:`SYNC_REBUILD_SECONDS`, or the summary is younger than :data:`REBUILD_GAP_SECONDS`:
    then the current summary answers at once (marked not up to date if the data changed) while one
    background thread rebuilds it, so that a large operation with reports flowing in never makes a
    viewer wait for the scans.
    """
    cache = _cache_for(engine)
    requested = time.monotonic()
    version = data_version(engine, op_id)
    entry = cache.get(key)
    if entry is not None:
        same = entry.version == version
        if same and time.monotonic() - entry.built_at <= CACHE_TTL_SECONDS:
            return entry, True
        if entry.build_seconds > SYNC_REBUILD_SECONDS or (
            not same and time.monotonic() - entry.built_at < REBUILD_GAP_SECONDS
        ):
            _refresh_in_background(engine, cache, key, version, statements)
            return entry, same
    with cache.key_lock(key):
        entry = cache.get(key)  # another request may have built it meanwhile
        # a build that started after this request arrived holds everything committed before it: take it
        # (under a stream of reports, waiting requests would otherwise rebuild one after another)
        built_since = entry is not None and entry.built_at >= requested
        if entry is None or (
            not built_since
            and (entry.version != version or time.monotonic() - entry.built_at > CACHE_TTL_SECONDS)
        ):
            entry = _build(engine, version, statements(), entry)
            cache.put(key, entry)
    return entry, True


def _refresh_in_background(
    engine: Engine,
    cache: _Cache,
    key: Any,
    version: tuple[Any, ...],
    statements: Callable[[], Sequence[Select[Any]]],
) -> None:
    with cache.lock:
        if key in cache.refreshing:
            return
        cache.refreshing.add(key)

    def work() -> None:
        try:
            with cache.key_lock(key):
                cache.put(key, _build(engine, version, statements(), cache.get(key)))
        except Exception:
            log.exception("dashboard summary refresh failed")
        finally:
            with cache.lock:
                cache.refreshing.discard(key)

    threading.Thread(target=work, name="dashboard-refresh", daemon=True).start()


def _allowed_keys(session: Session, clause: ColumnElement[bool], vkeys: pl.DataFrame) -> frozenset[int]:
    """The visibility keys every case of which ``clause`` lets the viewer read (evaluated in SQL).

    The keys are a small table (a few hundred rows at most): on PostgreSQL five arrays ``unnest``-ed, one
    parameter each; elsewhere a ``VALUES`` list.
    """
    types: dict[str, Any] = {"vk": Integer, "reporting_org_id": Integer}
    names = ["vk", *VIS_COLUMNS]
    columns = [column(n, types.get(n, String)) for n in names]
    if _engine_of(session).dialect.name == "postgresql":
        data = vkeys.select(names).to_dict(as_series=False)
        arrays = [bindparam(f"vkeys_{n}", data[n], type_=ARRAY(types.get(n, String))) for n in names]
        table: Any = func.unnest(*arrays).table_valued(*columns).render_derived(name="vkeys")
        return frozenset(session.scalars(select(table.c.vk).where(_adapt(clause, table))))
    allowed: set[int] = set()
    rows = vkeys.select(names).rows()
    for start in range(0, len(rows), 500):
        table = values(*columns, name="vkeys").data(rows[start : start + 500]).cte("vkeys")
        allowed.update(session.scalars(select(table.c.vk).where(_adapt(clause, table))))
    return frozenset(allowed)


def _viewer_totals(
    session: Session, principal: Principal, op: Operation, filters: DashboardFilters, windows: Windows | None
) -> _Totals:
    clause = policy.case_read_clause(session, principal, op.id)
    clause_key = _clause_key(clause)
    # a clause reading a case column outside the visibility key gets a summary of this viewer's own
    shared = _adaptable(clause)
    key = (op.id, op.created_at, filters, windows, "shared" if shared else clause_key)
    engine = _engine_of(session)
    entry, fresh = _summary(
        engine,
        key,
        op.id,
        lambda: summary_statements(op.id, filters, windows, clause=None if shared else clause),
    )
    allowed = entry.allowed.get(clause_key)
    if allowed is None:
        if shared:
            allowed = _allowed_keys(session, clause, entry.vkeys)
        else:
            allowed = frozenset(entry.vkeys["vk"].to_list())
        entry.allowed[clause_key] = allowed
    totals = entry.totals.get(allowed)
    if totals is None:
        totals = entry.totals[allowed] = _sum_for(entry, allowed)
    return replace(totals, fresh=fresh)


def _sum_for(entry: _Summary, allowed: frozenset[int]) -> _Totals:
    """The summary's rows of the allowed visibility keys, added up per panel and key (polars)."""
    sums = [pl.col(m).sum() for m in MEASURES]
    mine = entry.frame.filter(pl.col("vk").is_in(list(allowed)))
    by_window = mine.group_by("panel", "k1", "k2").agg(sums)
    by_key = by_window.group_by("panel", "k1").agg(sums)
    orgs = mine.filter(pl.col("panel") == "org").join(entry.vkeys, on="vk")
    regions = (
        orgs.group_by(pl.col("region_code").alias("k1"))
        .agg(sums)
        .with_columns(pl.lit("region").alias("panel"))
    )
    total = orgs.select(sums).with_columns(
        pl.lit("total").alias("panel"), pl.lit(None, pl.String).alias("k1")
    )
    flat = pl.concat(
        [
            by_key.filter(pl.col("panel") != "org"),
            by_key.filter(pl.col("panel") == "org").with_columns(pl.lit("country").alias("panel")),
            regions,
            total,
        ],
        how="diagonal_relaxed",
    )
    panels = {
        str(k[0]): part.drop("panel").to_dicts()
        for k, part in flat.partition_by("panel", as_dict=True).items()
    }
    windows = {
        str(k[0]): part.drop("panel").to_dicts()
        for k, part in by_window.filter(pl.col("k2").is_not_null())
        .partition_by("panel", as_dict=True)
        .items()
    }
    administrations = orgs.filter(pl.col("cases") > 0).get_column("reporting_org_id").n_unique()
    return _Totals(panels, windows, administrations, entry.as_of)


def _adaptable(clause: ColumnElement[bool]) -> bool:
    """Whether ``clause`` reads no column but those of the visibility key (no other column of the case,
    no other table): its verdict on a key then holds for every case with that key, and for as long as
    the summary's keys stay the same."""
    table = Case.__table__
    return all(
        not isinstance(e, Column) or (e.table is table and e.name in VIS_COLUMNS)
        for e in visitors.iterate(clause)
    )


# ---------------------------------------------------------------------------------------------- panels


def _kg(grams: int) -> float:
    return round(grams / 1000, 3)


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def _label(kind: str, code: str | None) -> str:
    if code is None or code == "":
        return "Unknown"
    ref = get_reference()
    return ref.label(kind, code) if ref.has(kind, code) else code


def _breakdown(
    rows: Iterable[dict[str, Any]],
    dimension: str,
    kind: str,
    *,
    all_codes: Sequence[str] = (),
    case_level: bool = True,
    label: Callable[[str | None], str] | None = None,
) -> Breakdown:
    by_code = {r["k1"]: r for r in rows}
    for code in all_codes:
        by_code.setdefault(code, {"k1": code, **dict.fromkeys(MEASURES, 0)})
    total = sum(r["seizures"] for r in by_code.values())
    out = [
        BreakdownRow(
            code=code or "",
            label=label(code) if label else _label(kind, code),
            cases=r["cases"] if case_level else None,
            seizures=r["seizures"],
            pieces=r["pieces"],
            weight_kg=_kg(r["grams"]),
            ecommerce_seizures=r["ecom_seizures"],
            share=_share(r["seizures"], total),
        )
        for code, r in by_code.items()
    ]
    out.sort(key=lambda r: (-r.seizures, -(r.cases or 0), r.code))
    return Breakdown(dimension=dimension, total_seizures=total, rows=out)


def _key_figures(t: _Totals) -> KeyFigures:
    ref = get_reference()
    total = (t.panels.get("total") or [dict.fromkeys(MEASURES, 0)])[0]
    total = {m: total[m] or 0 for m in MEASURES}
    commodities = t.panels.get("commodity", [])
    groups = []
    for g in COMMODITY_GROUPS:
        rows = [r for r in commodities if r["k1"] in ref.commodities and ref.commodities[r["k1"]].group == g]
        grams = sum(r["grams"] for r in rows)
        groups.append(
            GroupFigures(
                group=g,
                label=ref.groups[g],
                seizures=sum(r["seizures"] for r in rows),
                pieces=sum(r["pieces"] for r in rows),
                weight_kg=_kg(grams),
                tonnes=round(grams / 1_000_000, 3),
            )
        )
    regions = [r for r in t.panels.get("region", []) if r["k1"]]
    days = sorted(dt.date.fromisoformat(r["k1"]) for r in t.panels.get("day", []) if r["cases"])
    seizures = total["seizures"]
    return KeyFigures(
        cases=total["cases"],
        seizures=seizures,
        reporting_administrations=t.administrations,
        regions_reporting=sum(1 for r in regions if r["cases"]),
        regions_total=len(ref.regions),
        pieces=total["pieces"],
        weight_kg=_kg(total["grams"]),
        tonnes=round(total["grams"] / 1_000_000, 3),
        groups=groups,
        ecommerce_cases=total["ecom_cases"],
        ecommerce_seizures=total["ecom_seizures"],
        ecommerce_share=round(total["ecom_seizures"] / seizures, 6) if seizures else None,
        ecommerce_regions=sum(1 for r in regions if r["ecom_cases"]),
        first_day=days[0] if days else None,
        last_day=days[-1] if days else None,
    )


def _progression(t: _Totals, op: Operation, filters: DashboardFilters) -> Progression:
    by_day = {r["k1"]: r for r in t.panels.get("day", [])}
    start = max(op.starts_on, filters.date_from or op.starts_on)
    end = min(op.ends_on, filters.date_to or op.ends_on)
    points: list[DayPoint] = []
    cc = cs = cp = 0
    for i in range((end - start).days + 1):
        day = start + dt.timedelta(days=i)
        r = by_day.get(day.isoformat(), dict.fromkeys(MEASURES, 0))
        cc, cs, cp = cc + r["cases"], cs + r["seizures"], cp + r["pieces"]
        points.append(
            DayPoint(
                day=day,
                cases=r["cases"],
                seizures=r["seizures"],
                pieces=r["pieces"],
                ecommerce_seizures=r["ecom_seizures"],
                cumulative_cases=cc,
                cumulative_seizures=cs,
                cumulative_pieces=cp,
            )
        )
    return Progression(days=points)


def _countries(t: _Totals) -> Countries:
    ref = get_reference()
    b = _breakdown(t.panels.get("country", []), "reporting_country", "countries")
    rows = [
        CountryRow(
            **r.model_dump(),
            iso3=ref.countries[r.code].iso3 if r.code in ref.countries else "",
            region_code=ref.region_of(r.code),
        )
        for r in b.rows
    ]
    return Countries(total_seizures=b.total_seizures, rows=rows)


def _therapeutic(t: _Totals) -> Breakdown:
    ref = get_reference()
    medicines = [
        r
        for r in t.panels.get("commodity", [])
        if r["k1"] in ref.commodities and ref.commodities[r["k1"]].group == "medicines"
    ]

    def label(code: str | None) -> str:
        c = ref.commodities[code or ""]
        return f"{c.name} (ATC {c.atc})" if c.atc else c.name

    return _breakdown(medicines, "therapeutic_group", "commodities", case_level=False, label=label)


def _routes(t: _Totals) -> Routes:
    rows = sorted(t.panels.get("route", []), key=lambda r: (-r["seizures"], -r["cases"], r["k1"] or ""))
    out = []
    for r in rows[:TOP_ROUTES]:
        origin, _, destination = (r["k1"] or ">").partition(">")
        out.append(
            RouteRow(
                origin=origin or None,
                origin_label=_label("countries", origin),
                destination=destination or None,
                destination_label=_label("countries", destination),
                cases=r["cases"],
                seizures=r["seizures"],
                pieces=r["pieces"],
                weight_kg=_kg(r["grams"]),
            )
        )
    return Routes(total_routes=len(rows), rows=out)


def _brands(t: _Totals) -> Brands:
    rows = sorted(t.panels.get("brand", []), key=lambda r: (-r["seizures"], -r["pieces"], r["k1"] or ""))
    return Brands(
        total_brands=len(rows),
        rows=[
            BrandRow(
                brand=r["k1"] or "", seizures=r["seizures"], pieces=r["pieces"], weight_kg=_kg(r["grams"])
            )
            for r in rows[:TOP_BRANDS]
        ],
    )


_TREND_DIMENSIONS = {"commodity": "commodity", "channel": "channel", "route": "route", "brand": "brand"}


def _trend_label(dimension: str, code: str) -> str:
    if dimension == "commodity":
        return _label("commodities", code)
    if dimension == "channel":
        return _label("channels", code)
    if dimension == "route":
        origin, _, destination = code.partition(">")
        return f"{_label('countries', origin or None)} → {_label('countries', destination or None)}"
    return code


def _trends(t: _Totals, windows: Windows | None) -> Trends:
    before = after = 0
    if windows is not None:
        for r in t.panels.get("day", []):
            day = dt.date.fromisoformat(r["k1"])
            if windows.recent_from <= day <= windows.recent_to:
                after += r["seizures"]
            elif windows.base_from <= day <= windows.base_to:
                before += r["seizures"]
    counts: dict[tuple[str, str], tuple[int, int]] = {}
    for panel_name, dimension in _TREND_DIMENSIONS.items():
        for r in t.windows.get(panel_name, []):
            if r["k2"] not in ("before", "after"):
                continue  # outside both windows
            key = (dimension, r["k1"] or "")
            b, a = counts.get(key, (0, 0))
            counts[key] = (b + r["seizures"], a) if r["k2"] == "before" else (b, a + r["seizures"])
    results = stats.detect_trends(counts, before, after, alpha=TREND_ALPHA, min_ratio=TREND_MIN_RATIO)
    rows = [
        TrendRow(
            dimension=r.dimension,
            code=r.code,
            label=_trend_label(r.dimension, r.code),
            before=r.before,
            after=r.after,
            share_before=round(r.share_before, 6),
            share_after=round(r.share_after, 6),
            rate_ratio=round(r.rate_ratio, 4) if math.isfinite(r.rate_ratio) else 0.0,
            p_value=r.p_value,
            q_value=r.q_value,
            flagged=r.flagged,
        )
        for r in results[:TREND_ROWS]
    ]
    return Trends(
        test=stats.TEST_NAME,
        baseline_from=windows.base_from if windows else None,
        baseline_to=windows.base_to if windows else None,
        recent_from=windows.recent_from if windows else None,
        recent_to=windows.recent_to if windows else None,
        total_before=before,
        total_after=after,
        tested=len(results),
        alpha=TREND_ALPHA,
        min_ratio=TREND_MIN_RATIO,
        rows=rows,
    )


def _panel_builders(
    t: _Totals, op: Operation, filters: DashboardFilters, windows: Windows | None
) -> dict[str, Callable[[], Any]]:
    ref = get_reference()
    p = t.panels
    return {
        "key-figures": lambda: _key_figures(t),
        "progression": lambda: _progression(t, op, filters),
        "regions": lambda: _breakdown(
            p.get("region", []), "region", "regions", all_codes=[r.code for r in ref.regions]
        ),
        "countries": lambda: _countries(t),
        "commodities": lambda: _breakdown(
            p.get("commodity", []), "commodity", "commodities", case_level=False
        ),
        "therapeutic": lambda: _therapeutic(t),
        "transport-modes": lambda: _breakdown(
            p.get("transport_mode", []),
            "transport_mode",
            "transport_modes",
            all_codes=list(ref.transport_modes),
        ),
        "channels": lambda: _breakdown(
            p.get("channel", []), "channel", "channels", all_codes=list(ref.channels)
        ),
        "detection-methods": lambda: _breakdown(
            p.get("detection_method", []),
            "detection_method",
            "detection_methods",
            all_codes=list(ref.detection_methods),
        ),
        "routes": lambda: _routes(t),
        "brands": lambda: _brands(t),
        "trends": lambda: _trends(t, windows),
    }


def _prepare(
    session: Session,
    principal: Principal,
    op: Operation,
    filters: DashboardFilters,
    recent_days: int,
    today: dt.date | None,
) -> tuple[_Totals, dict[str, Callable[[], Any]]]:
    policy.require_read(principal)
    today = today or dt.datetime.now(dt.UTC).date()
    filters = filters.for_period(op.starts_on, op.ends_on, today)
    windows = trend_windows(op, filters, recent_days, today)
    totals = _viewer_totals(session, principal, op, filters, windows)
    builders = _panel_builders(totals, op, filters, windows)

    def memo(name: str) -> Callable[[], Any]:
        def build() -> Any:
            model = totals.built.get(name)
            if model is None:
                model = totals.built[name] = builders[name]()
            return model

        return build

    return totals, {name: memo(name) for name in builders}


def dashboard(
    session: Session,
    principal: Principal,
    op: Operation,
    filters: DashboardFilters,
    recent_days: int = DEFAULT_RECENT_DAYS,
    *,
    today: dt.date | None = None,
) -> Dashboard:
    """Every panel, for ``principal`` (the operation must already be one it may see: ``get_operation``)."""
    totals, builders = _prepare(session, principal, op, filters, recent_days, today)
    return Dashboard(
        operation=op.code,
        operation_name=op.name,
        starts_on=op.starts_on,
        ends_on=op.ends_on,
        filters=filters,
        recent_days=recent_days,
        as_of=totals.as_of,
        fresh=totals.fresh,
        **{panel_attr(name): build() for name, build in builders.items()},
    )


def panel(
    session: Session,
    principal: Principal,
    op: Operation,
    filters: DashboardFilters,
    name: str,
    recent_days: int = DEFAULT_RECENT_DAYS,
    *,
    today: dt.date | None = None,
) -> tuple[Any, dt.datetime, bool]:
    """One panel's model, the time its figures are as of, and whether they are up to date."""
    if name not in PANELS:
        raise ValueError(f"unknown panel {name!r}")
    totals, builders = _prepare(session, principal, op, filters, recent_days, today)
    return builders[name](), totals.as_of, totals.fresh


def bare_statements(
    session: Session, principal: Principal, op: Operation, filters: DashboardFilters, recent_days: int
) -> list[Select[Any]]:
    """The same GROUP BYs for one viewer, with its clause in the WHERE and no summary (benchmarks)."""
    windows = trend_windows(op, filters, recent_days, dt.datetime.now(dt.UTC).date())
    clause = policy.case_read_clause(session, principal, op.id)
    return summary_statements(op.id, filters, windows, clause=clause, by_visibility=False)


# ---------------------------------------------------------------------------------------------- CSV

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Characters a spreadsheet may skip before a formula sign: spaces and invisible ones (zero-width space
# and joiners, BOM, bidi marks: Unicode categories Z*, Cc and Cf).
_SKIPPED_CATEGORIES = ("Zs", "Zl", "Zp", "Cc", "Cf")


def csv_cell(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text that starts with = + - @ tab or CR, also written
    full-width (＝ ＋ － ＠) or small (﹦ ﹢ ﹣ ﹫), or after spaces and invisible characters, gets a
    leading quote."""
    if isinstance(value, str) and _looks_like_formula(value):
        return "'" + value
    return value


def _looks_like_formula(text: str) -> bool:
    if text.startswith(_FORMULA_START):
        return True
    for ch in text:
        if unicodedata.category(ch) not in _SKIPPED_CATEGORIES:  # the first visible character
            return unicodedata.normalize("NFKC", ch).startswith(_FORMULA_START)
        if ch in "\t\r":
            return True
    return False


def panel_table(name: str, model: Any) -> tuple[list[str], list[list[Any]]]:
    """A panel as a header and rows."""
    if name == "key-figures":
        kf: KeyFigures = model
        rows: list[list[Any]] = [
            ["cases", kf.cases],
            ["seizures", kf.seizures],
            ["reporting_administrations", kf.reporting_administrations],
            ["regions_reporting", kf.regions_reporting],
            ["pieces", kf.pieces],
            ["tonnes", kf.tonnes],
            ["ecommerce_cases", kf.ecommerce_cases],
            ["ecommerce_seizures", kf.ecommerce_seizures],
            ["ecommerce_share", kf.ecommerce_share],
            ["ecommerce_regions", kf.ecommerce_regions],
        ]
        for g in kf.groups:
            rows += [
                [f"{g.group}_seizures", g.seizures],
                [f"{g.group}_pieces", g.pieces],
                [f"{g.group}_tonnes", g.tonnes],
            ]
        return ["figure", "value"], rows
    if name == "progression":
        return _table(model.days)
    if name == "routes":
        return _table(model.rows)
    if name == "brands":
        return _table(model.rows)
    if name == "trends":
        return _table(model.rows)
    return _table(model.rows)


def _table(items: Sequence[Any]) -> tuple[list[str], list[list[Any]]]:
    if not items:
        return [], []
    header = list(type(items[0]).model_fields)
    return header, [[getattr(i, h) for h in header] for i in items]


def panel_csv(name: str, model: Any) -> str:
    header, rows = panel_table(name, model)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([csv_cell(h) for h in header])
    for row in rows:
        w.writerow(
            [csv_cell("" if v is None else (v.isoformat() if isinstance(v, dt.date) else v)) for v in row]
        )
    return buf.getvalue()

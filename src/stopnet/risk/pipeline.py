"""Batch scoring of consignment files: read -> features -> model -> rules -> selection -> Parquet.

:func:`score_file` works in chunks (default 500,000 rows) so memory stays bounded by one chunk plus
a few bytes of results per row (score, rule hits, group keys). Each chunk is scored by
:func:`score_chunk`, a plain picklable function, either in this process or on a Dask cluster
(``dask_scheduler``: an address or a ``distributed.Client``). Chunk boundaries do not depend on where
chunks run, and selection is done once on the gathered results, so a Dask run writes exactly the same
file as a local run.

Pass 1 scores every chunk and keeps the features of the rows that could be selected (its candidates:
:class:`ChunkTask`); the selection then runs over all rows; pass 2 explains each chunk's selected rows
from those features (or reads the chunk again, if too many of its rows were candidates) and writes the
output chunk.

Output columns (one row per input row, input order): ``consignment_id``, ``score`` (calibrated
probability), ``model_version``, ``rule_hits`` (list of rule ids), ``rule_score`` (summed weight of the
rules hit), ``lane`` (RED / AMBER / GREEN), ``selection_reason`` (RULE / SCORE / EXPLORE / null) and
``explanation`` (top model contributions, selected rows only); plus any ``keep_columns``.

:func:`score_one` scores one consignment given as a dict (for the API), with the same model and rules.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from stopnet.core.progress import ProgressCallback
from stopnet.risk.consignments import (
    CONSIGNMENT_LABEL_SCHEMA,
    CONSIGNMENT_SCHEMA,
    ConsignmentSchemaError,
    coerce_consignments,
    consignment_frame,
    consignment_row,
    file_format,
)
from stopnet.risk.explain import ContributionTables
from stopnet.risk.features import FeatureSpec, to_numpy
from stopnet.risk.rules import Rule, RuleHits, compile_rules, evaluate_rules, hits_to_series, weighted_hits
from stopnet.risk.selection import (
    Capacity,
    Selection,
    exploration_keys,
    group_index,
    merge_group_index,
    ranking_scores,
    rule_priority,
    select_for_inspection,
    top_k_per_group,
)

__all__ = [
    "CONSIGNMENT_PARAMS",
    "CONSIGNMENT_SPEC",
    "DATE_COL",
    "LABEL_COL",
    "OUTPUT_SCHEMA",
    "CandidateFloors",
    "ChunkResult",
    "ChunkTask",
    "ConsignmentScorer",
    "RiskModelScorer",
    "ScoreReport",
    "ScoringModel",
    "as_scorer",
    "consignment_feature_spec",
    "load_model",
    "plan_chunks",
    "prepare_consignments",
    "score_chunk",
    "score_file",
    "score_frame",
    "score_one",
    "train_consignment_model",
]

#: Label used for training: ``seized`` for inspected consignments, null (unknown) otherwise.
LABEL_COL = "label"
#: Date column derived from ``declared_at`` (risk histories are time-safe by this date).
DATE_COL = "declared_date"

# Keywords of the declared description that carry risk signal (one regex pass; first match wins).
_KEYWORDS = (
    "sneaker", "shoe", "boot", "sandal", "watch", "pen", "injector", "gift", "sample", "tablet", "capsule",
    "pill", "supplement", "vitamin", "herbal", "cream", "perfume", "lipstick", "makeup", "eyeshadow",
    "bag", "wallet", "purse", "backpack", "earphone", "earbud", "charger", "power bank", "cable", "phone",
    "toy", "doll", "block", "car", "brake", "motorcycle", "filter", "dress", "shirt", "hoodie", "jacket",
    "jeans", "sportswear", "cloth", "textile", "accessor", "book", "document", "magazine", "monitor",
    "thermometer", "massage", "oximeter", "hearing",
)  # fmt: skip
_KEYWORD_RE = r"(?i)\b(" + "|".join(_KEYWORDS) + ")"


def consignment_feature_spec() -> FeatureSpec:
    """Feature spec of the consignment risk model (used with :func:`prepare_consignments`).

    Row-wise features only (no ``same_day_keys``), so scoring a row does not depend on the chunk it is in.
    """
    return FeatureSpec(
        categorical=(
            "channel",
            "carrier",
            "origin_country",
            "departure_country",
            "currency",
            "marketplace",
            "desc_kw",
            "hs4",
        ),
        numeric=("quantity", "value_per_item"),
        history_keys=(("sender_id",),),
        frequency_keys=(),
        same_day_keys=(),
        hs_col="hs_code",
        hs_levels=(4,),
        value_col="declared_value",
        mass_col="weight_kg",
        tax_rate_col=None,
        price_level=False,
        date_parts=False,
        smoothing=10.0,
        label_delay_days=0,
    )


CONSIGNMENT_SPEC: FeatureSpec = consignment_feature_spec()

# Input columns the model and selection need (rules may need more: see _needed_columns).
_MODEL_INPUT = (
    "consignment_id",
    "declared_at",
    "channel",
    "carrier",
    "sender_id",
    "origin_country",
    "departure_country",
    "description",
    "hs_code",
    "declared_value",
    "currency",
    "weight_kg",
    "quantity",
    "marketplace",
)


def prepare_consignments(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the derived columns the consignment model uses (vectorised, row-wise).

    ``declared_date``, ``desc_kw`` (first risk keyword of the description, ``other`` if none),
    ``value_per_item`` and, when ``inspected`` and ``seized`` are present, ``label``.
    """
    # keywords are extracted once per distinct description (descriptions repeat a lot)
    distinct = frame.select(pl.col("description").unique().drop_nulls())
    keyword = distinct.select(
        pl.col("description").str.extract(_KEYWORD_RE, 1).str.to_lowercase().fill_null("other")
    ).to_series()
    exprs: list[pl.Expr] = [
        pl.col("declared_at").cast(pl.Date).alias(DATE_COL),
        pl.col("description")
        .replace_strict(distinct.to_series(), keyword, default="other", return_dtype=pl.String)
        .alias("desc_kw"),
        (
            pl.col("declared_value").cast(pl.Float64)
            / pl.col("quantity").cast(pl.Float64).clip(lower_bound=1.0)
        ).alias("value_per_item"),
    ]
    if "inspected" in frame.columns and "seized" in frame.columns:
        exprs.append(
            pl.when(pl.col("inspected").fill_null(False))
            .then(pl.col("seized").fill_null(False).cast(pl.Int8))
            .otherwise(None)
            .alias(LABEL_COL)
        )
    return frame.with_columns(exprs)


_KEYWORD = re.compile(_KEYWORD_RE)


def prepare_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`prepare_consignments` of one consignment given as a dict of schema values
    (:func:`~stopnet.risk.consignments.consignment_row`): the same derived values, in plain Python."""
    out = dict(row)
    declared = row.get("declared_at")
    out[DATE_COL] = declared.date() if isinstance(declared, dt.datetime) else declared
    description = row.get("description")
    found = _KEYWORD.search(description) if isinstance(description, str) else None
    out["desc_kw"] = found.group(1).lower() if found else "other"
    value, quantity = row.get("declared_value"), row.get("quantity")
    out["value_per_item"] = (
        None if value is None or quantity is None else float(value) / max(float(quantity), 1.0)
    )
    if "inspected" in row and "seized" in row:
        out[LABEL_COL] = int(bool(row["seized"])) if row["inspected"] else None
    return out


# --------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------


class ScoringModel(Protocol):
    """What the pipeline needs from a model (:class:`~stopnet.risk.model.RiskModel` fits)."""

    @property
    def version(self) -> str: ...

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray: ...

    def explain(self, frame: pl.DataFrame, top_k: int = ...) -> Any: ...


#: LightGBM parameters of the consignment model (override ``RiskModel`` defaults): small, shallow trees,
#: because scoring 10 M consignments is dominated by tree traversal (see docs/risk.md, Scoring pipeline).
CONSIGNMENT_PARAMS: dict[str, Any] = {
    "learning_rate": 0.15,
    "num_leaves": 7,
    "min_data_in_leaf": 20,
    "max_cat_to_onehot": 8,
    "force_row_wise": False,
    "force_col_wise": True,
}


@dataclass
class RiskModelScorer:
    """Matrix-level access to a :class:`~stopnet.risk.model.RiskModel` for batch scoring.

    ``features`` gives a column-major (Fortran-ordered) float64 matrix, ``predict_matrix`` the
    calibrated probabilities (identical to ``RiskModel.predict_proba``), ``explain_matrix`` the top
    contributions with the feature values (category labels decoded). Works with any model object that has
    ``encoder`` (:class:`~stopnet.risk.features.FeatureEncoder`), ``booster`` and ``calibration``.

    With ``reuse_matrix``, ``features`` writes into one buffer per thread, kept with this object, and
    returns a view of it that the thread's next call overwrites: for :func:`score_chunk`, which copies
    the rows it keeps (:func:`score_file` scores with such a copy of the model and drops it at the end).
    """

    model: Any
    num_threads: int = 2
    reuse_matrix: bool = False
    _scratch: threading.local = field(default_factory=threading.local, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:  # sent to Dask workers: without the buffers
        state = dict(self.__dict__)
        state.pop("_scratch", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._scratch = threading.local()

    @property
    def version(self) -> str:
        return str(self.model.version)

    @property
    def booster(self) -> Any:
        return self.model.booster

    @property
    def spec(self) -> FeatureSpec:
        spec: FeatureSpec = self.model.encoder.spec
        return spec

    def features(self, frame: pl.DataFrame) -> np.ndarray:
        # column-major: the same predictions, and the benchmark's bare prediction uses this matrix too
        feats = self.model.encoder.transform(frame)
        if not self.reuse_matrix:
            return to_numpy(feats, order="fortran")
        size = feats.height * feats.width
        buffer: np.ndarray | None = getattr(self._scratch, "buffer", None)
        if buffer is None or buffer.shape[0] < size:
            buffer = self._scratch.buffer = np.empty(size, dtype=np.float64)
        return to_numpy(feats, order="fortran", buffer=buffer)

    def features_rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """:meth:`features` of a few prepared rows given as dicts (:func:`prepare_record`), in plain
        Python; falls back to the frame path for specs it does not cover."""
        encoder = self.model.encoder
        if encoder.supports_rows():
            return np.asarray(encoder.transform_rows(rows), dtype=np.float64)
        return self.features(pl.DataFrame(list(rows)))

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        if x.shape[0] == 0:
            return np.zeros(0, dtype=np.float64)
        raw = self.model.booster.predict(x, raw_score=True, num_threads=self._threads(x))
        return np.asarray(self.model.calibration.apply(raw), dtype=np.float64)

    def _threads(self, x: np.ndarray) -> int:
        # starting OpenMP threads costs more than it saves on small inputs (results are the same)
        return 1 if x.shape[0] < 20_000 else self.num_threads

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        if frame.height == 0:
            return np.zeros(0, dtype=np.float64)
        return self.predict_matrix(self.features(frame))

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """SHAP contributions (log-odds, bias last) of each row: LightGBM's ``pred_contrib`` values,
        computed per distinct decision path (:class:`~stopnet.risk.explain.ContributionTables`, kept
        with the model)."""
        tables = getattr(self.model, "_contribution_tables", None)
        if tables is None:
            tables = ContributionTables(self.model.booster)
            self.model._contribution_tables = tables
        return tables.contributions(x, num_threads=self._threads(x))

    def explain_matrix(self, x: np.ndarray, top_k: int = 3) -> list[list[tuple[str, str, float]]]:
        """Top ``top_k`` contributions (log-odds) per row as ``(feature, value, contribution)``."""
        if x.shape[0] == 0:
            return []
        contrib = self.contributions(x)[:, :-1]
        encoder = self.model.encoder
        names = encoder.feature_names()
        cats = {f"cat__{c}": v for c, v in encoder.categories.items()}
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, :top_k]
        out: list[list[tuple[str, str, float]]] = []
        for i in range(contrib.shape[0]):
            row = []
            for j in order[i]:
                name, value = names[j], x[i, j]
                if np.isnan(value):
                    shown = "missing"
                elif name in cats:
                    code = int(value)
                    shown = cats[name][code] if 0 <= code < len(cats[name]) else "?"
                    name = name[len("cat__") :]
                else:
                    shown = f"{value:.4g}"
                row.append((name, shown, float(contrib[i, j])))
            out.append(row)
        return out

    def explain_text(self, x: np.ndarray, top_k: int = 3) -> list[str]:
        """Vectorised text form of :meth:`explain_matrix`: ``"hs4=6404 (+2.03); carrier=... (+1.6)"``."""
        n = x.shape[0]
        if n == 0 or top_k <= 0:
            return []
        contrib = self.contributions(x)[:, :-1]
        encoder = self.model.encoder
        names = encoder.feature_names()
        shown_names = [nm[len("cat__") :] if nm.startswith("cat__") else nm for nm in names]
        cat_of = {f"cat__{c}": v for c, v in encoder.categories.items()}
        is_cat = np.array([nm in cat_of for nm in names])
        cat_len = np.array([len(cat_of.get(nm, [])) for nm in names], dtype=np.int64)
        cat_off = np.concatenate([[0], np.cumsum(cat_len)[:-1]]).astype(np.int64)
        labels = pl.Series([lab for nm in names for lab in cat_of.get(nm, [])], dtype=pl.String)
        if labels.len() == 0:
            labels = pl.Series([""], dtype=pl.String)
        order = np.argsort(-np.abs(contrib), axis=1, kind="stable")[:, : min(top_k, len(names))]
        rows = np.arange(n)
        pieces: list[pl.Expr] = []
        cols: dict[str, Any] = {}
        for r in range(order.shape[1]):
            j = order[:, r]
            v = x[rows, j]
            c = contrib[rows, j]
            code = np.where(np.isnan(v), -1, np.nan_to_num(v, nan=-1.0)).astype(np.int64)
            valid = is_cat[j] & (code >= 0) & (code < cat_len[j])
            cols[f"n{r}"] = pl.Series(shown_names, dtype=pl.String).gather(j)
            cols[f"l{r}"] = labels.gather(np.where(valid, cat_off[j] + code, 0))
            cols[f"cat{r}"] = is_cat[j]
            cols[f"ok{r}"] = valid
            cols[f"v{r}"] = v
            cols[f"c{r}"] = c
            value = (
                pl.when(pl.col(f"v{r}").is_nan())
                .then(pl.lit("missing"))
                .when(pl.col(f"cat{r}"))
                .then(pl.when(pl.col(f"ok{r}")).then(pl.col(f"l{r}")).otherwise(pl.lit("?")))
                .otherwise(pl.col(f"v{r}").round_sig_figs(4).cast(pl.String))
            )
            sign = pl.when(pl.col(f"c{r}") >= 0).then(pl.lit("+")).otherwise(pl.lit("-"))
            amount = pl.col(f"c{r}").abs().round(2).cast(pl.String)
            pieces.append(
                pl.concat_str([pl.col(f"n{r}"), pl.lit("="), value, pl.lit(" ("), sign, amount, pl.lit(")")])
            )
        text = pl.DataFrame(cols).select(pl.concat_str(pieces, separator="; ").alias("t"))
        return text.get_column("t").to_list()

    def explain(self, frame: pl.DataFrame, top_k: int = 3) -> list[list[tuple[str, str, float]]]:
        if frame.height == 0:
            return []
        return self.explain_matrix(self.features(frame), top_k)


def as_scorer(model: Any, num_threads: int | None = None) -> Any:
    """Wrap a ``RiskModel`` (anything with encoder/booster/calibration) in :class:`RiskModelScorer`;
    other models are used through ``predict_proba`` / ``explain`` as they are."""
    if isinstance(model, RiskModelScorer):
        if num_threads is not None:
            model.num_threads = num_threads
        return model
    if all(hasattr(model, a) for a in ("encoder", "booster", "calibration")):
        threads = num_threads
        if threads is None:
            threads = int(getattr(model, "training", {}).get("params", {}).get("num_threads", 2))
        return RiskModelScorer(model, num_threads=threads)
    return model


def train_consignment_model(
    frame: pl.DataFrame,
    *,
    spec: FeatureSpec | None = None,
    seed: int = 0,
    params: Mapping[str, Any] | None = None,
    max_rounds: int = 120,
    early_stopping_rounds: int = 20,
    default_rounds: int = 80,
    **kwargs: Any,
) -> Any:
    """Train a :class:`~stopnet.risk.model.RiskModel` on consignments with labels (``inspected``/``seized``).

    The label is ``seized`` for inspected consignments and unknown otherwise (uninspected rows only feed
    non-label statistics). Parameters default to :data:`CONSIGNMENT_PARAMS` and at most ``max_rounds``
    trees, which keeps batch scoring fast.
    """
    from stopnet.risk.model import RiskModel

    prepared = prepare_consignments(frame)
    if LABEL_COL not in prepared.columns:
        raise ValueError("training needs 'inspected' and 'seized' columns")
    if int(prepared.get_column(LABEL_COL).is_not_null().sum()) < 10:
        raise ValueError("too few inspected consignments to train a model")
    return RiskModel.fit(
        prepared,
        spec or CONSIGNMENT_SPEC,
        label_col=LABEL_COL,
        date_col=DATE_COL,
        seed=seed,
        params={**CONSIGNMENT_PARAMS, **(params or {})},
        max_rounds=max_rounds,
        early_stopping_rounds=early_stopping_rounds,
        default_rounds=default_rounds,
        name=kwargs.pop("name", "consignment-lgbm"),
        **kwargs,
    )


def load_model(path: str | Path) -> Any:
    """Load a model saved by ``RiskModel.save``."""
    from stopnet.risk.model import RiskModel

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"no such model: {p}")
    return RiskModel.load(p)


def _feature_matrix(model: Any, frame: pl.DataFrame) -> np.ndarray | None:
    """The model's feature matrix for ``frame`` if the model exposes one (used by the benchmark)."""
    for name in ("features", "feature_matrix", "transform"):
        fn = getattr(model, name, None)
        if callable(fn):
            out = fn(frame)
            return out if isinstance(out, np.ndarray) else to_numpy(out)
    return None


def _format_explanations(raw: Any, n: int) -> list[str | None]:
    """Text of ``explain`` output: rows of ``(feature, contribution)`` / ``(feature, value, contribution)``
    tuples or dicts, or a frame with an ``explanation`` column."""
    if isinstance(raw, pl.DataFrame):
        if "explanation" in raw.columns:
            texts: list[str | None] = [None if v is None else str(v) for v in raw["explanation"].to_list()]
            return texts[:n]
        dumped: list[str | None] = [json.dumps(r, default=str) for r in raw.to_dicts()]
        return dumped[:n]
    out: list[str | None] = []
    for item in list(raw)[:n]:
        if item is None:
            out.append(None)
            continue
        if isinstance(item, str):
            out.append(item)
            continue
        parts = []
        for entry in item:
            if isinstance(entry, Mapping):
                name = entry.get("feature") or entry.get("name")
                value = entry.get("value")
                contrib = entry.get("contribution", entry.get("shap", 0.0))
            elif len(entry) >= 3:
                name, value, contrib = entry[0], entry[1], entry[2]
            else:
                name, value, contrib = entry[0], None, entry[1]
            label = f"{name}={value}" if value is not None else str(name)
            parts.append(f"{label} ({float(contrib):+.2f})")
        out.append("; ".join(parts))
    while len(out) < n:
        out.append(None)
    return out


# --------------------------------------------------------------------------------------------------
# Chunks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChunkTask:
    """One slice of the input file to score (picklable; sent to Dask workers as is).

    ``candidate_bound`` is an upper bound of the capacity of any capacity group; pass 1 keeps the
    features of every row that could possibly be selected (top ``candidate_bound`` rows of each group by
    score and by exploration key, and priority rule hits), so that pass 2 can explain selected rows
    without reading the file again. Chunks scored side by side here for a whole-file capacity also
    drop the top rows below the running floors of the chunks before them (:class:`CandidateFloors`).
    """

    index: int
    path: str
    fmt: str
    offset: int
    length: int
    columns: tuple[str, ...]
    rules: tuple[Rule, ...] = ()
    lists: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    group_cols: tuple[str, ...] = ()
    keep_columns: tuple[str, ...] = ()
    validate: bool = True
    candidate_bound: int = 0
    exploration: str = "uncertainty"
    exploration_share: float = 0.1
    exploration_floor: float = 0.01
    rule_priority_min_weight: float = 1.0
    seed: int = 0
    max_candidate_share: float = 0.5


@dataclass
class ChunkResult:
    """What pass 1 keeps of a chunk.

    ``candidates`` are chunk-local row positions whose features are kept in ``payload`` (a feature
    matrix, or the prepared rows for models without ``features``); ``payload`` is ``None`` when too
    many rows were candidates, in which case pass 2 reads the chunk again.
    """

    index: int
    offset: int
    ids: pl.Series
    scores: np.ndarray
    hits: np.ndarray
    group_codes: np.ndarray | None  # capacity group of each row, chunk-local codes (group_index)
    group_keys: pl.DataFrame | None  # the keys of each chunk-local group
    keep: pl.DataFrame | None
    candidates: np.ndarray
    payload: np.ndarray | pl.DataFrame | None
    seconds: float = 0.0
    explore_keys: np.ndarray | None = None  # exploration keys of the chunk's rows, when computed


def plan_chunks(path: str | Path, chunk_rows: int = 500_000) -> list[tuple[int, int]]:
    """``(offset, length)`` of each chunk; Parquet chunks follow row-group boundaries where possible."""
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be >= 1")
    fmt = file_format(path)
    if fmt == "parquet":
        meta = pq.ParquetFile(str(path)).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    else:
        total = int(pl.scan_csv(path, infer_schema=False).select(pl.len()).collect().item())
        sizes = [total]
    chunks: list[tuple[int, int]] = []
    start, acc = 0, 0
    for size in sizes:
        if size > 2 * chunk_rows:  # a row group much larger than a chunk is split
            if acc:
                chunks.append((start, acc))
                start, acc = start + acc, 0
            for off in range(0, size, chunk_rows):
                length = min(chunk_rows, size - off)
                chunks.append((start, length))
                start += length
            continue
        acc += size
        if acc >= chunk_rows:
            chunks.append((start, acc))
            start, acc = start + acc, 0
    if acc:
        chunks.append((start, acc))
    return chunks


def _read_chunk(path: str, fmt: str, offset: int, length: int, columns: Sequence[str]) -> pl.DataFrame:
    if fmt == "parquet":
        available = pq.ParquetFile(path).schema_arrow.names
        cols = [c for c in columns if c in available]
        return pl.scan_parquet(path).select(cols).slice(offset, length).collect()
    header = pl.read_csv(path, n_rows=0).columns
    cols = [c for c in columns if c in header]
    known = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
    overrides = {c: pl.String() for c in header if c in known}
    lf = pl.scan_csv(path, schema_overrides=overrides, infer_schema_length=10_000)
    return lf.select(cols).slice(offset, length).collect()


def _group_frame(frame: pl.DataFrame, group_cols: Sequence[str]) -> pl.DataFrame | None:
    """Capacity-group keys: ``day`` (arrival date, else declaration date) and/or ``office``."""
    if not group_cols:
        return None
    exprs: list[pl.Expr] = []
    for g in group_cols:
        if g == "day":
            declared = pl.col("declared_at").cast(pl.Date)
            day = (
                pl.coalesce(pl.col("arrival_date"), declared) if "arrival_date" in frame.columns else declared
            )
            exprs.append(day.alias("day"))
        elif g == "office":
            exprs.append(pl.col("office").cast(pl.String).alias("office"))
        else:
            raise ValueError(f"unknown capacity group {g!r}")
    return frame.select(exprs)


def _largest_group_capacity(
    cap: Capacity,
    path: str,
    fmt: str,
    chunks: Sequence[tuple[int, int]],
    columns: Sequence[str],
    workers: int = 1,
) -> int:
    """The largest capacity of any capacity group (:meth:`Capacity.limits`): no chunk can have more
    rows of one group selected by score or by exploration, so pass 1 keeps that many per group
    (:class:`ChunkTask`). For a share per day or office this needs the groups' sizes, counted here
    from the group columns alone, read and keyed as pass 1 reads and keys them; a bound of the share
    of the whole file would make nearly every row a candidate."""
    overrides = [int(v) for v in cap.office_counts.values()]
    if cap.count is not None:
        return max([int(cap.count), *overrides])
    n_total = sum(length for _, length in chunks)
    if not cap.per:
        return math.floor(float(cap.share or 0.0) * n_total + 1e-9)
    group_columns = [c for c in ("declared_at", "arrival_date", "office") if c in columns]
    per = list(cap.per)

    def count(chunk: tuple[int, int]) -> pl.DataFrame:
        frame = _read_chunk(path, fmt, chunk[0], chunk[1], group_columns)
        keys = _group_frame(coerce_consignments(frame, check_values=False, required=()), cap.per)
        assert keys is not None
        return keys.group_by(per).len()

    counts = list(_in_threads(count, chunks, max(1, workers)))
    if not counts:
        return 0
    sizes = pl.concat(counts).group_by(per).agg(pl.col("len").sum())
    offices = None
    if "office" in per:
        offices = [None if o is None else str(o) for o in sizes.get_column("office").to_list()]
    limits = cap.limits(sizes.get_column("len").to_numpy(), offices)
    return int(limits.max()) if limits.size else 0


class _RunningTopK:
    """The ``k`` largest values offered so far by the chunks of one :func:`score_file` run (thread-safe).

    Its :meth:`floor` is the k-th largest of them (``-inf`` until ``k`` were offered): values of a subset
    of the file's rows, so never above the k-th largest of the whole file. A row below the floor cannot
    be among the file's ``k`` largest, so pass 1 need not keep it as a candidate (:class:`ChunkTask`)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self._best = np.zeros(0, dtype=np.float64)
        self._lock = threading.Lock()

    def floor(self) -> float:
        with self._lock:
            return float(self._best.min()) if self.k > 0 and self._best.shape[0] >= self.k else -math.inf

    def offer(self, values: np.ndarray) -> None:
        with self._lock:
            merged = np.concatenate([self._best, np.asarray(values, dtype=np.float64)])
            if merged.shape[0] > self.k:
                merged = np.partition(merged, merged.shape[0] - self.k)[merged.shape[0] - self.k :]
            self._best = merged


@dataclass
class CandidateFloors:
    """Shared by the local chunk threads of one whole-file selection (no capacity groups): the running
    top-``candidate_bound`` of the ranking scores and of the exploration keys. A chunk then keeps as
    candidates only its top rows that reach the floors, instead of its top ``candidate_bound``: fewer
    feature rows kept, and a smaller selection. The selection and the output are the same either way."""

    scores: _RunningTopK
    keys: _RunningTopK

    @classmethod
    def of(cls, k: int) -> CandidateFloors:
        return cls(_RunningTopK(k), _RunningTopK(k))


def _top_reaching(values: np.ndarray, k: int, running: _RunningTopK) -> np.ndarray:
    """Positions of the ``k`` largest ``values`` (:func:`top_k_per_group`, no groups) that reach the
    running floor, which they then raise."""
    top = top_k_per_group(values, k)
    if top.shape[0] == 0:
        return top
    floor = running.floor()  # before this chunk's own values: the others' k-th largest
    chosen = values[top]
    running.offer(chosen)
    return top[chosen >= floor]


def _has_matrix_api(model: Any) -> bool:
    """True for :class:`RiskModelScorer` (features / predict_matrix / explain_matrix)."""
    return all(callable(getattr(model, a, None)) for a in ("features", "predict_matrix", "explain_text"))


def score_chunk(task: ChunkTask, model: ScoringModel, floors: CandidateFloors | None = None) -> ChunkResult:
    """Pass 1 for one chunk: read, validate, features + model score, rule hits, group keys, candidates.

    ``floors`` (local threads, whole-file capacity only): see :class:`CandidateFloors`."""
    t0 = time.perf_counter()
    frame = _read_chunk(task.path, task.fmt, task.offset, task.length, task.columns)
    if frame.height != task.length:
        raise ConsignmentSchemaError(
            None, f"chunk {task.index}: expected {task.length} rows, read {frame.height}"
        )
    frame = coerce_consignments(frame, check_values=task.validate, required=())
    n = frame.height
    prepared = prepare_consignments(frame)
    matrix: np.ndarray | None = None
    if _has_matrix_api(model):
        matrix = model.features(prepared)  # type: ignore[attr-defined]
        scores = np.asarray(model.predict_matrix(matrix), dtype=np.float64).reshape(-1)  # type: ignore[attr-defined]
    else:
        scores = np.asarray(model.predict_proba(prepared), dtype=np.float64).reshape(-1)
    hits = (
        evaluate_rules(frame, task.rules, task.lists).matrix if task.rules else np.zeros((n, 0), dtype=bool)
    )
    groups = _group_frame(frame, task.group_cols)

    # rows that could be selected: see ChunkTask
    weights = np.array([r.weight for r in task.rules], dtype=np.float64)
    prio = rule_priority(hits, weights, n, task.rule_priority_min_weight)
    local_group, local_keys = group_index(groups) if groups is not None else (None, None)
    # the floors are of the whole file; capacity groups have capacities of their own
    score_floor, key_floor = (floors.scores, floors.keys) if floors and local_group is None else (None, None)

    def top(values: np.ndarray, running: _RunningTopK | None) -> np.ndarray:
        if running is None:
            return top_k_per_group(values, task.candidate_bound, local_group)
        return _top_reaching(values, task.candidate_bound, running)

    parts = [np.flatnonzero(prio > 0), top(ranking_scores(scores), score_floor)]
    keys: np.ndarray | None = None
    if task.exploration_share > 0:
        keys = exploration_keys(
            scores,
            np.arange(task.offset, task.offset + n, dtype=np.int64),
            task.exploration,
            task.seed,
            task.exploration_floor,
        )
        parts.append(top(keys, key_floor))
    is_candidate = np.zeros(n, dtype=bool)
    for part in parts:
        is_candidate[part] = True
    candidates = np.flatnonzero(is_candidate).astype(np.int64)
    payload: np.ndarray | pl.DataFrame | None = None
    if candidates.shape[0] <= task.max_candidate_share * n:
        payload = np.ascontiguousarray(matrix[candidates]) if matrix is not None else prepared[candidates]
    keep = frame.select([c for c in task.keep_columns if c in frame.columns]) if task.keep_columns else None
    return ChunkResult(
        index=task.index,
        offset=task.offset,
        ids=frame.get_column("consignment_id").cast(pl.String),
        scores=scores,
        hits=hits,
        group_codes=local_group,
        group_keys=local_keys,
        keep=keep,
        candidates=candidates,
        payload=payload,
        seconds=time.perf_counter() - t0,
        explore_keys=keys,
    )


def score_frame(model: Any, frame: pl.DataFrame) -> np.ndarray:
    """Model probability of each consignment of a validated frame (same values as :func:`score_file`)."""
    if frame.height == 0:
        return np.zeros(0, dtype=np.float64)
    scorer = as_scorer(model)
    return np.asarray(scorer.predict_proba(prepare_consignments(frame)), dtype=np.float64).reshape(-1)


def _explain_selected(
    task: ChunkTask, result: ChunkResult, local: np.ndarray, model: ScoringModel, top_k: int
) -> list[str | None]:
    """Explanations of the selected chunk-local rows ``local`` (from the pass-1 candidates if possible)."""
    if local.shape[0] == 0 or top_k <= 0:
        return []
    cand = result.candidates
    pos = np.searchsorted(cand, local)
    cached = result.payload is not None and bool(
        np.all(pos < cand.shape[0]) and np.array_equal(cand[np.minimum(pos, cand.shape[0] - 1)], local)
    )
    if cached:
        payload = result.payload
        if isinstance(payload, np.ndarray):
            return list(model.explain_text(payload[pos], top_k))  # type: ignore[attr-defined]
        else:
            assert payload is not None
            raw = model.explain(payload[pos], top_k)
        return _format_explanations(raw, local.shape[0])
    # slow path: read the chunk again (same features as in pass 1)
    frame = coerce_consignments(
        _read_chunk(task.path, task.fmt, task.offset, task.length, task.columns),
        check_values=False,
        required=(),
    )
    prepared = prepare_consignments(frame)
    if _has_matrix_api(model):
        return list(model.explain_text(model.features(prepared)[local], top_k))  # type: ignore[attr-defined]
    else:
        raw = model.explain(prepared[local], top_k)
    return _format_explanations(raw, local.shape[0])


# --------------------------------------------------------------------------------------------------
# score_file
# --------------------------------------------------------------------------------------------------


@dataclass
class ScoreReport:
    """Summary of a :func:`score_file` run."""

    rows: int
    selected: int
    lanes: dict[str, int]
    model_version: str
    output_path: str
    capacity: str
    chunks: int
    seconds: dict[str, float]
    dask: bool = False
    reread_chunks: int = 0

    @property
    def rows_per_second(self) -> float:
        total = self.seconds.get("total", 0.0)
        return self.rows / total if total > 0 else math.inf


def _available_columns(path: str, fmt: str) -> list[str]:
    if fmt == "parquet":
        return list(pq.ParquetFile(path).schema_arrow.names)
    return list(pl.read_csv(path, n_rows=0).columns)


def _model_spec(model: Any) -> FeatureSpec | None:
    for owner in (model, getattr(model, "encoder", None)):
        spec = getattr(owner, "spec", None)
        if isinstance(spec, FeatureSpec):
            return spec
    return None


def _model_columns(model: Any) -> list[str]:
    """Input columns the model may use: the consignment model inputs plus any schema column its spec names."""
    wanted = list(_MODEL_INPUT)
    spec = _model_spec(model)
    if spec is None:
        return wanted + [c for c in CONSIGNMENT_SCHEMA if c not in wanted]
    named = set(spec.categorical) | set(spec.numeric)
    for keys in (*spec.history_keys, *spec.frequency_keys, *spec.same_day_keys):
        named |= set(keys)
    named |= {c for c in (spec.hs_col, spec.value_col, spec.mass_col, spec.tax_rate_col) if c}
    return wanted + [c for c in CONSIGNMENT_SCHEMA if c in named and c not in wanted]


def _needed_columns(
    model_columns: Sequence[str],
    rules: Sequence[Rule],
    available: Sequence[str],
    group_cols: Sequence[str],
    keep: Sequence[str],
) -> tuple[str, ...]:
    """Columns pass 1 reads: model inputs, capacity-group columns, kept columns and rule fields."""
    wanted = list(model_columns)
    if "day" in group_cols:
        wanted.append("arrival_date")
    if "office" in group_cols:
        wanted.append("office")
    wanted += [c for c in keep if c not in wanted]
    for col in available:
        if col not in wanted and any(_mentions(r.expression, col) for r in rules):
            wanted.append(col)
    return tuple(c for c in wanted if c in available)


def _input_schema(path: str, fmt: str, columns: Sequence[str]) -> dict[str, pl.DataType]:
    """Types of ``columns`` as the chunks will have them after coercion."""
    known = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
    if fmt == "parquet":
        file_schema = dict(pl.scan_parquet(path).collect_schema())
    else:
        file_schema = {c: pl.String() for c in columns}
    return {c: known.get(c, file_schema.get(c, pl.String())) for c in columns}


def _mentions(expression: str, column: str) -> bool:
    return re.search(r"(?<![A-Za-z0-9_@])" + re.escape(column) + r"(?![A-Za-z0-9_])", expression) is not None


def _client(dask_scheduler: Any) -> tuple[Any, bool]:
    from distributed import Client  # lazy: only when a cluster is used

    if isinstance(dask_scheduler, Client):
        return dask_scheduler, False
    return Client(dask_scheduler), True


def _run_chunks(
    tasks: Sequence[ChunkTask],
    model: ScoringModel,
    dask_scheduler: Any,
    workers: int = 1,
    floors: CandidateFloors | None = None,
) -> Iterator[ChunkResult]:
    """Pass 1 of every chunk: on the Dask cluster, or here in ``workers`` threads (LightGBM, polars and
    pyarrow release the GIL, so two chunks scored side by side use two cores where one chunk alone
    leaves one idle between its parallel parts; each thread's predictions then run single-threaded)."""
    if dask_scheduler is None:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                yield score_chunk(task, model, floors)
            return
        yield from _in_threads(lambda task: score_chunk(task, model, floors), tasks, workers)
        return
    from distributed import as_completed

    client, owned = _client(dask_scheduler)
    try:
        model_future = client.scatter(model, broadcast=True, hash=False)
        futures = client.map(score_chunk, list(tasks), model=model_future, pure=False)
        for fut in as_completed(futures):
            result = fut.result()
            fut.release()
            yield result
    finally:
        if owned:
            client.close()


_T = TypeVar("_T")
_R = TypeVar("_R")


def _in_threads(fn: Callable[[_T], _R], items: Sequence[_T], workers: int) -> Iterator[_R]:
    """``fn`` of each item, in order, computed by ``workers`` threads at most ``workers`` items ahead
    of the consumer (so memory holds a bounded number of chunks)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stopnet-score") as pool:
        pending: deque[Future[_R]] = deque()
        it = iter(items)
        for item in it:
            pending.append(pool.submit(fn, item))
            if len(pending) >= workers:
                break
        while pending:
            result = pending.popleft().result()
            nxt = next(it, None)
            if nxt is not None:
                pending.append(pool.submit(fn, nxt))
            yield result


def _local_workers(model: Any, dask_scheduler: Any) -> tuple[Any, int]:
    """The model as each local worker thread uses it, and how many threads score chunks side by side:
    the model's thread count, each prediction then on one thread (a :class:`RiskModelScorer` copy
    that reuses its feature-matrix buffer from chunk to chunk)."""
    if dask_scheduler is not None or not isinstance(model, RiskModelScorer):
        return model, 1
    return replace(model, num_threads=1, reuse_matrix=True), max(1, model.num_threads)


def score_file(
    model_path: str | Path | None,
    input_path: str | Path,
    output_path: str | Path,
    capacity: Capacity | str | int | float = "1%",
    *,
    rules: Sequence[Rule] = (),
    lists: Mapping[str, Sequence[Any]] | None = None,
    dask_scheduler: Any = None,
    chunk_rows: int = 500_000,
    exploration_share: float = 0.1,
    exploration: str = "uncertainty",
    rule_priority_min_weight: float = 1.0,
    alert_threshold: float = 0.5,
    seed: int = 0,
    explain_top_k: int = 3,
    keep_columns: Sequence[str] = (),
    validate: bool = True,
    model: Any = None,
    num_threads: int | None = None,
    compression: str = "lz4",
    progress: ProgressCallback | None = None,
) -> ScoreReport:
    """Score a consignment file and write one Parquet row per consignment (see the module docstring).

    ``capacity``: a :class:`~stopnet.risk.selection.Capacity` or text like ``"1%"``, ``"500/day"``,
    ``"2%/day/office"``. ``dask_scheduler``: ``None`` (local), a scheduler address or a
    ``distributed.Client``; the output is identical either way. ``model`` may be given instead of
    loading ``model_path``; ``num_threads`` sets LightGBM threads (default: the model's training setting).
    ``progress(rows scored, rows in the file)`` is called as each chunk is scored.
    """
    t_start = time.perf_counter()
    seconds: dict[str, float] = {}
    in_path = str(input_path)
    fmt = file_format(in_path)
    if not Path(in_path).exists():
        raise FileNotFoundError(f"no such file: {in_path}")
    cap = Capacity.parse(capacity)
    lists = dict(lists or {})
    if model is None:
        if model_path is None:
            raise ValueError("give model_path or model")
        model = load_model(model_path)
    model = as_scorer(model, num_threads)
    version = str(model.version)
    active_rules = tuple(r for r in rules if r.active)
    available = _available_columns(in_path, fmt)
    missing = [
        c for c in CONSIGNMENT_SCHEMA if c not in available and c not in ("arrival_date", "marketplace")
    ]
    if missing:
        raise ConsignmentSchemaError(missing[0], f"required column is missing from {Path(in_path).name}")
    columns = _needed_columns(_model_columns(model), active_rules, available, cap.per, keep_columns)
    schema = _input_schema(in_path, fmt, columns)
    for rule in active_rules:  # fail fast (unknown fields, lists, types) before reading any chunk
        rule.compile(schema, lists)
    chunks = plan_chunks(in_path, chunk_rows)
    worker_model, workers = _local_workers(model, dask_scheduler)
    bound = _largest_group_capacity(cap, in_path, fmt, chunks, columns, workers)
    tasks = [
        ChunkTask(
            index=i,
            path=in_path,
            fmt=fmt,
            offset=off,
            length=length,
            columns=columns,
            rules=active_rules,
            lists=lists,
            group_cols=cap.per,
            keep_columns=tuple(keep_columns),
            validate=validate,
            candidate_bound=bound if explain_top_k > 0 else 0,
            exploration=exploration,
            exploration_share=exploration_share if explain_top_k > 0 else 0.0,
            rule_priority_min_weight=rule_priority_min_weight if explain_top_k > 0 else math.inf,
            seed=seed,
        )
        for i, (off, length) in enumerate(chunks)
    ]
    seconds["setup"] = time.perf_counter() - t_start

    # pass 1: score chunks (locally or on the cluster)
    t = time.perf_counter()
    results: list[ChunkResult | None] = [None] * len(tasks)
    # the chunks scored here share running floors for their candidates (a cluster's chunks keep their
    # own top rows: same selection, more candidates)
    floors = (
        CandidateFloors.of(bound) if dask_scheduler is None and not cap.per and explain_top_k > 0 else None
    )
    total_rows, scored_rows = sum(length for _, length in chunks), 0
    for res in _run_chunks(tasks, worker_model, dask_scheduler, workers, floors):
        results[res.index] = res
        scored_rows += len(res.scores)
        if progress is not None:
            progress(scored_rows, total_rows)
    done = [r for r in results if r is not None]
    if len(done) != len(tasks):
        raise RuntimeError("some chunks were not scored")
    n = sum(len(r.scores) for r in done)
    scores = np.concatenate([r.scores for r in done]) if done else np.zeros(0)
    hits = np.concatenate([r.hits for r in done]) if done else np.zeros((0, len(active_rules)), bool)
    # capacity groups of the whole file, from the chunks' groups (the same codes as group_codes of
    # every row's keys, without hashing ten million keys again)
    index = None
    if cap.per and done:
        index = merge_group_index(
            [
                (r.group_codes, r.group_keys)
                for r in done
                if r.group_codes is not None and r.group_keys is not None
            ]
        )
    # the chunks' exploration keys (same method, seed and floor as below), if every chunk kept them
    keys = [r.explore_keys for r in done if r.explore_keys is not None]
    explore_keys = np.concatenate(keys) if done and len(keys) == len(done) else None
    # every row the selection could choose is a candidate of its chunk (see ChunkTask), so only those
    # are ranked; without explanations the chunks keep no candidates and every row is ranked
    candidates = (
        np.concatenate([r.candidates + r.offset for r in done]) if done and explain_top_k > 0 else None
    )
    seconds["score"] = time.perf_counter() - t

    # selection over all rows
    t = time.perf_counter()
    weights = np.array([r.weight for r in active_rules], dtype=np.float64)
    selection_args: dict[str, Any] = {
        "scores": scores,
        "capacity": cap,
        "rule_hits": hits,
        "rule_weights": weights,
        "group_index": index,
        "exploration_share": exploration_share,
        "exploration": exploration,
        "exploration_floor": tasks[0].exploration_floor if tasks else 0.01,
        "rule_priority_min_weight": rule_priority_min_weight,
        "alert_threshold": alert_threshold,
        "seed": seed,
        "explore_keys": explore_keys,
        "candidates": candidates,
    }
    sel = select_for_inspection(**selection_args)
    if candidates is not None and sel.group_capacity.size and int(sel.group_capacity.max()) > bound:
        # cannot happen (the bound is the largest group capacity); if it did, the candidates could
        # miss rows the selection should choose, so every row is ranked instead
        sel = select_for_inspection(**{**selection_args, "candidates": None})
    rule_hits = RuleHits(tuple(r.id for r in active_rules), weights, hits)
    seconds["select"] = time.perf_counter() - t

    # pass 2: explanations for selected rows + write
    t = time.perf_counter()
    reread = _write_output(
        Path(output_path),
        tasks,
        done,
        worker_model,
        version,
        scores,
        rule_hits,
        sel,
        explain_top_k=explain_top_k,
        keep_columns=tuple(keep_columns),
        compression=compression,
        workers=workers,
    )
    seconds["write"] = time.perf_counter() - t
    seconds["total"] = time.perf_counter() - t_start
    lanes = dict(zip(("GREEN", "AMBER", "RED"), np.bincount(sel.lane, minlength=3).tolist(), strict=True))
    return ScoreReport(
        rows=n,
        selected=sel.n_selected,
        lanes=lanes,
        model_version=version,
        output_path=str(output_path),
        capacity=cap.describe(),
        chunks=len(tasks),
        seconds=seconds,
        dask=dask_scheduler is not None,
        reread_chunks=reread,
    )


_LANE_DTYPE = pl.Enum(["GREEN", "AMBER", "RED"])

#: Output schema of :func:`score_file` (before ``keep_columns``).
OUTPUT_SCHEMA: dict[str, pl.DataType] = {
    "consignment_id": pl.String(),
    "score": pl.Float64(),
    "model_version": pl.String(),
    "rule_hits": pl.List(pl.String()),
    "rule_score": pl.Float64(),
    "lane": _LANE_DTYPE,
    "selection_reason": pl.String(),
    "explanation": pl.String(),
}

# Arrow forms of the output columns, chosen so that the Parquet writer (the one serial step of pass 2)
# has the least to do: text as plain (large) strings rather than string views, and the columns with a
# handful of values (model_version, lane, selection_reason) as dictionaries built here from their codes,
# which the writer stores as they are instead of hashing every row. The file's Arrow schema says text for
# model_version and selection_reason (see _stored_schema), so they read back as strings.
_LANE_FIELD = (
    pl.DataFrame(schema={"lane": _LANE_DTYPE}).to_arrow().schema.field("lane")
)  # polars Enum metadata
_LANE_VALUES = pa.array(["GREEN", "AMBER", "RED"], type=_LANE_FIELD.type.value_type)
_REASON_VALUES = pa.array(["RULE", "SCORE", "EXPLORE"], type=pa.large_string())  # reason codes 1, 2, 3
_TEXT_AS_DICTIONARY = ("model_version", "selection_reason")


def _write_output(
    out_path: Path,
    tasks: Sequence[ChunkTask],
    results: Sequence[ChunkResult],
    model: ScoringModel,
    version: str,
    scores: np.ndarray,
    hits: RuleHits,
    sel: Selection,
    *,
    explain_top_k: int,
    keep_columns: tuple[str, ...],
    compression: str,
    workers: int = 1,
) -> int:
    """Pass 2: each chunk's output table (explanations of its selected rows included) is built by
    ``workers`` threads while this thread writes the tables in order; returns the chunks read again."""
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".part")
    writer: pq.ParquetWriter | None = None
    reread = 0
    version_values = pa.array([version], type=pa.large_string())

    def build(i: int) -> tuple[pa.Table, bool]:
        task, result = tasks[i], results[i]
        lo, hi = task.offset, task.offset + task.length
        local = np.flatnonzero(sel.selected[lo:hi])
        texts: list[str | None] = []
        again = False
        if explain_top_k > 0 and local.shape[0]:
            again = result.payload is None
            texts = _explain_selected(task, result, local, model, explain_top_k)
        reason = sel.reason[lo:hi]
        columns: dict[str, Any] = {
            "consignment_id": result.ids.to_arrow(compat_level=pl.CompatLevel.oldest()),
            "score": pa.array(scores[lo:hi], type=pa.float64()),
            "model_version": pa.DictionaryArray.from_arrays(
                pa.array(np.zeros(task.length, dtype=np.int8)), version_values
            ),
            "rule_hits": hits_to_series(hits.matrix[lo:hi], hits.rule_ids, "rule_hits").to_arrow(
                compat_level=pl.CompatLevel.newest()
            ),
            "rule_score": pa.array(weighted_hits(hits.matrix[lo:hi], hits.weights), type=pa.float64()),
            "lane": pa.DictionaryArray.from_arrays(
                pa.array(sel.lane[lo:hi].astype(np.uint8)), _LANE_VALUES, ordered=_LANE_FIELD.type.ordered
            ),
            "selection_reason": pa.DictionaryArray.from_arrays(
                pa.array(reason.astype(np.int8) - 1, mask=reason == 0), _REASON_VALUES
            ),
            "explanation": _sparse_text(task.length, local if explain_top_k > 0 else local[:0], texts),
        }
        fields = [
            _LANE_FIELD if name == "lane" else pa.field(name, col.type) for name, col in columns.items()
        ]
        if result.keep is not None:
            for c in result.keep.columns:
                if c != "consignment_id":
                    kept = result.keep.get_column(c).to_arrow(compat_level=pl.CompatLevel.oldest())
                    columns[c] = kept
                    fields.append(pa.field(c, kept.type))
        return pa.table(list(columns.values()), schema=pa.schema(fields)), again

    try:
        for table, again in _in_threads(build, range(len(tasks)), max(1, workers)):
            reread += again
            if writer is None:
                writer = pq.ParquetWriter(
                    str(tmp), table.schema, store_schema=False, **_parquet_options(table, compression)
                )
                writer.add_key_value_metadata({"ARROW:schema": _stored_schema(table.schema)})
            writer.write_table(table)
        if writer is None:  # empty input: still write a file with the schema
            pq.write_table(pl.DataFrame(schema=OUTPUT_SCHEMA).to_arrow(), str(tmp), compression=compression)
    finally:
        if writer is not None:
            writer.close()
    tmp.replace(out_path)
    return reread


def _sparse_text(n: int, positions: np.ndarray, texts: Sequence[str | None]) -> pa.Array:
    """A large-string Arrow array of ``n`` nulls with ``texts[i]`` at ``positions[i]`` (ascending),
    built from its buffers: the explanations are a few selected rows of a chunk, and scattering them
    into a polars column of a million nulls rebuilds that whole column."""
    if len(texts) != positions.shape[0]:
        raise ValueError(f"{len(texts)} explanation(s) for {positions.shape[0]} selected row(s)")
    valid = np.zeros(n, dtype=bool)
    lengths = np.zeros(n, dtype=np.int64)
    encoded = [b"" if t is None else t.encode() for t in texts]
    if encoded:
        valid[positions] = [t is not None for t in texts]
        lengths[positions] = [len(b) for b in encoded]
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return pa.LargeStringArray.from_buffers(
        n,
        pa.py_buffer(offsets),
        pa.py_buffer(b"".join(encoded)),
        pa.py_buffer(np.packbits(valid, bitorder="little")),
        null_count=n - int(valid.sum()),
    )


def _stored_schema(schema: pa.Schema) -> bytes:
    """The Arrow schema stored in the output file (what Arrow readers and polars restore): the written
    schema with the dictionary-built text columns as plain text (base64 of the IPC form, as Arrow's
    own writer stores it)."""
    fields = [
        pa.field(f.name, f.type.value_type, f.nullable, f.metadata) if f.name in _TEXT_AS_DICTIONARY else f
        for f in schema
    ]
    return base64.b64encode(pa.schema(fields).serialize().to_pybytes())


# Parquet options per output column (less work for the writer): no dictionary for columns with (nearly)
# one value per row (Parquet would build one, find it too large and fall back, for nothing), no min/max
# statistics for the id and the text, no compression of the scores (random doubles: LZ4 takes time and
# saves next to nothing), and values handed to the encoders 64k at a time rather than 1k.
_UNIQUE_COLUMNS = frozenset({"consignment_id", "score", "explanation"})
_NO_STATISTICS = frozenset({"consignment_id", "explanation"})
_UNCOMPRESSED = frozenset({"score"})
_WRITE_BATCH_SIZE = 65_536


def _parquet_options(table: Any, compression: str) -> dict[str, Any]:
    names = list(table.schema.names)
    return {
        "compression": {c: "none" if c in _UNCOMPRESSED else compression for c in names},
        "use_dictionary": [c for c in names if c not in _UNIQUE_COLUMNS],
        "write_statistics": [c for c in names if c not in _NO_STATISTICS],
        "write_batch_size": _WRITE_BATCH_SIZE,
    }


# --------------------------------------------------------------------------------------------------
# Single consignment (API)
# --------------------------------------------------------------------------------------------------


@dataclass
class ConsignmentScorer:
    """Scores single consignments for the API: the model wrapped once, the rules compiled once.

    ``scorer(record)`` returns ``consignment_id``, ``score``, ``model_version``, ``rule_hits``,
    ``rule_score``, ``lane`` (``AMBER`` when the score reaches ``alert_threshold`` or a rule hits,
    else ``GREEN``: capacity-based RED selection happens in batch) and, with ``explain_top_k``,
    ``explanation``. The score is the one :func:`score_file` gives for the same consignment.
    """

    model: Any
    rules: Sequence[Rule] = ()
    lists: Mapping[str, Sequence[Any]] | None = None
    alert_threshold: float = 0.5
    explain_top_k: int = 0

    def __post_init__(self) -> None:
        self._scorer = as_scorer(self.model)
        schema = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
        self._rules = compile_rules(self.rules, schema, self.lists)

    def __call__(self, consignment: Mapping[str, Any]) -> dict[str, Any]:
        row = consignment_row(consignment)
        frame = consignment_frame(row)
        scorer = self._scorer
        x: np.ndarray | None = None
        if _has_matrix_api(scorer):
            x = scorer.features_rows([prepare_record(row)])
            score = float(scorer.predict_matrix(x)[0])
        else:
            prepared = prepare_consignments(frame)
            score = float(np.asarray(scorer.predict_proba(prepared)).reshape(-1)[0])
        hit_ids: list[str] = []
        rule_score = 0.0
        if self._rules.rule_ids:
            hits = self._rules.evaluate(frame)
            hit_ids = [hits.rule_ids[j] for j in np.flatnonzero(hits.matrix[0])]
            rule_score = float(hits.weighted()[0])
        out: dict[str, Any] = {
            "consignment_id": frame.get_column("consignment_id")[0],
            "score": score,
            "model_version": str(scorer.version),
            "rule_hits": hit_ids,
            "rule_score": rule_score,
            "lane": "AMBER" if (score >= self.alert_threshold or hit_ids) else "GREEN",
        }
        if self.explain_top_k > 0:
            if x is not None:
                out["explanation"] = scorer.explain_text(x, self.explain_top_k)[0]
            else:
                out["explanation"] = _format_explanations(scorer.explain(prepared, self.explain_top_k), 1)[0]
        return out


def score_one(
    consignment: Mapping[str, Any],
    model: Any,
    *,
    rules: Sequence[Rule] = (),
    lists: Mapping[str, Sequence[Any]] | None = None,
    alert_threshold: float = 0.5,
    explain_top_k: int = 0,
) -> dict[str, Any]:
    """Score one consignment (a dict with the schema fields); see :class:`ConsignmentScorer`.

    For many calls, build a :class:`ConsignmentScorer` once (rules are then compiled once).
    """
    return ConsignmentScorer(model, rules, lists, alert_threshold, explain_top_k)(consignment)

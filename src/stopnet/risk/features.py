"""Engineered features for the learned risk model (:mod:`stopnet.risk.model`).

Everything here is pure polars/numpy, holds no global state and pickles cleanly (usable from Dask workers).

Two families of features are built from a :class:`FeatureSpec`:

**Risk histories** (target encodings, :class:`HistoryEncoder`). For every history key (one column such as
``importer_id`` or a combination such as ``importer_id`` × ``hs6``) and every row, the encoder looks up the
labels of earlier rows with the same key value and returns

* ``hist_rate__<key>``: the fraud rate of that key, smoothed toward the prior
  ``(pos + m * prior) / (n + m)`` with ``m = smoothing`` (Bayesian / m-estimate smoothing);
* ``hist_n__<key>``: ``n``, the number of *labelled* earlier rows with that key value.

Time safety: in :meth:`HistoryEncoder.fit_transform_time_safe` (training period) a row dated ``d`` only sees
labels of rows dated strictly before ``d - label_delay_days`` (expanding window by date; rows on the same
date never see each other and a row never sees its own label). The prior itself is the expanding global
rate, so a row's features depend on no label from its own date or later. :meth:`HistoryEncoder.transform`
(rows after the fit period) uses all fitted labels. Rows whose label is null (not inspected) count for
nothing.

**Non-label features** (:class:`FeatureEncoder`): categorical codes, numeric columns, ``log_value``,
``log_mass``, ``value_per_kg``, ``log_tax_amount``, ``tax_rate`` (passed through as a numeric column),
the unit price relative to the median unit price of the same HS code at each HS level
(``log_vpk_ratio__<hs>``), frequency counts, same-day counts and date parts. Statistics that need a
reference population (category codes, HS medians, frequency tables) are taken from the frame given to
``fit_transform`` and stored; they use no label, but for training rows they do include rows dated later
in the training period (documented trade-off: they describe the reference period as a whole).
``freq__<key>`` counts the *other* rows of the reference period with the same key value (a training row
does not count itself, so a new row with a key seen once has the same value as a training row whose key
occurs twice). ``day_count__<key>`` counts rows of the *scored frame* on the same date with the same key
(the day's batch is known when it is scored).

Feature names are stable: see :meth:`FeatureEncoder.feature_names` and docs/risk.md.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import polars as pl

__all__ = [
    "KEY_SEPARATOR",
    "MISSING_KEY",
    "FeatureEncoder",
    "FeatureSpec",
    "HistoryEncoder",
    "key_name",
    "to_numpy",
]

#: Separator between the values of a combined key (unit separator, never in an identifier).
KEY_SEPARATOR = "\x1f"
#: Value standing for a missing key component (a missing seller is a category of its own).
MISSING_KEY = "\x00"

_PRIOR_A = 1.0  # Beta(1, 1) pseudo-counts for the expanding global prior
_PRIOR_B = 1.0


def key_name(cols: Sequence[str]) -> str:
    """Stable name of a (possibly combined) key: columns joined with ``_x_``."""
    return "_x_".join(cols)


def _key_expr(cols: Sequence[str]) -> pl.Expr:
    parts = [pl.col(c).cast(pl.String).fill_null(MISSING_KEY) for c in cols]
    if len(parts) == 1:
        return parts[0]
    return pl.concat_str(parts, separator=KEY_SEPARATOR)


def _as_tuple_keys(keys: Sequence[Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    out = tuple(tuple(k) for k in keys)
    for k in out:
        if not k:
            raise ValueError("a key must name at least one column")
    return out


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns feed the model and how (JSON-serialisable with :meth:`to_dict`).

    * ``categorical``: low/medium-cardinality columns given to LightGBM as categorical codes.
    * ``numeric``: numeric columns passed through as float.
    * ``history_keys``: keys (tuples of column names) that get risk histories.
    * ``frequency_keys``: keys that get ``freq__`` counts over the reference (training) period.
    * ``same_day_keys``: keys that get ``day_count__`` counts within the scored frame, per date.
    * ``hs_col``: HS code column (text of digits); adds derived columns ``hs2``/``hs4``/``hs6``... for each
      of ``hs_levels`` (prefixes), usable in the key lists above, and ``log_vpk_ratio__`` features.
    * ``value_col``/``mass_col``/``tax_rate_col``: declared value, net mass (kg), duty rate (%).
    * ``price_level``: add derived key column ``price_level`` (value per kg rounded to 3 significant digits),
      a proxy for the product line under an HS code when unit prices are list prices.
    * ``date_parts``: add ``day_of_week`` and ``day_of_month``.
    * ``smoothing``: ``m`` of the history smoothing; ``label_delay_days``: in the training period, labels
      become visible only that many days after the row's date (0 = the next day).
    """

    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    history_keys: tuple[tuple[str, ...], ...] = ()
    frequency_keys: tuple[tuple[str, ...], ...] = ()
    same_day_keys: tuple[tuple[str, ...], ...] = ()
    hs_col: str | None = None
    hs_levels: tuple[int, ...] = (2, 4, 6)
    value_col: str | None = None
    mass_col: str | None = None
    tax_rate_col: str | None = None
    price_level: bool = False
    log_bins: tuple[tuple[str, int], ...] = ()
    date_parts: bool = True
    smoothing: float = 10.0
    label_delay_days: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "categorical", tuple(self.categorical))
        object.__setattr__(self, "numeric", tuple(self.numeric))
        object.__setattr__(self, "history_keys", _as_tuple_keys(self.history_keys))
        object.__setattr__(self, "frequency_keys", _as_tuple_keys(self.frequency_keys))
        object.__setattr__(self, "same_day_keys", _as_tuple_keys(self.same_day_keys))
        object.__setattr__(self, "hs_levels", tuple(int(x) for x in self.hs_levels))
        object.__setattr__(self, "log_bins", tuple((str(c), int(k)) for c, k in self.log_bins))
        if any(k <= 0 for _, k in self.log_bins):
            raise ValueError("log_bins: bins per decade must be > 0")
        if self.smoothing < 0:
            raise ValueError("smoothing must be >= 0")
        if self.label_delay_days < 0:
            raise ValueError("label_delay_days must be >= 0")

    @property
    def bin_columns(self) -> tuple[str, ...]:
        """Names of the derived log-bin key columns (``<col>_lb<k>``)."""
        return tuple(f"{c}_lb{k}" for c, k in self.log_bins)

    @property
    def hs_derived(self) -> tuple[str, ...]:
        """Names of the derived HS-prefix columns (``hs2``, ``hs4``, ...)."""
        return tuple(f"hs{n}" for n in self.hs_levels) if self.hs_col else ()

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("history_keys", "frequency_keys", "same_day_keys"):
            d[k] = [list(x) for x in d[k]]
        for k in ("categorical", "numeric", "hs_levels"):
            d[k] = list(d[k])
        d["log_bins"] = [[c, k] for c, k in self.log_bins]
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        d = dict(data)
        for k in ("history_keys", "frequency_keys", "same_day_keys"):
            d[k] = tuple(tuple(x) for x in d.get(k, ()))
        for k in ("categorical", "numeric", "hs_levels"):
            if k in d:
                d[k] = tuple(d[k])
        d["log_bins"] = tuple((str(c), int(k)) for c, k in d.get("log_bins", ()))
        return cls(**d)


# --------------------------------------------------------------------------------------------------
# Risk histories
# --------------------------------------------------------------------------------------------------


@dataclass
class HistoryEncoder:
    """Time-safe target encoding ("risk history") of one or more keys.

    ``fit(frame, label, date_col)`` stores per-key cumulative label statistics; ``transform(frame)`` encodes
    rows dated after the fit period with all fitted labels; ``fit_transform_time_safe(frame)`` encodes the
    fit period itself with an expanding window by date (strictly earlier dates only, minus
    ``label_delay_days``) and leaves the encoder fitted on the whole frame.
    """

    keys: tuple[tuple[str, ...], ...]
    label: str = "fraud"
    date_col: str = "date"
    smoothing: float = 10.0
    label_delay_days: int = 0
    prior_n: float = 0.0
    prior_pos: float = 0.0
    fitted_until: str | None = None
    tables: dict[str, pl.DataFrame] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = _as_tuple_keys(self.keys)

    # -- names -----------------------------------------------------------------------------------
    @property
    def key_names(self) -> list[str]:
        return [key_name(k) for k in self.keys]

    @property
    def feature_names(self) -> list[str]:
        out: list[str] = []
        for name in self.key_names:
            out += [f"hist_rate__{name}", f"hist_n__{name}"]
        return out

    @property
    def is_fitted(self) -> bool:
        return self.fitted_until is not None

    # -- fitting ---------------------------------------------------------------------------------
    def _base(self, frame: pl.DataFrame, label: str, date_col: str) -> pl.DataFrame:
        cols = [
            pl.col(date_col).cast(pl.Date).alias("__date"),
            pl.col(label).cast(pl.Float64).alias("__y"),
        ]
        cols += [_key_expr(k).alias(f"__k{i}") for i, k in enumerate(self.keys)]
        base = frame.select(cols)
        if base["__date"].null_count():
            raise ValueError(f"column {date_col!r} has missing dates")
        return base.with_row_index("__row")

    def fit(
        self, frame: pl.DataFrame, label: str | None = None, date_col: str | None = None
    ) -> HistoryEncoder:
        """Store the per-key label counts of ``frame`` (rows with a null label are ignored)."""
        self.label = label or self.label
        self.date_col = date_col or self.date_col
        base = self._base(frame, self.label, self.date_col)
        labelled = base.filter(pl.col("__y").is_not_null())
        self.prior_n = float(labelled.height)
        self.prior_pos = float(labelled["__y"].sum()) if labelled.height else 0.0
        self.tables = {}
        for i, name in enumerate(self.key_names):
            self.tables[name] = (
                labelled.group_by(f"__k{i}")
                .agg(pl.len().cast(pl.Float64).alias("n"), pl.col("__y").sum().alias("pos"))
                .rename({f"__k{i}": "key"})
                .sort("key")
            )
        last = base["__date"].max()
        # "" for an empty frame: fitted, with no label (every key falls back to the prior).
        self.fitted_until = last.isoformat() if isinstance(last, dt.date) else ""
        return self

    @property
    def prior(self) -> float:
        return (self.prior_pos + _PRIOR_A) / (self.prior_n + _PRIOR_A + _PRIOR_B)

    def _encode(self, n: pl.Expr, pos: pl.Expr, prior: pl.Expr, name: str) -> list[pl.Expr]:
        m = float(self.smoothing)
        rate = (pos + m * prior) / (n + m) if m > 0 else pl.when(n > 0).then(pos / n).otherwise(prior)
        return [rate.alias(f"hist_rate__{name}"), n.alias(f"hist_n__{name}")]

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Encode rows dated after the fit period, using every fitted label."""
        if not self.is_fitted:
            raise RuntimeError("HistoryEncoder is not fitted")
        keys = frame.select([_key_expr(k).alias(f"__k{i}") for i, k in enumerate(self.keys)])
        prior = pl.lit(self.prior)
        out: list[pl.Series] = []
        for i, name in enumerate(self.key_names):
            table = self.tables[name].rename({"key": f"__k{i}"})
            joined = keys.select(f"__k{i}").join(table, on=f"__k{i}", how="left", maintain_order="left")
            enc = joined.select(
                self._encode(pl.col("n").fill_null(0.0), pl.col("pos").fill_null(0.0), prior, name)
            )
            out += enc.get_columns()
        return pl.DataFrame(out) if out else pl.DataFrame(schema={})

    def fit_transform_time_safe(
        self, frame: pl.DataFrame, label: str | None = None, date_col: str | None = None
    ) -> pl.DataFrame:
        """Encode the fit period itself: each row sees only labels of strictly earlier dates.

        With ``label_delay_days = L``, a row dated ``d`` sees the labels of rows dated ``< d - L``.
        The encoder is left fitted on the whole frame (for :meth:`transform` of later rows).
        """
        self.label = label or self.label
        self.date_col = date_col or self.date_col
        base = self._base(frame, self.label, self.date_col)
        shift = dt.timedelta(days=int(self.label_delay_days) + 1)
        # Query date: the last date whose labels the row may see (inclusive).
        query = base.select(
            "__row", (pl.col("__date") - shift).alias("__q"), *[f"__k{i}" for i in range(len(self.keys))]
        )
        labelled = base.filter(pl.col("__y").is_not_null())

        daily = (
            labelled.group_by("__date")
            .agg(pl.len().cast(pl.Float64).alias("n"), pl.col("__y").sum().alias("pos"))
            .sort("__date")
            .select("__date", pl.col("n").cum_sum().alias("cn"), pl.col("pos").cum_sum().alias("cp"))
        )
        q_sorted = query.sort("__q")
        prior_frame = q_sorted.select("__row", "__q").join_asof(
            daily, left_on="__q", right_on="__date", strategy="backward"
        )
        prior_frame = prior_frame.select(
            "__row",
            (
                (pl.col("cp").fill_null(0.0) + _PRIOR_A) / (pl.col("cn").fill_null(0.0) + _PRIOR_A + _PRIOR_B)
            ).alias("__prior"),
        )
        result = query.select("__row").join(prior_frame, on="__row", how="left", maintain_order="left")
        for i, name in enumerate(self.key_names):
            k = f"__k{i}"
            cum = (
                labelled.group_by(k, "__date")
                .agg(pl.len().cast(pl.Float64).alias("n"), pl.col("__y").sum().alias("pos"))
                .sort(k, "__date")
                .select(
                    k,
                    "__date",
                    pl.col("n").cum_sum().over(k).alias("cn"),
                    pl.col("pos").cum_sum().over(k).alias("cp"),
                )
                .sort("__date")
            )
            joined = q_sorted.select("__row", "__q", k).join_asof(
                cum, left_on="__q", right_on="__date", by=k, strategy="backward", check_sortedness=False
            )
            joined = joined.select("__row", pl.col("cn").fill_null(0.0), pl.col("cp").fill_null(0.0))
            result = result.join(joined, on="__row", how="left", maintain_order="left").with_columns(
                self._encode(pl.col("cn"), pl.col("cp"), pl.col("__prior"), name)
            )
            result = result.drop("cn", "cp")
        out = result.sort("__row").drop("__row", "__prior")
        self.fit(frame, self.label, self.date_col)
        return out

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": [list(k) for k in self.keys],
            "label": self.label,
            "date_col": self.date_col,
            "smoothing": self.smoothing,
            "label_delay_days": self.label_delay_days,
            "prior_n": self.prior_n,
            "prior_pos": self.prior_pos,
            "fitted_until": self.fitted_until,
            "tables": {
                name: {
                    "key": t["key"].to_list(),
                    "n": t["n"].to_list(),
                    "pos": t["pos"].to_list(),
                }
                for name, t in self.tables.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEncoder:
        enc = cls(
            keys=tuple(tuple(k) for k in data["keys"]),
            label=str(data["label"]),
            date_col=str(data["date_col"]),
            smoothing=float(data["smoothing"]),
            label_delay_days=int(data.get("label_delay_days", 0)),
            prior_n=float(data["prior_n"]),
            prior_pos=float(data["prior_pos"]),
            fitted_until=data.get("fitted_until"),
        )
        enc.tables = {
            name: pl.DataFrame(
                {"key": t["key"], "n": t["n"], "pos": t["pos"]},
                schema={"key": pl.String, "n": pl.Float64, "pos": pl.Float64},
            )
            for name, t in data["tables"].items()
        }
        return enc


# --------------------------------------------------------------------------------------------------
# Full feature encoder
# --------------------------------------------------------------------------------------------------


def _log1p_pos(expr: pl.Expr) -> pl.Expr:
    return pl.when(expr >= 0).then(expr.log1p()).otherwise(None)


@dataclass
class FeatureEncoder:
    """Builds the model matrix from a :class:`FeatureSpec` (non-label features + risk histories).

    ``fit_transform(frame, label_col, date_col)`` fits every statistic on the training frame and returns
    its time-safe features; ``transform(frame)`` encodes later rows. ``to_dict``/``from_dict`` give a
    JSON-serialisable state.
    """

    spec: FeatureSpec
    date_col: str = "date"
    categories: dict[str, list[str]] = field(default_factory=dict)
    hs_medians: dict[str, pl.DataFrame] = field(default_factory=dict)
    frequencies: dict[str, pl.DataFrame] = field(default_factory=dict)
    history: HistoryEncoder | None = None

    # -- names -----------------------------------------------------------------------------------
    @property
    def _hs_keys(self) -> list[str]:
        return list(self.spec.hs_derived)

    def feature_names(self) -> list[str]:
        """All feature names, in the column order of the matrix."""
        s = self.spec
        names = [f"cat__{c}" for c in s.categorical]
        names += [f"num__{c}" for c in s.numeric]
        names += self._value_feature_names()
        names += [f"freq__{key_name(k)}" for k in s.frequency_keys]
        names += [f"day_count__{key_name(k)}" for k in s.same_day_keys]
        if s.date_parts:
            names += ["day_of_week", "day_of_month"]
        names += HistoryEncoder(keys=s.history_keys).feature_names
        return names

    def categorical_feature_names(self) -> list[str]:
        return [f"cat__{c}" for c in self.spec.categorical]

    def _value_feature_names(self) -> list[str]:
        s = self.spec
        out: list[str] = []
        if s.value_col:
            out.append("log_value")
        if s.mass_col:
            out.append("log_mass")
        if s.value_col and s.mass_col:
            out += ["value_per_kg", "log_value_per_kg"]
            out += [f"log_vpk_ratio__{h}" for h in self._hs_keys]
        if s.value_col and s.tax_rate_col:
            out.append("log_tax_amount")
        return out

    # -- preparation -----------------------------------------------------------------------------
    def prepare(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Add derived key columns (``hs2``/``hs4``/..., ``price_level``, ``value_per_kg``) to ``frame``."""
        s = self.spec
        extra: list[pl.Expr] = []
        if s.hs_col:
            hs = pl.col(s.hs_col).cast(pl.String).str.strip_chars()
            for n, name in zip(s.hs_levels, s.hs_derived, strict=True):
                if name != s.hs_col:
                    extra.append(hs.str.slice(0, n).alias(name))
        if s.value_col and s.mass_col:
            v = pl.col(s.value_col).cast(pl.Float64)
            m = pl.col(s.mass_col).cast(pl.Float64)
            vpk = pl.when(m > 0).then(v / m).otherwise(None)
            extra.append(vpk.alias("value_per_kg"))
            if s.price_level:
                extra.append(
                    pl.when(vpk > 0)
                    .then(vpk.round_sig_figs(3).cast(pl.String))
                    .otherwise(pl.lit("none"))
                    .alias("price_level")
                )
        out = frame.with_columns(extra) if extra else frame
        bins: list[pl.Expr] = []
        for (c, k), name in zip(s.log_bins, s.bin_columns, strict=True):
            x = pl.col(c).cast(pl.Float64)
            bins.append(
                pl.when(x > 0)
                .then((x.log10() * k).floor().cast(pl.Int64).cast(pl.String))
                .otherwise(pl.lit("none"))
                .alias(name)
            )
        return out.with_columns(bins) if bins else out

    # -- fitting ---------------------------------------------------------------------------------
    def fit_transform(self, frame: pl.DataFrame, label_col: str, date_col: str) -> pl.DataFrame:
        """Fit all statistics on ``frame`` and return its (time-safe) feature matrix."""
        self.date_col = date_col
        prepared = self.prepare(frame)
        s = self.spec
        self.categories = {
            c: sorted(v for v in prepared[c].cast(pl.String).unique().to_list() if v is not None)
            for c in s.categorical
        }
        self.hs_medians = {}
        if s.value_col and s.mass_col:
            for h in self._hs_keys:
                self.hs_medians[h] = (
                    prepared.filter(pl.col("value_per_kg") > 0)
                    .group_by(pl.col(h).cast(pl.String).alias("key"))
                    .agg(pl.col("value_per_kg").median().alias("median"))
                    .sort("key")
                )
        self.frequencies = {}
        for k in s.frequency_keys:
            self.frequencies[key_name(k)] = (
                prepared.group_by(_key_expr(k).alias("key"))
                .agg(pl.len().cast(pl.Float64).alias("count"))
                .sort("key")
            )
        self.history = HistoryEncoder(
            keys=s.history_keys,
            label=label_col,
            date_col=date_col,
            smoothing=s.smoothing,
            label_delay_days=s.label_delay_days,
        )
        base = self._non_label(prepared, training=True)
        hist = self.history.fit_transform_time_safe(prepared, label_col, date_col)
        return pl.concat([base, hist], how="horizontal").select(self.feature_names())

    def transform(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Feature matrix of rows dated after the fit period (uses every fitted label)."""
        if self.history is None:
            raise RuntimeError("FeatureEncoder is not fitted")
        prepared = self.prepare(frame)
        base = self._non_label(prepared, training=False)
        hist = self.history.transform(prepared)
        return pl.concat([base, hist], how="horizontal").select(self.feature_names())

    def _non_label(self, frame: pl.DataFrame, *, training: bool) -> pl.DataFrame:
        s = self.spec
        exprs: list[pl.Expr] = []
        for c in s.categorical:
            # code = position in the sorted fitted categories, null if unseen: an Enum of those
            # categories gives exactly that as its physical value (cheaper than a replace)
            cats = self.categories.get(c, [])
            exprs.append(
                pl.col(c)
                .cast(pl.String)
                .cast(pl.Enum(cats), strict=False)
                .to_physical()
                .cast(pl.Float64)
                .alias(f"cat__{c}")
                if cats
                else pl.lit(None, dtype=pl.Float64).alias(f"cat__{c}")
            )
        exprs += [pl.col(c).cast(pl.Float64).alias(f"num__{c}") for c in s.numeric]
        if s.value_col:
            exprs.append(_log1p_pos(pl.col(s.value_col).cast(pl.Float64)).alias("log_value"))
        if s.mass_col:
            exprs.append(_log1p_pos(pl.col(s.mass_col).cast(pl.Float64)).alias("log_mass"))
        if s.value_col and s.mass_col:
            vpk = pl.col("value_per_kg")
            exprs += [vpk.alias("value_per_kg"), pl.when(vpk > 0).then(vpk.log()).alias("log_value_per_kg")]
        if s.value_col and s.tax_rate_col:
            tax = pl.col(s.value_col).cast(pl.Float64) * pl.col(s.tax_rate_col).cast(pl.Float64) / 100.0
            exprs.append(_log1p_pos(tax).alias("log_tax_amount"))
        if s.date_parts:
            d = pl.col(self.date_col).cast(pl.Date)
            exprs += [
                d.dt.weekday().cast(pl.Float64).alias("day_of_week"),
                d.dt.day().cast(pl.Float64).alias("day_of_month"),
            ]
        out = frame.select(exprs) if exprs else pl.DataFrame()
        extra: list[pl.Series] = []
        if s.value_col and s.mass_col:
            for h in self._hs_keys:
                med = self.hs_medians[h].rename({"key": "__h"})
                joined = (
                    frame.select(pl.col(h).cast(pl.String).alias("__h"), pl.col("value_per_kg"))
                    .join(med, on="__h", how="left", maintain_order="left")
                    .select(
                        pl.when((pl.col("value_per_kg") > 0) & (pl.col("median") > 0))
                        .then((pl.col("value_per_kg") / pl.col("median")).log())
                        .alias(f"log_vpk_ratio__{h}")
                    )
                )
                extra.append(joined.to_series())
        for k in s.frequency_keys:
            name = key_name(k)
            table = self.frequencies[name]
            joined = frame.select(_key_expr(k).alias("key")).join(
                table, on="key", how="left", maintain_order="left"
            )
            count = joined["count"].fill_null(0.0)
            if training:
                count = count - 1.0
            extra.append(count.alias(f"freq__{name}"))
        if s.same_day_keys:
            d = pl.col(self.date_col).cast(pl.Date)
            counts = frame.select(
                [
                    pl.len().over(_key_expr(k), d).cast(pl.Float64).alias(f"day_count__{key_name(k)}")
                    for k in s.same_day_keys
                ]
            )
            extra += counts.get_columns()
        if extra:
            out = (
                pl.concat([out, pl.DataFrame(extra)], how="horizontal") if out.width else pl.DataFrame(extra)
            )
        return out

    # -- a few rows, in plain Python ------------------------------------------------------------
    def supports_rows(self) -> bool:
        """True when :meth:`transform_rows` can encode this spec (everything but the derived
        ``price_level`` and log-bin key columns, which only :meth:`transform` builds)."""
        return not self.spec.price_level and not self.spec.log_bins

    def transform_rows(self, rows: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The float64 matrix :meth:`transform` gives (then :func:`to_numpy`: NaN for missing), for a few
        rows given as dicts, computed in plain Python: a single consignment scored through the API costs
        microseconds here instead of the milliseconds of a dozen small frame operations. Equal to the
        frame path value for value (``tests/risk/test_features.py``)."""
        if self.history is None:
            raise RuntimeError("FeatureEncoder is not fitted")
        if not self.supports_rows():
            raise ValueError("transform_rows does not build price_level / log-bin columns; use transform")
        s, lk = self.spec, self._lookups()
        names = self.feature_names()
        out = np.full((len(rows), len(names)), np.nan, dtype=np.float64)
        day_counts = [_row_counts(rows, k, self.date_col) for k in s.same_day_keys]
        history = self.history
        prior = history.prior
        m = float(history.smoothing)
        for i, row in enumerate(rows):
            f: dict[str, float | None] = {}
            hs = _text(row.get(s.hs_col)) if s.hs_col else None
            hs = None if hs is None else hs.strip()
            derived = {
                name: None if hs is None else hs[:n]
                for n, name in zip(s.hs_levels, s.hs_derived, strict=True)
            }
            if s.hs_col:
                derived[s.hs_col] = hs
            values = _RowView(row, derived)
            for c in s.categorical:
                f[f"cat__{c}"] = lk.codes[c].get(_text(values[c]))  # type: ignore[arg-type]
            for c in s.numeric:
                f[f"num__{c}"] = _float(values[c])
            v = _float(values[s.value_col]) if s.value_col else None
            mass = _float(values[s.mass_col]) if s.mass_col else None
            if s.value_col:
                f["log_value"] = math.log1p(v) if v is not None and v >= 0 else None
            if s.mass_col:
                f["log_mass"] = math.log1p(mass) if mass is not None and mass >= 0 else None
            if s.value_col and s.mass_col:
                vpk = v / mass if v is not None and mass is not None and mass > 0 else None
                f["value_per_kg"] = vpk
                f["log_value_per_kg"] = math.log(vpk) if vpk is not None and vpk > 0 else None
                for h in self._hs_keys:
                    med = lk.medians[h].get(_text(values[h]))  # type: ignore[arg-type]
                    ok = vpk is not None and vpk > 0 and med is not None and med > 0
                    f[f"log_vpk_ratio__{h}"] = math.log(vpk / med) if ok else None  # type: ignore[operator]
            if s.value_col and s.tax_rate_col:
                rate = _float(values[s.tax_rate_col])
                # as polars computes ``/ 100.0``: times the reciprocal (its optimiser rewrites it)
                tax = v * rate * (1.0 / 100.0) if v is not None and rate is not None else None
                f["log_tax_amount"] = math.log1p(tax) if tax is not None and tax >= 0 else None
            for k in s.frequency_keys:
                f[f"freq__{key_name(k)}"] = lk.frequencies[key_name(k)].get(_row_key(values, k), 0.0)
            for k, counts in zip(s.same_day_keys, day_counts, strict=True):
                f[f"day_count__{key_name(k)}"] = float(counts[i])
            if s.date_parts:
                d = _date(values[self.date_col])
                f["day_of_week"] = None if d is None else float(d.isoweekday())
                f["day_of_month"] = None if d is None else float(d.day)
            for k, name in zip(history.keys, history.key_names, strict=True):
                n, pos = lk.history[name].get(_row_key(values, k), (0.0, 0.0))
                rate = (pos + m * prior) / (n + m) if m > 0 else (pos / n if n > 0 else prior)
                f[f"hist_rate__{name}"], f[f"hist_n__{name}"] = rate, n
            for j, name in enumerate(names):
                x = f[name]
                if x is not None:
                    out[i, j] = x
        return out

    def _lookups(self) -> _Lookups:
        """The fitted tables as dicts, built once (the encoder is not changed after fitting)."""
        lk = self.__dict__.get("_row_lookups")
        if lk is None:
            assert self.history is not None
            lk = _Lookups(
                codes={c: {v: float(i) for i, v in enumerate(vs)} for c, vs in self.categories.items()},
                medians={
                    h: dict(zip(t["key"].to_list(), t["median"].to_list(), strict=True))
                    for h, t in self.hs_medians.items()
                },
                frequencies={
                    n: dict(zip(t["key"].to_list(), t["count"].to_list(), strict=True))
                    for n, t in self.frequencies.items()
                },
                history={
                    n: dict(
                        zip(
                            t["key"].to_list(),
                            zip(t["n"].to_list(), t["pos"].to_list(), strict=True),
                            strict=True,
                        )
                    )
                    for n, t in self.history.tables.items()
                },
            )
            for c in self.spec.categorical:
                lk.codes.setdefault(c, {})
            self.__dict__["_row_lookups"] = lk
        return lk

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "spec": self.spec.to_dict(),
            "date_col": self.date_col,
            "categories": self.categories,
            "hs_medians": {
                h: {"key": t["key"].to_list(), "median": t["median"].to_list()}
                for h, t in self.hs_medians.items()
            },
            "frequencies": {
                n: {"key": t["key"].to_list(), "count": t["count"].to_list()}
                for n, t in self.frequencies.items()
            },
            "history": self.history.to_dict() if self.history else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureEncoder:
        enc = cls(spec=FeatureSpec.from_dict(data["spec"]), date_col=str(data["date_col"]))
        enc.categories = {str(k): [str(x) for x in v] for k, v in data["categories"].items()}
        enc.hs_medians = {
            h: pl.DataFrame(t, schema={"key": pl.String, "median": pl.Float64})
            for h, t in data["hs_medians"].items()
        }
        enc.frequencies = {
            n: pl.DataFrame(t, schema={"key": pl.String, "count": pl.Float64})
            for n, t in data["frequencies"].items()
        }
        enc.history = HistoryEncoder.from_dict(data["history"]) if data.get("history") else None
        return enc


@dataclass
class _Lookups:
    codes: dict[str, dict[str, float]]
    medians: dict[str, dict[str, float]]
    frequencies: dict[str, dict[str, float]]
    history: dict[str, dict[str, tuple[float, float]]]


class _RowView:
    """A row's values with the derived HS-prefix columns (``None`` for a missing column)."""

    __slots__ = ("derived", "row")

    def __init__(self, row: Mapping[str, Any], derived: Mapping[str, Any]) -> None:
        self.row, self.derived = row, derived

    def __getitem__(self, name: str) -> Any:
        if name in self.derived:
            return self.derived[name]
        return self.row.get(name)


def _text(value: Any) -> str | None:
    """A value as ``cast(pl.String)`` writes it (booleans ``true``/``false``)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):  # polars' float formatting, not Python's
        text: str = pl.Series([value], dtype=pl.Float64).cast(pl.String)[0]
        return text
    return str(value)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _date(value: Any) -> dt.date | None:
    if value is None:
        return None
    return value.date() if isinstance(value, dt.datetime) else value


def _row_key(values: _RowView | Mapping[str, Any], cols: Sequence[str]) -> str:
    """:func:`_key_expr` of one row (text values)."""
    parts = [MISSING_KEY if values[c] is None else str(_text(values[c])) for c in cols]
    return parts[0] if len(parts) == 1 else KEY_SEPARATOR.join(parts)


def _row_counts(rows: Sequence[Mapping[str, Any]], cols: Sequence[str], date_col: str) -> list[int]:
    """Per row, how many of ``rows`` share its key and date (``same_day_keys``)."""
    keys = [(_row_key(r, cols), _date(r.get(date_col))) for r in rows]
    counts: dict[tuple[str, dt.date | None], int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return [counts[k] for k in keys]


def to_numpy(
    features: pl.DataFrame, order: Literal["c", "fortran"] = "c", buffer: np.ndarray | None = None
) -> np.ndarray:
    """Feature frame -> float64 matrix with NaN for missing values (LightGBM input), row-major (``"c"``)
    or column-major (``"fortran"``: polars then copies each column once, and LightGBM reads it as is).

    Nulls are filled with NaN in polars first: columns without a validity mask are copied with a
    ``memcpy``, while masked ones (even with no null) go value by value, three to four times slower.

    ``buffer`` (column-major only): a flat float64 array of at least rows x columns values; the matrix
    is written into it and returned as a view of it. Batch scoring passes the same buffer chunk after
    chunk, so the matrix reuses pages the process already has instead of a fresh allocation that the
    kernel must zero page by page (``RiskModelScorer.reuse_matrix``)."""
    filled = features.select(pl.all().cast(pl.Float64).fill_null(np.nan))
    if buffer is None:
        return filled.to_numpy(order=order).astype(np.float64, copy=False)
    rows, cols = filled.shape
    if order != "fortran" or buffer.dtype != np.float64 or buffer.ndim != 1 or buffer.shape[0] < rows * cols:
        raise ValueError(
            f"buffer must be a flat float64 array of >= {rows * cols} values, for order='fortran'"
        )
    matrix = buffer[: rows * cols].reshape((rows, cols), order="F")
    for j, column in enumerate(filled.get_columns()):
        matrix[:, j] = column.to_numpy()
    return matrix

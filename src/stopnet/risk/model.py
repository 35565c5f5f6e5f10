"""Learned risk model: LightGBM on :mod:`stopnet.risk.features`, time-validated, calibrated, explainable.

Usage::

    from stopnet.risk.model import RiskModel
    from stopnet.risk.kcs import KCS_SPEC, read_kcs

    model = RiskModel.fit(read_kcs("train.csv"), KCS_SPEC, label_col="fraud", date_col="date", seed=0)
    p = model.predict_proba(frame)            # calibrated P(fraud), shape (n,)
    why = model.explain(frame, top_k=5)       # [[(feature, contribution in log-odds), ...], ...]
    model.save("model.zip"); same = RiskModel.load("model.zip"); same.version == model.version

Training (:meth:`RiskModel.fit`) uses only the frame it is given, split by **date**:

1. the earliest ``1 - holdout_fraction`` of the rows (whole dates) is the *fit* slice: the feature encoder is
   fitted on it (time-safe risk histories) and the trees are grown on it;
2. the remaining, later rows form the *holdout*, cut by date into an *early-stopping* slice and a later
   *calibration* slice. Both are encoded with the encoder frozen at the end of the fit slice, exactly as
   rows after the training period are encoded in production. The number of trees is chosen by early
   stopping on the first, the calibration (Platt by default) is fitted on the second;
3. the feature encoder is then refitted on the whole frame, so that scoring uses every known label.
   With ``refit=True`` the trees are also regrown on the whole frame with the early-stopped number of
   trees (scaled by the row ratio) and the calibration of step 2 is kept.

Nothing outside the frame (e.g. an evaluation quarter) is ever used for fitting or early stopping.

Persistence: :meth:`RiskModel.save` writes ONE zip file holding ``model.txt`` (LightGBM text model) and
``meta.json`` (spec, encoder state, calibration, training summary). Loading parses text and JSON only
(no pickle), so a model file from elsewhere cannot execute code. The zip is written deterministically
and :attr:`RiskModel.version` is ``<name>-<created_at>-<first 16 hex of sha256 of the file bytes>``:
``sha256sum model.zip`` identifies the model a stored score came from.

A :class:`RiskModel` holds no global state and pickles (Dask workers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import math
import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# LightGBM's OpenMP threads busy-wait between parallel regions by default; on small shared machines (2 cores
# shared with other jobs) that spinning multiplies training time several-fold. Ask them to sleep instead.
# Only a default (an explicit OMP_WAIT_POLICY wins), and only effective if LightGBM is not loaded yet.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import lightgbm as lgb
import numpy as np
import polars as pl

from stopnet.core.progress import ProgressCallback
from stopnet.risk.features import FeatureEncoder, FeatureSpec, to_numpy
from stopnet.risk.metrics import auc, precision_at_k

__all__ = [
    "DEFAULT_PARAMS",
    "MODEL_FORMAT",
    "Calibration",
    "ModelFormatError",
    "RiskModel",
    "feature_importance",
]

MODEL_FORMAT = "stopnet-risk-model"
MODEL_FORMAT_VERSION = 1
_MAX_MEMBER_BYTES = 1 << 30  # refuse zip members above 1 GiB uncompressed
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

#: LightGBM parameters used unless overridden in :meth:`RiskModel.fit` (``seed`` is set from ``seed``).
DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary",
    "metric": "binary_logloss",
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 4,
    "num_threads": 2,
    "deterministic": True,
    "force_row_wise": True,
    "verbose": -1,
}


def _tree_progress(progress: ProgressCallback | None) -> list[Callable[[Any], None]]:
    """LightGBM callbacks reporting ``(trees built, trees planned)`` of the current phase."""
    if progress is None:
        return []

    def after_round(env: Any) -> None:
        progress(env.iteration - env.begin_iteration + 1, env.end_iteration - env.begin_iteration)

    return [after_round]


class ModelFormatError(ValueError):
    """The file is not a stopnet risk model (or a newer format)."""


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(x, -500.0, 500.0))), dtype=np.float64)


@dataclass
class Calibration:
    """Maps the raw LightGBM score (log-odds) to a probability.

    ``platt``: ``sigmoid(a * raw + b)`` (strictly increasing: keeps the ranking). ``isotonic``: piecewise
    linear interpolation through ``(x, y)`` (monotone but may tie rows, which can change top-k selections).
    ``none``: ``sigmoid(raw)``.
    """

    method: str = "none"
    a: float = 1.0
    b: float = 0.0
    x: list[float] = field(default_factory=list)
    y: list[float] = field(default_factory=list)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        if self.method == "platt":
            return _sigmoid(self.a * raw + self.b)
        if self.method == "isotonic" and self.x:
            return np.asarray(np.interp(raw, self.x, self.y), dtype=np.float64)
        return _sigmoid(raw)

    @classmethod
    def fit(cls, raw: np.ndarray, y: np.ndarray, method: str) -> Calibration:
        """Fit on raw scores and 0/1 labels; falls back to ``none`` when a class is missing."""
        if method not in ("platt", "isotonic", "none"):
            raise ValueError("calibration must be 'platt', 'isotonic' or 'none'")
        raw = np.asarray(raw, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if method == "none" or y.size == 0 or y.min() == y.max():
            return cls("none")
        if method == "platt":
            from sklearn.linear_model import LogisticRegression

            lr = LogisticRegression(C=1e6, max_iter=1000)
            lr.fit(raw.reshape(-1, 1), y)
            a, b = float(lr.coef_[0][0]), float(lr.intercept_[0])
            if not (a > 0 and math.isfinite(a) and math.isfinite(b)):
                return cls("none")
            return cls("platt", a=a, b=b)
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0)
        iso.fit(raw, y)
        return cls(
            "isotonic",
            x=[float(v) for v in iso.X_thresholds_],
            y=[float(v) for v in iso.y_thresholds_],
        )

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": self.a, "b": self.b, "x": self.x, "y": self.y}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Calibration:
        return cls(
            method=str(d.get("method", "none")),
            a=float(d.get("a", 1.0)),
            b=float(d.get("b", 0.0)),
            x=[float(v) for v in d.get("x", [])],
            y=[float(v) for v in d.get("y", [])],
        )


def _date_slices(dates: pl.Series, holdout_fraction: float) -> tuple[dt.date | None, dt.date | None]:
    """(first date of the holdout, first date of the calibration slice), or None when impossible."""
    counts = dates.value_counts(sort=False).sort(dates.name)
    days: list[dt.date] = counts[dates.name].to_list()
    n_per_day = np.asarray(counts["count"].to_list(), dtype=np.float64)
    if len(days) < 3 or holdout_fraction <= 0:
        return None, None
    total = n_per_day.sum()
    before = np.concatenate([[0.0], np.cumsum(n_per_day)[:-1]])
    start = int(np.searchsorted(before, (1.0 - holdout_fraction) * total, side="left"))
    start = min(max(start, 1), len(days) - 1)
    hold_days = days[start:]
    if len(hold_days) == 1:
        return hold_days[0], hold_days[0]
    hold_n = n_per_day[start:]
    hold_before = np.concatenate([[0.0], np.cumsum(hold_n)[:-1]])
    mid = int(np.searchsorted(hold_before, hold_n.sum() / 2.0, side="left"))
    mid = min(max(mid, 1), len(hold_days) - 1)
    return hold_days[0], hold_days[mid]


def _predict_raw(booster: lgb.Booster, x: np.ndarray, n_rounds: int) -> np.ndarray:
    if x.shape[0] == 0:
        return np.zeros(0)
    return np.asarray(booster.predict(x, raw_score=True, num_iteration=n_rounds), dtype=np.float64)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


class RiskModel:
    """Gradient-boosted fraud-risk classifier over a :class:`~stopnet.risk.features.FeatureSpec`.

    Build with :meth:`fit` or :meth:`load`; score with :meth:`predict_proba`; explain with :meth:`explain`.
    """

    def __init__(
        self,
        booster: lgb.Booster,
        encoder: FeatureEncoder,
        calibration: Calibration,
        *,
        name: str,
        created_at: str,
        label_col: str,
        training: Mapping[str, Any] | None = None,
        file_bytes: bytes | None = None,
    ) -> None:
        self.booster = booster
        self.encoder = encoder
        self.calibration = calibration
        self.name = name
        self.created_at = created_at
        self.label_col = label_col
        self.training: dict[str, Any] = dict(training or {})
        self._file_bytes = file_bytes

    # -- training --------------------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        frame: pl.DataFrame,
        spec: FeatureSpec,
        label_col: str = "fraud",
        date_col: str = "date",
        seed: int = 0,
        *,
        params: Mapping[str, Any] | None = None,
        holdout_fraction: float = 0.2,
        max_rounds: int = 2000,
        early_stopping_rounds: int = 100,
        default_rounds: int = 300,
        calibration: str = "platt",
        refit: bool = False,
        name: str = "risk-lgbm",
        progress: ProgressCallback | None = None,
    ) -> RiskModel:
        """Train on ``frame`` (rows with a null label are used for non-label statistics only).

        ``params`` override :data:`DEFAULT_PARAMS`. ``holdout_fraction`` is the share of the latest rows used
        for early stopping (first half) and calibration (second half); with too few dates the model is
        trained for ``default_rounds`` trees and left uncalibrated (``sigmoid`` of the raw score).
        ``progress(trees built, trees planned)`` follows each boosting round (early stopping ends a phase
        before its planned count; a refit on all rows is a second phase).
        """
        trees = _tree_progress(progress)
        for col in (label_col, date_col):
            if col not in frame.columns:
                raise ValueError(f"missing column {col!r}")
        if frame.height == 0:
            raise ValueError("empty training frame")
        if not 0.0 <= holdout_fraction < 1.0:
            raise ValueError("holdout_fraction must be in [0, 1)")
        p = {**DEFAULT_PARAMS, **(params or {}), "seed": int(seed)}
        frame = frame.with_columns(pl.col(date_col).cast(pl.Date)).sort(date_col, maintain_order=True)
        y_all = frame[label_col].cast(pl.Float64)
        hold_start, cal_start = _date_slices(frame[date_col], holdout_fraction)
        info: dict[str, Any] = {
            "rows": frame.height,
            "labelled_rows": int(y_all.is_not_null().sum()),
            "positives": float(y_all.sum() or 0.0),
            "date_min": str(frame[date_col].min()),
            "date_max": str(frame[date_col].max()),
            "seed": int(seed),
            "params": {k: v for k, v in p.items()},
            "holdout_fraction": holdout_fraction,
            "refit": refit,
        }

        calib = Calibration("none")
        n_rounds = default_rounds
        booster: lgb.Booster
        if hold_start is not None and cal_start is not None:
            date = pl.col(date_col)
            fit_part = frame.filter(date < hold_start)
            if cal_start > hold_start:
                es_part = frame.filter((date >= hold_start) & (date < cal_start))
            else:
                es_part = frame.filter(date >= hold_start)
            cal_part = frame.filter(date >= cal_start)
            enc_a = FeatureEncoder(spec)
            x_fit, y_fit = cls._matrix(
                enc_a.fit_transform(fit_part, label_col, date_col), fit_part[label_col]
            )
            x_es, y_es = cls._matrix(enc_a.transform(es_part), es_part[label_col])
            x_cal, y_cal = cls._matrix(enc_a.transform(cal_part), cal_part[label_col])
            names = enc_a.feature_names()
            cats = enc_a.categorical_feature_names()
            dtrain = lgb.Dataset(
                x_fit, y_fit, feature_name=names, categorical_feature=cats, free_raw_data=True
            )
            can_stop = y_es.size > 0 and y_es.min() != y_es.max()
            if can_stop:
                dval = lgb.Dataset(x_es, y_es, reference=dtrain)
                booster = lgb.train(
                    p,
                    dtrain,
                    num_boost_round=max_rounds,
                    valid_sets=[dval],
                    valid_names=["early_stopping"],
                    callbacks=[
                        lgb.early_stopping(early_stopping_rounds, first_metric_only=True, verbose=False),
                        *trees,
                    ],
                )
                n_rounds = max(1, int(booster.best_iteration or booster.current_iteration()))
            else:
                booster = lgb.train(p, dtrain, num_boost_round=default_rounds, callbacks=trees)
                n_rounds = default_rounds
            raw_cal = _predict_raw(booster, x_cal, n_rounds)
            calib = Calibration.fit(raw_cal, y_cal, calibration)
            raw_es = _predict_raw(booster, x_es, n_rounds)
            info.update(
                {
                    "fit_rows": fit_part.height,
                    "early_stopping_rows": es_part.height,
                    "calibration_rows": cal_part.height,
                    "holdout_start": str(hold_start),
                    "calibration_start": str(cal_start),
                    "best_iteration": n_rounds,
                    "early_stopped": bool(can_stop),
                    "holdout_auc": auc(y_es, raw_es) if y_es.size else None,
                    "holdout_precision_at_5": precision_at_k(y_es, raw_es, 5) if y_es.size else None,
                    "calibration_auc": auc(y_cal, raw_cal) if y_cal.size else None,
                }
            )
            model_text = booster.model_to_string(num_iteration=n_rounds)
        else:
            refit = True
            model_text = ""

        encoder = FeatureEncoder(spec)
        x_all_frame = encoder.fit_transform(frame, label_col, date_col)
        if refit:
            x_all, y_lab = cls._matrix(x_all_frame, frame[label_col])
            if not model_text:
                rounds = default_rounds
            else:
                fit_rows = max(1, int(info.get("fit_rows", frame.height)))
                rounds = max(1, round(n_rounds * frame.height / fit_rows))
            dall = lgb.Dataset(
                x_all,
                y_lab,
                feature_name=encoder.feature_names(),
                categorical_feature=encoder.categorical_feature_names(),
                free_raw_data=True,
            )
            booster = lgb.train(p, dall, num_boost_round=rounds, callbacks=trees)
            info["final_rounds"] = rounds
            model_text = booster.model_to_string()
        created = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
        final = lgb.Booster(model_str=model_text)
        if progress is not None:
            progress(final.num_trees(), final.num_trees())
        return cls(final, encoder, calib, name=name, created_at=created, label_col=label_col, training=info)

    @staticmethod
    def _matrix(features: pl.DataFrame, labels: pl.Series) -> tuple[np.ndarray, np.ndarray]:
        y = labels.cast(pl.Float64).to_numpy()
        keep = ~np.isnan(y)
        x = to_numpy(features)
        return x[keep], y[keep]

    # -- scoring ---------------------------------------------------------------------------------
    @property
    def spec(self) -> FeatureSpec:
        return self.encoder.spec

    @property
    def feature_names(self) -> list[str]:
        return self.encoder.feature_names()

    def features(self, frame: pl.DataFrame) -> pl.DataFrame:
        """The feature matrix the booster sees for ``frame`` (rows after the training period)."""
        return self.encoder.transform(frame)

    def _x(self, frame: pl.DataFrame) -> np.ndarray:
        return to_numpy(self.features(frame))

    def _threads(self) -> int:
        return int(self.training.get("params", {}).get("num_threads", 2))

    def raw_score(self, frame: pl.DataFrame) -> np.ndarray:
        """Raw booster score (log-odds, before calibration), shape ``(n,)``."""
        if frame.height == 0:
            return np.zeros(0)
        out = self.booster.predict(self._x(frame), raw_score=True, num_threads=self._threads())
        return np.asarray(out, dtype=np.float64)

    def predict_proba(self, frame: pl.DataFrame) -> np.ndarray:
        """Calibrated probability of fraud for each row, shape ``(n,)``."""
        return self.calibration.apply(self.raw_score(frame))

    def contributions(self, frame: pl.DataFrame) -> np.ndarray:
        """SHAP-like contributions (LightGBM ``pred_contrib``), shape ``(n, n_features + 1)``.

        The last column is the bias (expected value); each row sums to :meth:`raw_score`.
        """
        if frame.height == 0:
            return np.zeros((0, len(self.feature_names) + 1))
        out = self.booster.predict(self._x(frame), pred_contrib=True, num_threads=self._threads())
        return np.asarray(out, dtype=np.float64)

    def explain(self, frame: pl.DataFrame, top_k: int = 5) -> list[list[tuple[str, float]]]:
        """Per row, the ``top_k`` features with the largest absolute contribution to the raw score
        (log-odds), as ``(feature name, contribution)`` sorted by decreasing absolute value."""
        contrib = self.contributions(frame)
        names = self.feature_names
        out: list[list[tuple[str, float]]] = []
        k = max(0, min(int(top_k), len(names)))
        for row in contrib[:, :-1]:
            order = np.argsort(-np.abs(row), kind="stable")[:k]
            out.append([(names[i], float(row[i])) for i in order])
        return out

    # -- persistence -----------------------------------------------------------------------------
    def _meta(self) -> dict[str, Any]:
        return _json_safe(
            {
                "format": MODEL_FORMAT,
                "format_version": MODEL_FORMAT_VERSION,
                "name": self.name,
                "created_at": self.created_at,
                "label_col": self.label_col,
                "feature_names": self.feature_names,
                "categorical_features": self.encoder.categorical_feature_names(),
                "encoder": self.encoder.to_dict(),
                "calibration": self.calibration.to_dict(),
                "training": self.training,
                "lightgbm_version": lgb.__version__,
            }
        )

    def to_bytes(self) -> bytes:
        """The model file content (deterministic zip of ``model.txt`` + ``meta.json``)."""
        if self._file_bytes is not None:
            return self._file_bytes
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            for member, data in (
                ("meta.json", json.dumps(self._meta(), sort_keys=True, allow_nan=False).encode()),
                ("model.txt", self.booster.model_to_string().encode()),
            ):
                info = zipfile.ZipInfo(member, date_time=_ZIP_DATE)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                zf.writestr(info, data)
        self._file_bytes = buf.getvalue()
        return self._file_bytes

    @property
    def sha256(self) -> str:
        """sha256 (hex) of the model file content."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    @property
    def version(self) -> str:
        """``<name>-<created_at>-<sha256[:16]>``: names the model in every stored score."""
        return f"{self.name}-{self.created_at}-{self.sha256[:16]}"

    def save(self, path: str | Path) -> str:
        """Write the model to ONE file; returns :attr:`version`."""
        Path(path).write_bytes(self.to_bytes())
        return self.version

    @classmethod
    def load(cls, path: str | Path) -> RiskModel:
        """Read a file written by :meth:`save` (text + JSON only, no pickle)."""
        return cls.from_bytes(Path(path).read_bytes())

    @classmethod
    def from_bytes(cls, data: bytes) -> RiskModel:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                members = {i.filename: i for i in zf.infolist()}
                for needed in ("meta.json", "model.txt"):
                    if needed not in members:
                        raise ModelFormatError(f"not a stopnet risk model: {needed} missing")
                    if members[needed].file_size > _MAX_MEMBER_BYTES:
                        raise ModelFormatError(f"{needed} is too large")
                meta = json.loads(zf.read("meta.json").decode("utf-8"))
                model_text = zf.read("model.txt").decode("utf-8")
        except zipfile.BadZipFile as exc:
            raise ModelFormatError("not a stopnet risk model (not a zip file)") from exc
        if not isinstance(meta, dict) or meta.get("format") != MODEL_FORMAT:
            raise ModelFormatError("not a stopnet risk model (bad meta.json)")
        if int(meta.get("format_version", 0)) > MODEL_FORMAT_VERSION:
            raise ModelFormatError(f"model format {meta.get('format_version')} is newer than supported")
        encoder = FeatureEncoder.from_dict(meta["encoder"])
        booster = lgb.Booster(model_str=model_text)
        if list(booster.feature_name()) != encoder.feature_names():
            raise ModelFormatError("feature names of model.txt and meta.json differ")
        return cls(
            booster,
            encoder,
            Calibration.from_dict(meta.get("calibration", {})),
            name=str(meta["name"]),
            created_at=str(meta["created_at"]),
            label_col=str(meta.get("label_col", "fraud")),
            training=meta.get("training", {}),
            file_bytes=data,
        )

    def __repr__(self) -> str:
        return f"RiskModel(version={self.version!r}, features={len(self.feature_names)})"


def feature_importance(model: RiskModel, kind: str = "gain") -> list[tuple[str, float]]:
    """Feature importances of the booster, largest first (``kind``: ``gain`` or ``split``)."""
    values = model.booster.feature_importance(importance_type=kind)
    pairs = sorted(zip(model.feature_names, (float(v) for v in values), strict=True), key=lambda t: -t[1])
    return pairs

"""Ranking metrics for risk scores, as used in the DATE / KCS papers.

``precision_at_k(y, score, k)`` with ``k`` in **percent**: the fraud rate among the top ``k`` % of rows by
score (P@5 = precision over the 5 % highest-scored declarations, i.e. an inspection rate of 5 %).
The number of selected rows is ``max(1, round(n * k / 100))`` (half-way cases round up); ties in the score
are broken by row order (stable sort), which is deterministic. ``recall_at_k`` is the share of all frauds
found in that same selection.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = [
    "DEFAULT_K_PERCENT",
    "auc",
    "base_rate",
    "evaluate_scores",
    "precision_at_k",
    "recall_at_k",
    "top_k_count",
]

#: Inspection rates (percent) reported by :func:`evaluate_scores`.
DEFAULT_K_PERCENT: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0)


def _arrays(y_true: Any, score: Any) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=np.float64).ravel()
    s = np.asarray(score, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError(f"y_true and score differ in length: {y.shape[0]} != {s.shape[0]}")
    if y.size == 0:
        raise ValueError("empty input")
    if np.isnan(y).any():
        raise ValueError("y_true has missing values")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("y_true must be 0/1")
    if np.isnan(s).any():
        raise ValueError("score has missing values")
    return y, s


def top_k_count(n: int, k_percent: float) -> int:
    """Rows selected at an inspection rate of ``k_percent`` % of ``n`` rows (at least 1)."""
    if not 0 < k_percent <= 100:
        raise ValueError("k_percent must be in (0, 100]")
    return max(1, min(n, math.floor(n * k_percent / 100.0 + 0.5)))


def _top(y: np.ndarray, s: np.ndarray, k_percent: float) -> np.ndarray:
    order = np.argsort(-s, kind="stable")
    return y[order[: top_k_count(y.size, k_percent)]]


def precision_at_k(y_true: Any, score: Any, k_percent: float) -> float:
    """Fraud rate among the top ``k_percent`` % rows by score."""
    y, s = _arrays(y_true, score)
    return float(_top(y, s, k_percent).mean())


def recall_at_k(y_true: Any, score: Any, k_percent: float) -> float:
    """Share of all positives found in the top ``k_percent`` % rows (0.0 when there is no positive)."""
    y, s = _arrays(y_true, score)
    total = y.sum()
    if total == 0:
        return 0.0
    return float(_top(y, s, k_percent).sum() / total)


def auc(y_true: Any, score: Any) -> float:
    """ROC AUC (NaN when only one class is present)."""
    y, s = _arrays(y_true, score)
    if y.min() == y.max():
        return float("nan")
    return float(roc_auc_score(y, s))


def base_rate(y_true: Any) -> float:
    """Share of positives."""
    y = np.asarray(y_true, dtype=np.float64).ravel()
    if y.size == 0:
        raise ValueError("empty input")
    return float(y.mean())


def evaluate_scores(
    y_true: Any, score: Any, k_percent: Sequence[float] = DEFAULT_K_PERCENT
) -> dict[str, Any]:
    """All metrics as a JSON-ready dict: ``precision_at_<k>``, ``recall_at_<k>``, ``auc``, ``base_rate``,
    ``n`` and ``k_percent`` (keys use ``int(k)`` when ``k`` is whole, e.g. ``precision_at_5``)."""
    y, s = _arrays(y_true, score)
    out: dict[str, Any] = {}
    for k in k_percent:
        tag = str(int(k)) if float(k).is_integer() else str(k).replace(".", "_")
        out[f"precision_at_{tag}"] = precision_at_k(y, s, k)
    for k in k_percent:
        tag = str(int(k)) if float(k).is_integer() else str(k).replace(".", "_")
        out[f"recall_at_{tag}"] = recall_at_k(y, s, k)
    out["auc"] = auc(y, s)
    out["base_rate"] = base_rate(y)
    out["n"] = int(y.size)
    out["k_percent"] = [int(k) if float(k).is_integer() else float(k) for k in k_percent]
    return out

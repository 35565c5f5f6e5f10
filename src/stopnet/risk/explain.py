"""Exact SHAP contributions of a LightGBM model for many rows, by per-tree tables.

LightGBM's ``predict(pred_contrib=True)`` (TreeSHAP) is costly per row even for the consignment model's
small trees: explaining the consignments selected out of a large file was a sizeable share of a scoring
run (figures: docs/benchmarks.md). But TreeSHAP's result for one tree depends on a row only through the
branch the row takes at each of the tree's splits (its *decision code*: one bit per split), so rows with
the same code get the same contributions from that tree, and a tree with ``s`` splits has at most
``2**s`` codes (64 for 7 leaves) whatever the number of rows. :class:`ContributionTables` computes each
row's code with numpy (LightGBM's own decision rules, missing values and categorical splits included),
asks LightGBM for the contributions of one representative row per code and tree
(``start_iteration``/``num_iteration``) the first time the code is seen, keeps them in a table per tree
(the model does not change), and adds up each row's table entries.

The result equals ``booster.predict(x, pred_contrib=True)`` up to the order of the floating-point sums.
Every call also checks its decision codes against LightGBM: the leaf each code leads to must be the leaf
LightGBM's ``pred_leaf`` reports for that row and tree; on any difference (or for models it does not
cover: several trees per iteration, trees of more than 12 splits) it returns LightGBM's own
``pred_contrib``. Pure numpy + LightGBM: no web or database imports.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ContributionTables"]

log = logging.getLogger(__name__)

_ZERO = 1e-35  # LightGBM's kZeroThreshold: smaller magnitudes are read as 0
_MISSING = {"None": 0, "Zero": 1, "NaN": 2}
_MAX_SPLITS = 12  # tables of 2**12 codes at most per tree


@dataclass(frozen=True)
class _Tree:
    feature: np.ndarray  # per split: the feature it tests
    threshold: np.ndarray  # numerical splits: go left when value <= threshold
    categorical: np.ndarray  # per split: a categorical split (go left when the code is in ``cats``)
    cats: tuple[np.ndarray, ...]  # categorical splits: a boolean mask by (whole, >= 0) category code
    default_left: np.ndarray
    missing: np.ndarray  # 0 None, 1 Zero, 2 NaN
    left: np.ndarray  # child of each split: a split index >= 0, or ~leaf index
    right: np.ndarray
    leaf_of: np.ndarray  # by decision code: the leaf it leads to
    table: np.ndarray  # by decision code: its contributions, once known
    known: np.ndarray  # by decision code: whether ``table`` holds it yet


def _parse(node: dict[str, Any], n_splits: int, width: int) -> _Tree:
    feature = np.zeros(n_splits, dtype=np.int64)
    threshold = np.zeros(n_splits, dtype=np.float64)
    categorical = np.zeros(n_splits, dtype=bool)
    cats: list[np.ndarray] = [np.zeros(0, dtype=bool)] * n_splits  # numerical splits: unused
    default_left = np.zeros(n_splits, dtype=bool)
    missing = np.zeros(n_splits, dtype=np.int8)
    left = np.zeros(n_splits, dtype=np.int64)
    right = np.zeros(n_splits, dtype=np.int64)

    def child(c: dict[str, Any]) -> int:
        return int(c["split_index"]) if "split_index" in c else ~int(c["leaf_index"])

    stack = [node] if "split_index" in node else []
    while stack:
        nd = stack.pop()
        k = int(nd["split_index"])
        feature[k] = int(nd["split_feature"])
        default_left[k] = bool(nd["default_left"])
        missing[k] = _MISSING[str(nd["missing_type"])]
        if nd["decision_type"] == "==":
            categorical[k] = True
            codes = [int(c) for c in str(nd["threshold"]).split("||")]
            cats[k] = np.zeros(max(codes) + 1, dtype=bool)
            cats[k][codes] = True
        else:
            threshold[k] = float(nd["threshold"])
        left[k], right[k] = child(nd["left_child"]), child(nd["right_child"])
        stack += [c for c in (nd["left_child"], nd["right_child"]) if "split_index" in c]
    table = np.zeros((1 << n_splits, width), dtype=np.float64)
    known = np.zeros(1 << n_splits, dtype=bool)
    leaf_of = _leaves(left, right, n_splits)
    return _Tree(
        feature,
        threshold,
        categorical,
        tuple(cats),
        default_left,
        missing,
        left,
        right,
        leaf_of,
        table,
        known,
    )


def _leaves(left: np.ndarray, right: np.ndarray, n_splits: int) -> np.ndarray:
    """The leaf every decision code leads to from the root."""
    if n_splits == 0:
        return np.zeros(1, dtype=np.int64)
    code = np.arange(1 << n_splits, dtype=np.int64)
    node = np.zeros(code.shape[0], dtype=np.int64)
    active = np.ones(code.shape[0], dtype=bool)
    while active.any():
        k = node[active]
        bit = (code[active] >> k) & 1
        node[active] = np.where(bit == 1, left[k], right[k])
        active = node >= 0
    return ~node


class ContributionTables:
    """``booster.predict(x, pred_contrib=True)`` for a binary LightGBM model, computed per distinct
    decision code (see the module docstring); ``contributions(x)`` has the same shape and values."""

    def __init__(self, booster: Any) -> None:
        import lightgbm as lgb

        self.booster = booster
        # LightGBM keeps a prediction's iteration range in the booster itself, so a prediction of
        # one tree (``start_iteration``) must never run beside another prediction on the same booster:
        # the tables use a copy of their own, one call at a time (``_lock``)
        self._own = lgb.Booster(model_str=booster.model_to_string())
        dump = booster.dump_model()
        self.n_features = int(dump["max_feature_idx"]) + 1
        self.supported = int(dump.get("num_tree_per_iteration", 1)) == 1
        self.trees: list[_Tree] = []
        self._lock = threading.Lock()
        for info in dump["tree_info"]:
            n_splits = int(info["num_leaves"]) - 1
            if n_splits > _MAX_SPLITS:
                self.supported = False
                break
            self.trees.append(_parse(info["tree_structure"], n_splits, self.n_features + 1))

    def __getstate__(self) -> dict[str, Any]:  # picklable (Dask workers): the lock is rebuilt
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _exact(self, x: np.ndarray, num_threads: int) -> np.ndarray:
        return np.asarray(self.booster.predict(x, pred_contrib=True, num_threads=num_threads))

    def contributions(self, x: np.ndarray, num_threads: int = 1) -> np.ndarray:
        n = x.shape[0]
        if n == 0 or not self.supported or n < 64:  # few rows: LightGBM is as quick
            return self._exact(x, num_threads)
        x = np.where(np.abs(x) <= _ZERO, 0.0, x)  # what LightGBM reads (NaN stays NaN)
        out = np.zeros((n, self.n_features + 1), dtype=np.float64)
        with self._lock:
            leaves = np.asarray(self._own.predict(x, pred_leaf=True, num_threads=num_threads), dtype=np.int64)
            for t, tree in enumerate(self.trees):
                code = self._codes(tree, x)
                if not np.array_equal(tree.leaf_of[code], leaves[:, t]):
                    log.warning(
                        "decision codes disagree with LightGBM on tree %d: exact SHAP for all rows", t
                    )
                    return self._exact(x, num_threads)
                self._fill(t, tree, x, code)
                out += tree.table[code]
        return out

    def _fill(self, t: int, tree: _Tree, x: np.ndarray, code: np.ndarray) -> None:
        """Put the codes of ``code`` not in the tree's table yet into it (LightGBM, one row per code;
        under ``_lock``)."""
        size = tree.known.shape[0]
        new = np.flatnonzero((np.bincount(code, minlength=size) > 0) & ~tree.known)
        if new.shape[0] == 0:
            return
        first = np.full(size, -1, dtype=np.int64)
        first[code[::-1]] = np.arange(code.shape[0] - 1, -1, -1)  # first row of each code
        rows = x[first[new]]
        values = self._own.predict(rows, pred_contrib=True, start_iteration=t, num_iteration=1)
        tree.table[new] = np.asarray(values, dtype=np.float64)
        tree.known[new] = True

    @staticmethod
    def _codes(tree: _Tree, x: np.ndarray) -> np.ndarray:
        """One bit per split: 1 where the row goes left (LightGBM's Numerical/CategoricalDecision)."""
        code = np.zeros(x.shape[0], dtype=np.int64)
        for k in range(tree.feature.shape[0]):
            v = x[:, tree.feature[k]]
            nan = np.isnan(v)
            if tree.categorical[k]:
                mask = tree.cats[k]
                whole = np.trunc(np.where(nan, -1.0, v))
                inside = (whole >= 0) & (whole < mask.shape[0])
                go_left = inside & mask[np.where(inside, whole, 0).astype(np.int64)]
            else:
                missing = tree.missing[k]
                if missing == 2:  # NaN is the missing value: its default direction
                    with np.errstate(invalid="ignore"):
                        go_left = np.where(nan, tree.default_left[k], v <= tree.threshold[k])
                else:  # NaN is read as 0 (and 0 is the missing value with missing type Zero)
                    v = np.where(nan, 0.0, v)
                    go_left = v <= tree.threshold[k]
                    if missing == 1:
                        go_left = np.where(np.abs(v) <= _ZERO, tree.default_left[k], go_left)
            code |= go_left.astype(np.int64) << k
        return code

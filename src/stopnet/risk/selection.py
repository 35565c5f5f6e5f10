"""Choosing which consignments to inspect within capacity, and assigning lanes.

Order of selection inside each capacity group (the whole stream, or each day / office / day x office):

1. an **exploration** budget (``exploration_share`` of the group's capacity, allocated across groups
   by largest remainder so the overall share is honoured) is reserved;
2. the rest of the capacity goes to **rule hits** whose rules weigh at least
   ``rule_priority_min_weight``, highest summed weight first, then highest score;
3. then to the highest **model scores**;
4. the exploration budget is filled by weighted sampling without replacement among the rows not yet
   selected, favouring rows where the model is unsure (weight ``p(1-p) + floor``), or by Thompson-style
   sampling from a Beta around the score, or uniformly at random;
5. any capacity left (a group with too few candidates of one kind) is filled by score.

Ties are broken by row position, and all randomness is a counter-based hash of (seed, row index)
(:func:`uniform_from_index`), so the result is deterministic for a seed and independent of how the
rows were scored (locally, in chunks, or on a Dask cluster). The capacity is never exceeded.

Lanes: ``RED`` = selected; ``AMBER`` = not selected but score >= ``alert_threshold`` or hit by a rule;
``GREEN`` = the rest.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import polars as pl

from stopnet.risk.rules import any_hit, weighted_hits

__all__ = [
    "LANES",
    "REASONS",
    "Capacity",
    "Selection",
    "exploration_keys",
    "group_codes",
    "group_index",
    "merge_group_index",
    "ranking_scores",
    "rule_priority",
    "select_for_inspection",
    "top_k_per_group",
    "uniform_from_index",
]

#: Lane labels, indexed by the lane code in :attr:`Selection.lane`.
LANES: tuple[str, str, str] = ("GREEN", "AMBER", "RED")
GREEN, AMBER, RED = 0, 1, 2
#: Selection reasons, indexed by :attr:`Selection.reason` (0 = not selected).
REASONS: tuple[str | None, ...] = (None, "RULE", "SCORE", "EXPLORE")
_RULE, _SCORE, _EXPLORE = 1, 2, 3

_GROUP_KEYS = ("day", "office")
_UNSCORED = -1e300
_CAP_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*((?:/\s*(?:day|office)\s*)*)$", re.IGNORECASE)


@dataclass(frozen=True)
class Capacity:
    """How many consignments can be inspected.

    Exactly one of ``count`` (consignments) or ``share`` (fraction of the rows, 0..1) is set. ``per``
    names the grouping the limit applies to: ``()`` for the whole input, ``("day",)``,
    ``("office",)`` or ``("day", "office")``. ``office_counts`` overrides the count for given offices
    (per group that belongs to the office). Share limits are rounded down: capacity is never exceeded.
    """

    count: int | None = None
    share: float | None = None
    per: tuple[str, ...] = ()
    office_counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.count is None) == (self.share is None):
            raise ValueError("capacity needs exactly one of count or share")
        if self.count is not None and (not isinstance(self.count, (int, np.integer)) or self.count < 0):
            raise ValueError("capacity count must be a non-negative integer")
        if self.share is not None and not (0.0 <= float(self.share) <= 1.0):
            raise ValueError("capacity share must be between 0 and 1")
        bad = [p for p in self.per if p not in _GROUP_KEYS]
        if bad or len(set(self.per)) != len(self.per):
            raise ValueError(f"capacity 'per' must be a subset of {_GROUP_KEYS}, got {self.per}")
        if self.office_counts and "office" not in self.per:
            raise ValueError("office_counts needs per to include 'office'")
        for office, cnt in self.office_counts.items():
            if int(cnt) < 0:
                raise ValueError(f"office capacity for {office!r} must be >= 0")

    @classmethod
    def parse(cls, text: str | int | float | Capacity) -> Capacity:
        """``"1%"``, ``"0.5%/day"``, ``"200"``, ``"50/day/office"``, an int (count) or a float < 1 (share)."""
        if isinstance(text, Capacity):
            return text
        if isinstance(text, bool):
            raise ValueError("capacity must be a count, a share or a string like '1%'")
        if isinstance(text, (int, np.integer)):
            return cls(count=int(text))
        if isinstance(text, float):
            if text < 1.0:
                return cls(share=text)
            if text.is_integer():
                return cls(count=int(text))
            raise ValueError(f"invalid capacity {text!r}")
        m = _CAP_RE.match(str(text))
        if not m:
            raise ValueError(
                f"invalid capacity {text!r}: use a count ('500'), a percentage ('1%') and optionally "
                "'/day', '/office' or '/day/office'"
            )
        number, pct, per_text = m.group(1), m.group(2), m.group(3)
        per = tuple(p.strip().lower() for p in per_text.split("/") if p.strip())
        per = tuple(k for k in _GROUP_KEYS if k in per)  # canonical order
        if pct:
            return cls(share=float(number) / 100.0, per=per)
        if "." in number:
            raise ValueError(f"invalid capacity {text!r}: a count must be a whole number")
        return cls(count=int(number), per=per)

    def limits(
        self, group_sizes: np.ndarray, group_offices: Sequence[str | None] | None = None
    ) -> np.ndarray:
        """Capacity of each group (never more than its size)."""
        sizes = np.asarray(group_sizes, dtype=np.int64)
        if self.count is not None:
            lim = np.full(sizes.shape, int(self.count), dtype=np.int64)
            if self.office_counts and group_offices is not None:
                for g, office in enumerate(group_offices):
                    if office is not None and office in self.office_counts:
                        lim[g] = int(self.office_counts[office])
        else:
            # small epsilon so that e.g. 0.07 * 100 (= 7.000000000000001 or 6.999999999999999) gives 7
            lim = np.floor(sizes * float(self.share or 0.0) + 1e-9).astype(np.int64)
            if self.office_counts and group_offices is not None:
                for g, office in enumerate(group_offices):
                    if office is not None and office in self.office_counts:
                        lim[g] = int(self.office_counts[office])
        return np.minimum(lim, sizes)

    def describe(self) -> str:
        amount = f"{self.count}" if self.count is not None else f"{(self.share or 0) * 100:g}%"
        return amount + "".join("/" + p for p in self.per)


@dataclass
class Selection:
    """Result of :func:`select_for_inspection` (arrays aligned with the input rows)."""

    selected: np.ndarray  # bool
    lane: np.ndarray  # int8 index into LANES
    reason: np.ndarray  # int8 index into REASONS
    group: np.ndarray  # int32 capacity group of each row
    group_capacity: np.ndarray  # int64 capacity of each group

    @property
    def n_selected(self) -> int:
        return int(self.selected.sum())

    def lane_series(self, name: str = "lane") -> pl.Series:
        return pl.Series(name, np.asarray(LANES, dtype=object)[self.lane], dtype=pl.String).cast(
            pl.Enum(list(LANES))
        )

    def reason_series(self, name: str = "selection_reason") -> pl.Series:
        labels = pl.Series([None, "RULE", "SCORE", "EXPLORE"], dtype=pl.String)
        return labels.gather(self.reason.astype(np.int64)).alias(name)


def group_codes(keys: pl.DataFrame | None, n: int) -> tuple[np.ndarray, list[tuple[object, ...]]]:
    """Integer group code per row (groups sorted by key values) and the key tuple of each group."""
    if keys is None or keys.width == 0:
        return np.zeros(n, dtype=np.int32), [()]
    if keys.height != n:
        raise ValueError(f"group keys have {keys.height} rows, scores have {n}")
    codes, uniques = group_index(keys)
    return codes, [tuple(r) for r in uniques.iter_rows()]


def group_index(keys: pl.DataFrame) -> tuple[np.ndarray, pl.DataFrame]:
    """:func:`group_codes` with the groups' keys as a frame (row ``g`` = the keys of group ``g``)."""
    uniques = keys.unique().sort(keys.columns, nulls_last=True).with_row_index("__g")
    codes = keys.join(uniques, on=keys.columns, how="left", nulls_equal=True, maintain_order="left")
    return codes.get_column("__g").cast(pl.Int32).to_numpy(), uniques.drop("__g")


def merge_group_index(
    parts: Sequence[tuple[np.ndarray, pl.DataFrame]],
) -> tuple[np.ndarray, list[tuple[object, ...]]]:
    """:func:`group_codes` of the concatenated rows of several parts, from each part's
    :func:`group_index`: the same codes and keys, computed on the parts' few distinct keys instead of
    hashing every row again (the chunks of :func:`stopnet.risk.pipeline.score_file`)."""
    if not parts:
        return np.zeros(0, dtype=np.int32), [()]
    columns = parts[0][1].columns
    merged = pl.concat([keys for _, keys in parts]).unique().sort(columns, nulls_last=True)
    merged = merged.with_row_index("__g")
    codes = []
    for local, keys in parts:
        lookup = keys.join(merged, on=columns, how="left", nulls_equal=True, maintain_order="left")
        codes.append(lookup.get_column("__g").cast(pl.Int32).to_numpy()[local])
    return np.concatenate(codes), [tuple(r) for r in merged.drop("__g").iter_rows()]


def uniform_from_index(row_index: np.ndarray, seed: int, stream: int = 0) -> np.ndarray:
    """Counter-based uniforms in [0, 1): a SplitMix64 hash of (seed, stream, row index).

    The value for a row depends only on its index, so chunks scored anywhere agree with a whole-file run.
    """
    mask = (1 << 64) - 1
    mix = np.uint64(
        (int(seed) * 0xD1B54A32D192ED03 + int(stream) * 0x8CB92BA72F3D8DD7 + 0x632BE59BD9B4E019) & mask
    )
    x = np.asarray(row_index).astype(np.uint64)  # a copy, modified in place below
    tmp = np.empty_like(x)
    with np.errstate(over="ignore"):
        np.multiply(x, np.uint64(0x9E3779B97F4A7C15), out=x)
        np.add(x, mix, out=x)
        for shift, mult in ((30, 0xBF58476D1CE4E5B9), (27, 0x94D049BB133111EB)):
            np.right_shift(x, np.uint64(shift), out=tmp)
            np.bitwise_xor(x, tmp, out=x)
            np.multiply(x, np.uint64(mult), out=x)
        np.right_shift(x, np.uint64(31), out=tmp)
        np.bitwise_xor(x, tmp, out=x)
        np.right_shift(x, np.uint64(11), out=x)
    out = x.astype(np.float64)
    out *= 1.0 / (1 << 53)
    return out


def exploration_keys(
    scores: np.ndarray,
    row_index: np.ndarray,
    method: str = "uncertainty",
    seed: int = 0,
    floor: float = 0.01,
) -> np.ndarray:
    """Priority keys for exploration (larger = explored first), deterministic per (seed, row).

    ``uncertainty``: weighted sampling without replacement (Efraimidis-Spirakis) with weight
    ``p(1-p) + floor``; ``thompson``: a draw from a normal approximation of Beta around the score
    (concentration 20); ``random``: uniform.
    """
    if method not in ("uncertainty", "thompson", "random"):
        raise ValueError(f"unknown exploration method {method!r}")
    u = uniform_from_index(row_index, seed, 0)
    if method == "random":
        return u
    q = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.5)
    np.clip(q, 0.0, 1.0, out=q)
    if method == "thompson":
        u2 = uniform_from_index(row_index, seed, 1)
        z = np.sqrt(-2.0 * np.log(np.maximum(u, 1e-300))) * np.cos(2.0 * np.pi * u2)
        conc = 20.0
        return q + z * np.sqrt(q * (1.0 - q) / (conc + 1.0) + 1e-4)
    weight = 1.0 - q
    weight *= q
    weight += max(floor, 1e-12)
    np.maximum(u, 1e-300, out=u)
    np.log(u, out=u)
    u /= weight
    return u


def ranking_scores(scores: np.ndarray) -> np.ndarray:
    """Scores used for ranking: NaN (unscored) ranks below every real score."""
    p = np.asarray(scores, dtype=np.float64)
    return np.where(np.isnan(p), _UNSCORED, p)


def rule_priority(
    rule_hits: np.ndarray | None,
    rule_weights: np.ndarray | Sequence[float] | None,
    n: int,
    min_weight: float = 1.0,
) -> np.ndarray:
    """The summed weight of the priority rules (weighing at least ``min_weight``) each row hit."""
    if rule_hits is None or not rule_hits.size:
        return np.zeros(n, dtype=np.float64)
    hits = np.asarray(rule_hits, dtype=bool).reshape(n, -1)
    w = np.asarray(rule_weights if rule_weights is not None else np.ones(hits.shape[1]), dtype=np.float64)
    if w.shape[0] != hits.shape[1]:
        raise ValueError("rule_weights must have one weight per rule_hits column")
    return weighted_hits(hits, w, min_weight)


def top_k_per_group(values: np.ndarray, k: int, group: np.ndarray | None = None) -> np.ndarray:
    """Positions of the ``k`` largest values of each group (ties: lowest position first), sorted.

    ``group`` holds non-negative integer codes (:func:`group_codes`). Rows are bucketed by a stable
    sort of the codes and each bucket is partitioned on its own (:func:`_top_k_unordered`), rather than
    one lexicographic sort of every row by (group, value, position): about five times faster on a
    million rows. The positions come out of a mask, already sorted, so the chosen rows are never
    ranked among themselves."""
    n = values.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    chosen = np.zeros(n, dtype=bool)
    if group is None:
        chosen[_top_k_unordered(values, k)] = True
    else:
        order = np.argsort(group, kind="stable")  # within a group, positions stay ascending
        bounds = np.concatenate([[0], np.cumsum(np.bincount(group))])
        for lo, hi in itertools.pairwise(bounds.tolist()):
            if hi > lo:
                members = order[lo:hi]
                chosen[members[_top_k_unordered(values[members], k)]] = True
    return np.flatnonzero(chosen).astype(np.int64, copy=False)


def _top_k_unordered(values: np.ndarray, k: int) -> np.ndarray:
    """The positions :func:`_top_k` returns, in no particular order (no ranking of the chosen rows)."""
    n = values.shape[0]
    if k >= n:
        return np.arange(n)
    kth = np.partition(values, n - k)[n - k]
    above = np.flatnonzero(values > kth)
    ties = np.flatnonzero(values == kth)[: k - above.shape[0]]
    return np.concatenate([above, ties])


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Positions of the ``k`` largest ``values`` (ties: lowest position first), in that order."""
    n = values.shape[0]
    if k <= 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        return np.lexsort((np.arange(n), -values))
    chosen = _top_k_unordered(values, k)
    return chosen[np.lexsort((chosen, -values[chosen]))]


def _select_group(
    prio_w: np.ndarray, ranked: np.ndarray, explore_key: np.ndarray, budget: int, explore: int, limit: int
) -> tuple[np.ndarray, np.ndarray]:
    m = ranked.shape[0]
    sel = np.zeros(m, dtype=bool)
    why = np.zeros(m, dtype=np.int8)
    # 1) rule hits with priority weight, highest weight then score first
    rule_pos = np.flatnonzero(prio_w > 0)
    if rule_pos.shape[0] and budget > 0:
        take = rule_pos[np.lexsort((rule_pos, -ranked[rule_pos], -prio_w[rule_pos]))[:budget]]
        sel[take] = True
        why[take] = _RULE
        budget -= take.shape[0]
    # 2) model score
    taken = int(sel.sum())
    budget = min(budget, m - taken)
    if budget > 0:
        take = _top_k(np.where(sel, -np.inf, ranked) if taken else ranked, budget)
        sel[take] = True
        why[take] = _SCORE
        taken += take.shape[0]
    # 3) exploration among the rest
    explore = min(explore, m - taken)
    if explore > 0:
        take = _top_k(np.where(sel, -np.inf, explore_key), explore)
        sel[take] = True
        why[take] = _EXPLORE
        taken += take.shape[0]
    # 4) capacity left over (too few rule/score candidates) goes by score
    left = min(limit, m) - taken
    if left > 0:
        take = _top_k(np.where(sel, -np.inf, ranked), left)
        sel[take] = True
        why[take] = _SCORE
    return sel, why


def _allocate(total: int, quotas: np.ndarray, limits: np.ndarray) -> np.ndarray:
    """Largest-remainder integer allocation of ``total`` proportional to ``quotas`` within ``limits``."""
    base = np.minimum(np.floor(quotas + 1e-9).astype(np.int64), limits)
    left = total - int(base.sum())
    if left > 0:
        remainder = quotas - np.floor(quotas + 1e-9)
        order = np.lexsort((np.arange(quotas.shape[0]), -remainder))
        for g in order:
            if left <= 0:
                break
            if base[g] < limits[g]:
                base[g] += 1
                left -= 1
    return base


def select_for_inspection(
    scores: np.ndarray,
    capacity: Capacity | str | int | float,
    *,
    rule_hits: np.ndarray | None = None,
    rule_weights: np.ndarray | Sequence[float] | None = None,
    groups: pl.DataFrame | None = None,
    exploration_share: float = 0.1,
    exploration: Literal["uncertainty", "thompson", "random"] = "uncertainty",
    exploration_floor: float = 0.01,
    rule_priority_min_weight: float = 1.0,
    alert_threshold: float = 0.5,
    seed: int = 0,
    row_index: np.ndarray | None = None,
    explore_keys: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    group_index: tuple[np.ndarray, Sequence[tuple[object, ...]]] | None = None,
) -> Selection:
    """Choose rows to inspect; see the module docstring for the order of priorities.

    ``scores`` are model probabilities (NaN = unscored, ranked last). ``rule_hits`` is a boolean
    ``(n, n_rules)`` matrix with ``rule_weights``. ``groups`` holds one row per score with the
    columns named in ``capacity.per`` (``day`` as a date or integer, ``office`` as text).
    ``row_index`` (default ``0..n-1``) feeds the counter-based random draws, so that a subset scored
    elsewhere can compute the same exploration keys (:func:`exploration_keys`). ``explore_keys``, when
    given, are those keys already computed (by chunks, with the same method, seed and floor).

    ``candidates`` (sorted row positions), when given, must hold every row the selection could choose:
    in each capacity group, the rows with the top ``limit`` scores, the top ``limit`` exploration keys
    and every priority rule hit (what :func:`stopnet.risk.pipeline.score_chunk` keeps of a chunk, with
    ``limit`` the largest group capacity, holds that for the whole file). Only those rows are then
    ranked, which gives the same selection far faster; limits and lanes still count every row.

    ``group_index``, instead of ``groups``: each row's group code and the key tuple of each group, as
    :func:`group_codes` of the ``capacity.per`` columns gives them (groups sorted by their keys, which
    sets the order in which remainders are allocated), e.g. from :func:`merge_group_index`.
    """
    cap = Capacity.parse(capacity)
    p = np.asarray(scores, dtype=np.float64)
    n = p.shape[0]
    if not 0.0 <= exploration_share <= 1.0:
        raise ValueError("exploration_share must be between 0 and 1")
    if exploration not in ("uncertainty", "thompson", "random"):
        raise ValueError(f"unknown exploration method {exploration!r}")
    hits_all = None if rule_hits is None or not rule_hits.size else np.asarray(rule_hits, bool).reshape(n, -1)
    sub: np.ndarray | None = None
    if candidates is not None:
        cand = np.asarray(candidates, dtype=np.int64)
        if cand.ndim != 1 or (cand.shape[0] and (cand[0] < 0 or cand[-1] >= n or np.any(np.diff(cand) <= 0))):
            raise ValueError("candidates must be sorted, distinct row positions")
        sub = cand

    # groups
    if cap.per and group_index is not None:
        group = np.asarray(group_index[0], dtype=np.int32)
        keys = list(group_index[1])
        if group.shape != (n,) or (n and (group.min() < 0 or group.max() >= len(keys))):
            raise ValueError("group_index needs one code per score, each below the number of groups")
    elif cap.per:
        if groups is None:
            raise ValueError(f"capacity per {'/'.join(cap.per)} needs the group columns {cap.per}")
        missing = [c for c in cap.per if c not in groups.columns]
        if missing:
            raise ValueError(f"group column(s) missing: {missing}")
        group, keys = group_codes(groups.select(list(cap.per)), n)
    else:
        group, keys = group_codes(None, n)
    n_groups = len(keys)
    sizes = np.bincount(group, minlength=n_groups).astype(np.int64) if n_groups > 1 else np.array([n])
    offices: list[str | None] | None = None
    if "office" in cap.per:
        pos = cap.per.index("office")
        offices = [None if k[pos] is None else str(k[pos]) for k in keys]
    limits = cap.limits(sizes, offices)
    explore_budget = _allocate(
        round(float(limits.sum()) * exploration_share), limits.astype(np.float64) * exploration_share, limits
    )
    exploit_budget = limits - explore_budget

    # randomness is a function of (seed, row index): independent of chunking and grouping
    if row_index is None:
        idx = np.arange(n, dtype=np.int64) if sub is None else sub
    else:
        idx = np.asarray(row_index, dtype=np.int64)
        if idx.shape[0] != n:
            raise ValueError("row_index must have one entry per score")
        idx = idx if sub is None else idx[sub]
    if explore_keys is not None and explore_keys.shape != (n,):
        raise ValueError("explore_keys must have one entry per score")

    # the rows ranked: every row, or only the candidates (positions ``sub`` of the whole)
    p_r = p if sub is None else p[sub]
    hits_r = hits_all if hits_all is None or sub is None else hits_all[sub]
    prio_w = rule_priority(hits_r, rule_weights, p_r.shape[0], rule_priority_min_weight)
    ranked = ranking_scores(p_r)
    group_r = group if sub is None else group[sub]
    if explore_keys is None:
        explore_key = exploration_keys(p_r, idx, exploration, seed, exploration_floor)
    else:
        explore_key = explore_keys if sub is None else explore_keys[sub]

    m = p_r.shape[0]
    sel_r = np.zeros(m, dtype=bool)
    reason_r = np.zeros(m, dtype=np.int8)
    if n_groups == 1:
        members_list: list[np.ndarray | None] = [None]
    else:
        order = np.argsort(group_r, kind="stable")
        bounds = np.concatenate([[0], np.cumsum(np.bincount(group_r, minlength=n_groups))])
        members_list = [order[bounds[g] : bounds[g + 1]] for g in range(n_groups)]
    for g, members in enumerate(members_list):
        if limits[g] <= 0 or sizes[g] == 0 or (members is not None and members.shape[0] == 0):
            continue
        sel, why = _select_group(
            prio_w if members is None else prio_w[members],
            ranked if members is None else ranked[members],
            explore_key if members is None else explore_key[members],
            int(exploit_budget[g]),
            int(explore_budget[g]),
            int(limits[g]),
        )
        if members is None:
            sel_r, reason_r = sel, why
        else:
            sel_r[members] = sel
            reason_r[members] = why
    if sub is None:
        selected, reason = sel_r, reason_r
    else:
        selected = np.zeros(n, dtype=bool)
        reason = np.zeros(n, dtype=np.int8)
        selected[sub] = sel_r
        reason[sub] = reason_r

    alert = p >= alert_threshold  # NaN (unscored) compares False
    if hits_all is not None:
        alert |= any_hit(hits_all)
    lane = np.where(alert, np.int8(AMBER), np.int8(GREEN))
    lane[selected if sub is None else sub[sel_r]] = RED
    return Selection(
        selected=selected,
        lane=lane,
        reason=reason,
        group=group,
        group_capacity=limits,
    )

"""Selection within capacity: limits, groups, rules first, exploration, lanes, determinism."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stopnet.risk.selection import (
    LANES,
    REASONS,
    Capacity,
    exploration_keys,
    group_codes,
    group_index,
    merge_group_index,
    select_for_inspection,
    top_k_per_group,
    uniform_from_index,
)


def _data(n: int, seed: int = 0) -> tuple[np.ndarray, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    scores = rng.beta(0.6, 12, n)
    groups = pl.DataFrame(
        {
            "day": [dt.date(2026, 1, 1) + dt.timedelta(days=int(d)) for d in rng.integers(0, 5, n)],
            "office": rng.choice(["FRCDG01", "DEFRA01", "NLAMS01"], n).tolist(),
        }
    )
    return scores, groups


def test_capacity_parse() -> None:
    assert Capacity.parse("1%") == Capacity(share=0.01)
    assert Capacity.parse("0.5%/day") == Capacity(share=0.005, per=("day",))
    assert Capacity.parse("200") == Capacity(count=200)
    assert Capacity.parse("50/office/day") == Capacity(count=50, per=("day", "office"))
    assert Capacity.parse(300) == Capacity(count=300)
    assert Capacity.parse(0.02) == Capacity(share=0.02)
    for bad in ("", "1.5", "abc", "5%/week", "-3", "101%"):
        with pytest.raises(ValueError):
            Capacity.parse(bad)
    with pytest.raises(ValueError, match="office_counts needs"):
        Capacity(count=3, office_counts={"X": 1})
    assert Capacity.parse("2%/day/office").describe() == "2%/day/office"


@pytest.mark.parametrize(
    "capacity", ["1%", "37", "2%/day", "5/day", "3%/office", "4/day/office", "0", "100%"]
)
def test_never_exceeds_capacity(capacity: str) -> None:
    scores, groups = _data(5000)
    hits = np.random.default_rng(1).random((5000, 2)) < 0.05
    sel = select_for_inspection(
        scores,
        capacity,
        rule_hits=hits,
        rule_weights=[3.0, 1.0],
        groups=groups,
        exploration_share=0.2,
        seed=3,
    )
    cap = Capacity.parse(capacity)
    n_sel = sel.n_selected
    if not cap.per:
        limit = cap.count if cap.count is not None else int(np.floor((cap.share or 0.0) * 5000 + 1e-9))
        assert n_sel == min(limit, 5000)
    else:
        frame = groups.with_columns(pl.Series("sel", sel.selected))
        per = frame.group_by(list(cap.per)).agg(pl.len().alias("n"), pl.col("sel").sum().alias("k"))
        for row in per.iter_rows(named=True):
            limit = (
                cap.count if cap.count is not None else int(np.floor((cap.share or 0.0) * row["n"] + 1e-9))
            )
            assert row["k"] == min(limit, row["n"]), row
    assert (sel.lane == LANES.index("RED")).sum() == n_sel
    assert ((sel.reason > 0) == sel.selected).all()


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 400),
    count=st.integers(0, 50),
    share=st.floats(0, 1),
    per=st.sampled_from([(), ("day",), ("office",), ("day", "office")]),
    use_share=st.booleans(),
    explore=st.floats(0, 1),
    seed=st.integers(0, 10),
)
def test_capacity_property(
    n: int, count: int, share: float, per: tuple[str, ...], use_share: bool, explore: float, seed: int
) -> None:
    scores, groups = _data(n, seed)
    cap = Capacity(share=share, per=per) if use_share else Capacity(count=count, per=per)
    sel = select_for_inspection(
        scores, cap, groups=groups if per else None, exploration_share=explore, seed=seed
    )
    assert sel.selected.shape == (n,)
    total_limit = int(sel.group_capacity.sum())
    assert sel.n_selected == total_limit  # fills exactly the capacity...
    for g, limit in enumerate(sel.group_capacity):  # ...and never more in any group
        assert sel.selected[sel.group == g].sum() <= limit


def test_per_office_capacity_with_overrides() -> None:
    scores, groups = _data(3000)
    cap = Capacity(count=20, per=("office",), office_counts={"FRCDG01": 5, "NLAMS01": 0})
    sel = select_for_inspection(scores, cap, groups=groups, exploration_share=0.1, seed=0)
    offices = np.asarray(groups["office"].to_list())
    assert sel.selected[offices == "FRCDG01"].sum() == 5
    assert sel.selected[offices == "NLAMS01"].sum() == 0
    assert sel.selected[offices == "DEFRA01"].sum() == 20
    with pytest.raises(ValueError, match="needs the group columns"):
        select_for_inspection(scores, cap)


def test_rules_with_high_weight_come_first_then_scores() -> None:
    n = 1000
    scores = np.linspace(0.9, 0.0, n)  # row 0 has the best score
    hits = np.zeros((n, 2), dtype=bool)
    hits[[500, 600, 700], 0] = True  # heavy rule on low-scored rows
    hits[[800, 900], 1] = True  # light rule: not prioritised
    sel = select_for_inspection(
        scores,
        10,
        rule_hits=hits,
        rule_weights=[5.0, 0.5],
        exploration_share=0.0,
        rule_priority_min_weight=1.0,
    )
    chosen = set(np.flatnonzero(sel.selected).tolist())
    assert {500, 600, 700} <= chosen
    assert not ({800, 900} & chosen)
    assert chosen - {500, 600, 700} == set(range(7))  # then the 7 best scores
    assert REASONS[sel.reason[500]] == "RULE" and REASONS[sel.reason[0]] == "SCORE"
    # light-rule hits that were not selected are AMBER, as are high scores
    assert LANES[sel.lane[800]] == "AMBER"
    assert LANES[sel.lane[10]] == "AMBER"  # score 0.89 >= 0.5 alert threshold, not selected
    assert LANES[sel.lane[999]] == "GREEN"
    # more heavy hits than capacity: highest weight, then score
    hits2 = np.zeros((n, 2), dtype=bool)
    hits2[100:200, 0] = True
    hits2[150, 1] = True
    sel2 = select_for_inspection(scores, 5, rule_hits=hits2, rule_weights=[2.0, 2.0], exploration_share=0.0)
    assert np.flatnonzero(sel2.selected).tolist() == [100, 101, 102, 103, 150]


def test_exploration_share_is_honoured_and_targets_uncertain_rows() -> None:
    rng = np.random.default_rng(5)
    n = 20_000
    scores = rng.beta(0.5, 8, n)
    sel = select_for_inspection(scores, 1000, exploration_share=0.1, seed=1)
    explored = sel.reason == REASONS.index("EXPLORE")
    exploited = sel.reason == REASONS.index("SCORE")
    assert explored.sum() == 100 and exploited.sum() == 900
    # explored rows are below the exploitation cut and closer to 0.5 than a random row
    assert scores[explored].max() <= scores[exploited].min()
    uncertainty = scores * (1 - scores)
    assert uncertainty[explored].mean() > 1.5 * uncertainty[~sel.selected].mean()
    # exploration share across groups is honoured overall (largest remainder)
    groups = pl.DataFrame({"office": rng.choice(list("ABCDEFG"), n).tolist()})
    sel_g = select_for_inspection(scores, "5%/office", groups=groups, exploration_share=0.1, seed=1)
    total = int(sel_g.group_capacity.sum())
    assert (sel_g.reason == REASONS.index("EXPLORE")).sum() == round(total * 0.1)


@pytest.mark.parametrize("method", ["uncertainty", "thompson", "random"])
def test_deterministic_for_a_seed(method: str) -> None:
    scores, groups = _data(4000)
    args: dict[str, Any] = {"groups": groups, "exploration_share": 0.3, "exploration": method}
    a = select_for_inspection(scores, "3%/day", seed=7, **args)
    b = select_for_inspection(scores, "3%/day", seed=7, **args)
    c = select_for_inspection(scores, "3%/day", seed=8, **args)
    assert np.array_equal(a.selected, b.selected) and np.array_equal(a.lane, b.lane)
    assert not np.array_equal(a.selected, c.selected)
    assert a.n_selected == c.n_selected


def test_random_draws_depend_only_on_row_index() -> None:
    idx = np.arange(10_000)
    whole = uniform_from_index(idx, seed=3)
    assert ((whole >= 0) & (whole < 1)).all()
    assert abs(whole.mean() - 0.5) < 0.02
    assert np.array_equal(uniform_from_index(idx[4000:6000], seed=3), whole[4000:6000])
    assert not np.array_equal(uniform_from_index(idx, seed=4), whole)
    scores = np.random.default_rng(0).random(10_000)
    keys = exploration_keys(scores, idx, "uncertainty", 3)
    assert np.array_equal(exploration_keys(scores[10:20], idx[10:20], "uncertainty", 3), keys[10:20])


def test_exploration_keys_computed_by_chunks_select_the_same_rows() -> None:
    scores, groups = _data(6000, seed=4)
    idx = np.arange(scores.shape[0])
    chunks = [
        exploration_keys(scores[i : i + 2500], idx[i : i + 2500], "uncertainty", 5) for i in (0, 2500, 5000)
    ]
    args: dict[str, Any] = {"groups": groups, "exploration_share": 0.4, "seed": 5}
    whole = select_for_inspection(scores, "2%/day", **args)
    given_keys = select_for_inspection(scores, "2%/day", explore_keys=np.concatenate(chunks), **args)
    assert np.array_equal(whole.selected, given_keys.selected)
    assert np.array_equal(whole.reason, given_keys.reason)
    assert (whole.reason == 3).sum() > 0  # some rows were explored
    with pytest.raises(ValueError, match="one entry per score"):
        select_for_inspection(scores, "2%/day", explore_keys=chunks[0], **args)


def test_top_k_per_group_matches_brute_force() -> None:
    rng = np.random.default_rng(2)
    values = rng.integers(0, 5, 300).astype(float)  # many ties
    group = rng.integers(0, 4, 300)
    values[::29] = -np.inf
    group[group == 2] = 3  # a code without rows
    for k in (1, 7, 60, 300):  # the largest group has about 150 rows
        got = top_k_per_group(values, k, group)
        expected: list[int] = []
        for g in range(4):
            members = [i for i in range(300) if group[i] == g]
            members.sort(key=lambda i: (-values[i], i))
            expected += members[:k]
        assert got.tolist() == sorted(expected)
        assert got.dtype == np.int64
    assert top_k_per_group(values, 0, group).size == 0
    for k in (1, 7, 60, 299, 300, 400):  # no groups: the whole array is one
        ranked = sorted(range(300), key=lambda i: (-values[i], i))
        assert top_k_per_group(values, k).tolist() == sorted(ranked[:k])


def test_merged_chunk_groups_equal_the_groups_of_every_row() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    keys = pl.DataFrame(
        {
            "day": pl.Series(rng.integers(0, 9, n), dtype=pl.Int32),
            "office": pl.Series(rng.choice(["B", "A", "C", None], n).tolist(), dtype=pl.String),
        }
    )
    keys = keys.with_columns(pl.when(pl.int_range(n) < 1200).then(None).otherwise(pl.col("day")).alias("day"))
    whole_codes, whole_keys = group_codes(keys, n)
    bounds = [0, 700, 701, 3000, 5000]  # the first part has no day, the second one row
    parts = [group_index(keys[lo:hi]) for lo, hi in itertools.pairwise(bounds)]
    codes, merged = merge_group_index(parts)
    assert merged == whole_keys
    assert np.array_equal(codes, whole_codes)
    scores = rng.random(n)
    by_frame = select_for_inspection(scores, "3%/day/office", groups=keys, seed=1)
    by_index = select_for_inspection(scores, "3%/day/office", group_index=(codes, merged), seed=1)
    assert np.array_equal(by_frame.selected, by_index.selected)
    assert np.array_equal(by_frame.reason, by_index.reason)
    with pytest.raises(ValueError, match="one code per score"):
        select_for_inspection(scores[1:], "3%/day/office", group_index=(codes, merged))


def test_nan_scores_rank_last_and_lane_series() -> None:
    scores = np.array([np.nan, 0.2, 0.9, np.nan, 0.1])
    sel = select_for_inspection(scores, 2, exploration_share=0.0)
    assert np.flatnonzero(sel.selected).tolist() == [1, 2]
    assert sel.lane_series().to_list() == ["GREEN", "RED", "RED", "GREEN", "GREEN"]
    assert sel.reason_series().to_list() == [None, "SCORE", "SCORE", None, None]


def _chunk_candidates(
    scores: np.ndarray,
    group_frame: pl.DataFrame | None,
    prio: np.ndarray,
    bound: int,
    explore: bool,
    bounds: list[int],
    seed: int,
) -> np.ndarray:
    """Candidates as pipeline.score_chunk keeps them, chunk by chunk (groups coded per chunk)."""
    from stopnet.risk.selection import group_codes, ranking_scores

    out = []
    for lo, hi in itertools.pairwise(bounds):
        n = hi - lo
        local = group_codes(group_frame[lo:hi], n)[0] if group_frame is not None else None
        parts = [
            np.flatnonzero(prio[lo:hi] > 0),
            top_k_per_group(ranking_scores(scores[lo:hi]), bound, local),
        ]
        if explore:
            keys = exploration_keys(scores[lo:hi], np.arange(lo, hi), "uncertainty", seed)
            parts.append(top_k_per_group(keys, bound, local))
        out.append(np.unique(np.concatenate(parts)) + lo)
    return np.concatenate(out)


@pytest.mark.parametrize(
    ("capacity", "per"),
    [
        ("1%", ()),
        ("37", ()),
        ("3%/day", ("day",)),
        ("4/day/office", ("day", "office")),
        ("2%/office", ("office",)),
    ],
)
@pytest.mark.parametrize("share", [0.0, 0.3])
def test_ranking_only_the_candidates_selects_the_same_rows(
    capacity: str, per: tuple[str, ...], share: float
) -> None:
    scores, groups = _data(9000, seed=11)
    scores[::97] = np.nan  # unscored rows rank last
    scores[5::13] = np.round(scores[5::13], 2)  # ties
    rng = np.random.default_rng(3)
    hits = rng.random((9000, 3)) < [0.01, 0.004, 0.02]
    weights = np.array([2.0, 0.5, 1.0])
    cap = Capacity.parse(capacity)
    bound = int(cap.count) if cap.count is not None else int(np.floor(float(cap.share or 0) * 9000 + 1e-9))
    frame = groups.select(list(per)) if per else None
    prio = np.where(hits[:, 0], 2.0, 0.0) + np.where(hits[:, 2], 1.0, 0.0)
    cand = _chunk_candidates(scores, frame, prio, bound, share > 0, [0, 2000, 2001, 6500, 9000], 7)
    assert cand.shape[0] < 9000
    args: dict[str, Any] = {
        "rule_hits": hits,
        "rule_weights": weights,
        "groups": groups,
        "exploration_share": share,
        "seed": 7,
    }
    whole = select_for_inspection(scores, capacity, **args)
    ranked = select_for_inspection(scores, capacity, candidates=cand, **args)
    assert whole.n_selected > 0
    assert np.array_equal(whole.selected, ranked.selected)
    assert np.array_equal(whole.reason, ranked.reason)
    assert np.array_equal(whole.lane, ranked.lane)
    assert np.array_equal(whole.group_capacity, ranked.group_capacity)
    # a set that misses chosen rows gives another selection: the candidates are really what is ranked
    chosen = np.flatnonzero(whole.selected)
    short = np.setdiff1d(cand, chosen[: max(1, chosen.shape[0] // 2)])
    assert not np.array_equal(
        select_for_inspection(scores, capacity, candidates=short, **args).selected, whole.selected
    )
    with pytest.raises(ValueError, match="sorted, distinct"):
        select_for_inspection(scores, capacity, candidates=cand[::-1], **args)

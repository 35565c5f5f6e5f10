"""Emerging-trend detection: pure statistics (no database, no web), used by the dashboard's trends panel
and the risk proposals.

The question: which commodity categories, routes, brands or channels make up a larger share of the
seizures in the last days of an operation than they did earlier in the same operation?

Raw counts rise for everything while administrations join in, and fall at weekends, so each item is
compared with the *total activity* of the same days. For one item, let ``a`` be its seizures in the recent
window and ``b`` in the baseline window; ``A`` and ``B`` are all seizures in those windows. If the item's
share of activity did not change, then given ``n = a + b`` its recent count is binomial,
``a ~ Binomial(n, p0)`` with ``p0 = A / (A + B)``: this is the exact conditional test of two Poisson rates
with exposures ``A`` and ``B`` (the comparison of two Poisson counts by conditioning on their sum). The
p-value is the one-sided upper tail ``P(X >= a)`` (we look for rises only). The effect size is the rate
ratio ``(a / A) / (b / B)`` (0.5 added to ``a`` and ``b`` when either is zero).

Many items are tested at once, so p-values are adjusted with Benjamini–Hochberg (false discovery rate)
over every item tested, all dimensions together. An item is flagged when its adjusted p-value (q) is at
most ``alpha`` *and* its rate ratio is at least ``min_ratio`` (a significant but tiny rise is not news).
Items with fewer than ``min_total`` seizures in both windows together are not tested: the filter depends
on ``n`` only, which under the null hypothesis says nothing about ``a``, so it does not bias the test
(independent filtering) and it keeps the number of comparisons down.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "TrendResult",
    "benjamini_hochberg",
    "betainc",
    "binom_sf",
    "detect_trends",
    "rate_ratio",
]

TEST_NAME = (
    "one-sided exact conditional binomial test (two Poisson rates, exposure = all seizures in each window), "
    "Benjamini–Hochberg adjusted"
)


def betainc(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for a, b > 0 and 0 <= x <= 1.

    Continued fraction (modified Lentz), using the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where it
    converges faster; accurate to about 1e-14 relative.
    """
    if a <= 0 or b <= 0:
        raise ValueError("a and b must be positive")
    if not 0.0 <= x <= 1.0:
        raise ValueError("x must be in [0, 1]")
    if x == 0.0 or x == 1.0:
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 3e-16:
            return h
    raise ArithmeticError("incomplete beta: continued fraction did not converge")  # pragma: no cover


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the exact upper tail, I_p(k, n - k + 1)."""
    if n < 0 or not 0.0 <= p <= 1.0:
        raise ValueError("n must be >= 0 and p in [0, 1]")
    if k <= 0:
        return 1.0
    if k > n:
        return 0.0
    return min(1.0, max(0.0, betainc(k, n - k + 1, p)))


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini–Hochberg adjusted p-values (q-values), in the order given."""
    m = len(p_values)
    if m == 0:
        return []
    order = sorted(range(m), key=lambda i: p_values[i])
    q = [0.0] * m
    running = 1.0
    for rank in range(m, 0, -1):
        i = order[rank - 1]
        running = min(running, p_values[i] * m / rank)
        q[i] = min(1.0, running)
    return q


def rate_ratio(after: int, before: int, total_after: int, total_before: int) -> float:
    """(after / total_after) / (before / total_before), with 0.5 added to both counts if either is 0."""
    if total_after <= 0 or total_before <= 0:
        return math.nan
    a, b = float(after), float(before)
    if after == 0 or before == 0:
        a, b = a + 0.5, b + 0.5
    return (a / total_after) / (b / total_before)


@dataclass(frozen=True, slots=True)
class TrendResult:
    dimension: str
    code: str
    before: int
    after: int
    share_before: float
    share_after: float
    rate_ratio: float
    p_value: float
    q_value: float
    flagged: bool


def detect_trends(
    counts: Mapping[tuple[str, str], tuple[int, int]],
    total_before: int,
    total_after: int,
    *,
    alpha: float = 0.05,
    min_ratio: float = 1.5,
    min_total: int = 5,
) -> list[TrendResult]:
    """Test every item for a rise of its share of seizures, recent window against baseline.

    ``counts`` maps ``(dimension, code)`` to ``(before, after)`` seizures; ``total_before`` and
    ``total_after`` are all seizures in each window (the exposure). Returns the items tested, ranked:
    flagged first, then by p-value, then by rate ratio (largest first).
    """
    if total_before <= 0 or total_after <= 0:
        return []
    p0 = total_after / (total_before + total_after)
    tested = [(key, ba) for key, ba in counts.items() if ba[0] + ba[1] >= min_total]
    p_values = [binom_sf(after, before + after, p0) for _, (before, after) in tested]
    q_values = benjamini_hochberg(p_values)
    results = []
    for ((dimension, code), (before, after)), p, q in zip(tested, p_values, q_values, strict=True):
        rr = rate_ratio(after, before, total_after, total_before)
        results.append(
            TrendResult(
                dimension=dimension,
                code=code,
                before=before,
                after=after,
                share_before=before / total_before,
                share_after=after / total_after,
                rate_ratio=rr,
                p_value=p,
                q_value=q,
                flagged=q <= alpha and rr >= min_ratio,
            )
        )
    results.sort(key=lambda r: (not r.flagged, r.p_value, -r.rate_ratio, r.dimension, r.code))
    return results


def fisher_greater(a: int, b: int, c: int, d: int) -> float:
    """One-sided Fisher exact p-value that the first row's rate is higher: table [[a, b], [c, d]]
    (a = recent seizures, b = recent nothing found, c / d the same in the baseline)."""
    row1, col1, n = a + b, a + c, a + b + c + d
    if n == 0 or row1 == 0 or col1 == 0:
        return 1.0

    def logp(x: int) -> float:
        return (
            math.lgamma(row1 + 1)
            - math.lgamma(x + 1)
            - math.lgamma(row1 - x + 1)
            + math.lgamma(n - row1 + 1)
            - math.lgamma(col1 - x + 1)
            - math.lgamma(n - row1 - col1 + x + 1)
            - (math.lgamma(n + 1) - math.lgamma(col1 + 1) - math.lgamma(n - col1 + 1))
        )

    hi = min(row1, col1)
    return min(1.0, sum(math.exp(logp(x)) for x in range(a, hi + 1)))

"""The statistics every benchmark table reports: intervals for rates and medians, time-to-target with
failures counted as never, performance profiles and paired sign tests. Plain numpy; known answers are
checked in tests/test_stats.py."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Z95 = 1.959963984540054  # the standard normal's 97.5th percentile


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a binomial rate (95% by default): sound at 0 and n successes too."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, center - half), min(1.0, center + half))


def mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval of the mean over independent runs (seeds). NaN bounds for
    fewer than two values; +-inf in the values gives an infinite mean and bounds."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if v.size < 2 or not math.isfinite(mean):
        return (mean, math.nan, math.nan) if v.size < 2 else (mean, mean, mean)
    half = float(student_t.ppf(0.5 + confidence / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return (mean, mean - half, mean + half)


def geometric_mean_ci(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """mean_ci on log values, mapped back: for positive quantities spread over decades (training loss)."""
    v = np.asarray(values, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        logs = np.log(v)
    return tuple(float(np.exp(x)) for x in mean_ci(logs, confidence))


def median_or_never(values: Sequence[float]) -> float:
    """The median where failures are +inf: finite only when more than half succeeded."""
    v = np.asarray(values, dtype=float)
    return math.inf if v.size == 0 else float(np.median(v))


def bootstrap_median_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile-bootstrap interval of `median_or_never` (values may hold +inf; so may the bounds)."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return (math.inf, math.inf)
    rng = np.random.default_rng(seed)
    medians = np.median(v[rng.integers(0, v.size, size=(resamples, v.size))], axis=1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(medians, [alpha, 1 - alpha], method="inverted_cdf")
    return (float(lo), float(hi))


def sign_test(a: Sequence[float], b: Sequence[float]) -> tuple[int, int, float]:
    """Paired comparison of per-seed costs (lower is better, +inf = never): (wins of a, wins of b,
    two-sided exact sign-test p-value over the untied pairs)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        wins_a = int(np.sum(a < b))
        wins_b = int(np.sum(b < a))
    n, k = wins_a + wins_b, min(wins_a, wins_b)
    if n == 0:
        return (0, 0, 1.0)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return (wins_a, wins_b, min(1.0, 2 * tail))


def performance_profile(costs: dict[str, Sequence[float]], taus: Sequence[float]) -> dict[str, list[float]]:
    """Dolan–Moré / AlgoPerf performance profiles: costs[solver][problem] (+inf = never). For each solver,
    rho(tau) = the share of problems on which its cost is within tau times the best solver's. A problem
    that no solver solved counts as unsolved for all."""
    solvers = list(costs)
    table = np.array([list(costs[s]) for s in solvers], dtype=float)  # (solvers, problems)
    best = table.min(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(table) & np.isfinite(best), table / best, np.inf)
    ratio = np.where((table == 0) & (best == 0), 1.0, ratio)
    return {s: [float(np.mean(ratio[i] <= tau)) for tau in taus] for i, s in enumerate(solvers)}

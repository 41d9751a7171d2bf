"""The benchmark statistics on data with known answers."""

import math

import numpy as np
import pytest

from benchmarks.stats import (
    bootstrap_median_ci,
    median_or_never,
    performance_profile,
    sign_test,
    wilson,
)


def test_wilson_interval_known_values():
    # Wilson 95% for 8/10: (0.4902, 0.9433) (Newcombe 1998, table I method 3 gives the same bounds).
    lo, hi = wilson(8, 10)
    assert lo == pytest.approx(0.4902, abs=1e-4) and hi == pytest.approx(0.9433, abs=1e-4)
    lo, hi = wilson(0, 20)
    assert lo == 0.0 and hi == pytest.approx(0.1611, abs=1e-4)
    lo, hi = wilson(20, 20)
    assert hi == 1.0 and lo == pytest.approx(0.8389, abs=1e-4)


def test_median_counts_failures_as_never():
    assert median_or_never([3, 5, math.inf]) == 5
    assert median_or_never([3, math.inf, math.inf]) == math.inf
    assert median_or_never([2, 4, math.inf, math.inf]) == math.inf  # half failed: not "more than half"
    assert median_or_never([2, 4, 6, math.inf]) == 5


def test_bootstrap_interval_covers_and_shrinks():
    rng = np.random.default_rng(1)
    small, large = rng.exponential(10, 20), rng.exponential(10, 2000)
    lo_s, hi_s = bootstrap_median_ci(small)
    lo_l, hi_l = bootstrap_median_ci(large)
    true_median = 10 * math.log(2)
    assert lo_l <= true_median <= hi_l
    assert hi_l - lo_l < (hi_s - lo_s) / 4  # ~1/sqrt(n)
    assert bootstrap_median_ci([1.0] * 5) == (1.0, 1.0)
    lo, hi = bootstrap_median_ci([1, 2, math.inf, math.inf, math.inf])
    assert hi == math.inf


def test_sign_test_known_p_values():
    # 9 wins of 10 untied pairs: two-sided p = 2 * 11/1024.
    a, b = [1] * 9 + [5, 3], [2] * 9 + [4, 3]
    wins_a, wins_b, p = sign_test(a, b)
    assert (wins_a, wins_b) == (9, 1) and p == pytest.approx(22 / 1024)
    assert sign_test([math.inf, 1], [2, math.inf])[:2] == (1, 1)
    assert sign_test([1, 1], [1, 1]) == (0, 0, 1.0)


def test_performance_profile_known_ratios():
    costs = {"A": [10, 20, math.inf], "B": [20, 10, 30], "C": [math.inf, math.inf, math.inf]}
    rho = performance_profile(costs, [1, 2, 4])
    assert rho["A"] == pytest.approx([1 / 3, 2 / 3, 2 / 3])
    assert rho["B"] == pytest.approx([2 / 3, 1.0, 1.0])
    assert rho["C"] == [0.0, 0.0, 0.0]

"""Paired statistics on cases with a known answer."""

import pytest

from study.results.statistics import (
    bootstrap_interval,
    holm,
    summarise,
    t_interval,
    wilcoxon_p,
)


def test_a_constant_difference_has_a_degenerate_interval_and_the_exact_p_value():
    summary = summarise([-10.0] * 8)
    assert (summary.n, summary.mean, summary.low, summary.high) == (8, -10.0, -10.0, -10.0)
    assert summary.p_value == pytest.approx(2 / 2**8)  # exact two-sided signed-rank, n = 8


def test_the_interval_covers_the_mean_and_is_reproducible():
    values = [1.0, 3.0, -2.0, 5.0, 0.5, 2.5, 4.0, -1.0]
    low, high = bootstrap_interval(values)
    assert low < sum(values) / len(values) < high
    assert (low, high) == bootstrap_interval(values)  # seeded


def test_no_difference_has_no_p_value_and_missing_values_are_skipped():
    assert wilcoxon_p([0.0, 0.0, 0.0]) is None and wilcoxon_p([1.0]) is None
    assert summarise([None, None]) is None
    assert summarise([2.0, None, 4.0]).n == 2


def test_the_t_interval_of_a_known_sample():
    # mean 2, s = 1.5811 (n = 5), t(0.975, 4) = 2.7764: half-width 2.7764 · 1.5811 / √5 = 1.9632
    low, high = t_interval([0.0, 1.0, 2.0, 3.0, 4.0])
    assert (low, high) == pytest.approx((2 - 1.96324, 2 + 1.96324), abs=1e-5)
    assert t_interval([1.0]) is None
    summary = summarise([0.0, 1.0, 2.0, 3.0, 4.0])
    assert summary.t_low < summary.low < summary.high < summary.t_high  # bootstrap: narrower


def test_holm_adjusts_a_known_family():
    # Sorted 0.01, 0.02, 0.04 of m = 3: ×3, ×2, ×1 -> 0.03, 0.04, 0.04 (kept monotonic).
    assert holm([0.04, None, 0.01, 0.02]) == pytest.approx([0.04, None, 0.03, 0.04])
    assert holm([0.6, 0.5]) == [1.0, 1.0]  # capped
    assert holm([]) == []


def test_the_bootstrap_does_not_depend_on_the_order_of_the_values():
    values = [1.0, 3.0, -2.0, 5.0, 0.5, 2.5, 4.0, -1.0]
    assert bootstrap_interval(values) == bootstrap_interval(values[::-1])

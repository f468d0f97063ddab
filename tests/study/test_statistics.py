"""Paired statistics on cases with a known answer."""

import pytest

from study.results.statistics import bootstrap_interval, summarise, wilcoxon_p


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

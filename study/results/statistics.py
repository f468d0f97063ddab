"""Statistics of paired per-image differences: the mean with two 95 % intervals, a Wilcoxon
signed-rank test against zero, and Holm's adjustment of a table's p-values.

Used for BD-rates and equal-rate differences: each image's own figure for a loss against its
anchor is one paired observation (same image, same codec, two losses), so the test asks whether
the loss changes the rate at equal quality, image by image, without assuming normality.

With the 4–8 images of a study sized for this CPU, the percentile bootstrap is too narrow (it
ignores that the spread itself is estimated); the t-interval of the mean is the wider, honest one
and the one verdicts use. Both are reported.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000


def exact_mean(values: list[float]) -> float:
    """The mean from an exactly rounded sum: the same bits in whatever order trials were
    recorded, so reports do not depend on which machine or import recorded a trial first."""
    return math.fsum(values) / len(values)


@dataclass(frozen=True)
class PairedSummary:
    n: int
    mean: float
    low: float  # bootstrap percentile interval of the mean
    high: float
    t_low: float | None  # Student-t interval of the mean; None for a single value
    t_high: float | None
    p_value: float | None  # two-sided Wilcoxon signed-rank; None when it cannot be computed
    p_holm: float | None = None  # ``p_value`` adjusted over its table (``holm``)
    compared: int | None = None  # values offered, ``n`` of them usable

    def describe(self, unit: str = "%", digits: int = 2) -> str:
        def number(value):
            return f"{value:+.{digits}f}"

        t = "" if self.t_low is None else f"; t {number(self.t_low)}, {number(self.t_high)}"
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        holm = "" if self.p_holm is None else f", Holm {self.p_holm:.3g}"
        of = "" if self.compared in (None, self.n) else f" of {self.compared}"
        unit = f" {unit}" if unit else ""
        return (
            f"{number(self.mean)}{unit} [boot {number(self.low)}, {number(self.high)}{t}], "
            f"p = {p}{holm} (n = {self.n}{of})"
        )


def bootstrap_interval(
    values, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean over ``RESAMPLES`` resamples of the values (seeded, and
    sorted first, so a report does not depend on the order its records were read in)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(RESAMPLES, len(values)), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def t_interval(values, confidence: float = CONFIDENCE) -> tuple[float, float] | None:
    """mean ± t(n−1)·s/√n; None for fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        return None
    half = stats.t.ppf((1 + confidence) / 2, len(values) - 1) * stats.sem(values)
    mean = float(values.mean())
    return mean - float(half), mean + float(half)


def wilcoxon_p(values) -> float | None:
    """Two-sided signed-rank p-value of the values against zero; None for fewer than two values
    or when every value is zero."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or not np.any(values):
        return None
    return float(stats.wilcoxon(values, zero_method="wilcox", alternative="two-sided").pvalue)


def holm(p_values: list[float | None]) -> list[float | None]:
    """Holm's step-down adjustment over the p-values given (None ones are not tests and stay None):
    the k-th smallest of m is multiplied by m − k + 1, kept monotonic, capped at 1."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, index) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[index] = running
    return adjusted


def summarise(values) -> PairedSummary | None:
    """Summary of the usable (not None) values; None when there is none."""
    offered = list(values)
    values = sorted(v for v in offered if v is not None)  # sums independent of record order
    if not values:
        return None
    low, high = bootstrap_interval(values)
    t_low, t_high = t_interval(values) or (None, None)
    return PairedSummary(
        n=len(values),
        mean=exact_mean(values),
        low=low,
        high=high,
        t_low=t_low,
        t_high=t_high,
        p_value=wilcoxon_p(values),
        compared=len(offered),
    )


def _tested_cells(rows: list[dict], summary_keys: list[str]) -> list[tuple[dict, str]]:
    return [(row, key) for row in rows for key in summary_keys if row.get(key)]


def adjust_table(rows: list[dict], summary_keys: list[str]) -> None:
    """Holm-adjust, in place, the p-values of the summaries under ``summary_keys`` of every row
    (one family: the table)."""
    cells = _tested_cells(rows, summary_keys)
    adjusted = holm([row[key]["p_value"] for row, key in cells])
    for (row, key), p_holm in zip(cells, adjusted, strict=True):
        row[key] = row[key] | {"p_holm": p_holm}


def family_size(rows: list[dict], summary_keys: list[str]) -> int:
    """How many p-values ``adjust_table`` adjusted together: what a table states."""
    return sum(row[key]["p_value"] is not None for row, key in _tested_cells(rows, summary_keys))

"""Statistics of paired per-image differences: the mean, its bootstrap confidence interval and a
Wilcoxon signed-rank test against zero.

Used for BD-rates: each image's own BD-rate of a loss against the codec's published loss is one
paired observation (same image, same codec, two losses), so the test asks whether the loss changes
the rate at equal quality, image by image, without assuming normality.
"""

from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
RESAMPLES = 10_000


@dataclass(frozen=True)
class PairedSummary:
    n: int
    mean: float
    low: float  # bootstrap percentile interval of the mean
    high: float
    p_value: float | None  # two-sided Wilcoxon signed-rank; None when it cannot be computed

    def describe(self, unit: str = "%") -> str:
        p = "n/a" if self.p_value is None else f"{self.p_value:.3g}"
        return (
            f"{self.mean:+.2f} {unit} [{self.low:+.2f}, {self.high:+.2f}], p = {p} (n = {self.n})"
        )


def bootstrap_interval(
    values, confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean over ``RESAMPLES`` resamples of the values (seeded, so
    reports are reproducible)."""
    values = np.asarray(values, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(RESAMPLES, len(values)), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return float(low), float(high)


def wilcoxon_p(values) -> float | None:
    """Two-sided signed-rank p-value of the values against zero; None for fewer than two values
    or when every value is zero."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2 or not np.any(values):
        return None
    return float(stats.wilcoxon(values, zero_method="wilcox", alternative="two-sided").pvalue)


def summarise(values) -> PairedSummary | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    low, high = bootstrap_interval(values)
    return PairedSummary(len(values), float(np.mean(values)), low, high, wilcoxon_p(values))

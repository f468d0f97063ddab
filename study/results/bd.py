"""BD-rate between two R-D curves, with how much of their quality range they share.

The mean gap between the PCHIP curves of log10 rate against quality (the classic cubic fit
misbehaves on these curves) over the quality range both cover, on each curve's operational points
(a point its own curve beats is dropped): the ``bjontegaard`` package's ``pchip`` method, which a
test checks it against, with logarithms and powers that give the same bits on every machine
(``portable``) so that a rebuilt report equals the published one byte for byte.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np
from scipy.interpolate import PchipInterpolator
from scipy.optimize import brentq

from study.results.portable import log10, pow10
from study.results.table import get_metric

# Least share of the joint quality range both curves must cover for a BD-rate to be reported
# (``bjontegaard`` warns below 75 %). Loss studies shift whole curves along quality by design, so
# half is kept; below it the BD-rate would average over a sliver of one curve, and the equal-rate
# tables (each rate setting at its own bpp) make the comparison instead.
MIN_OVERLAP = 0.5


@dataclass(frozen=True)
class BdComparison:
    value: float | None  # BD-rate (%), None below MIN_OVERLAP
    overlap: float  # share of the joint quality range that both curves cover
    bpp_low: float  # rates spanned by the two curves over that shared range
    bpp_high: float
    pruned: tuple[str, ...]  # which curves ("anchor", "test") lost dominated points
    # Where the curves cross inside the shared range, the BD-rate of each part between crossings,
    # from the lowest rates up (empty when one curve is better throughout).
    ranges: tuple["BdRange", ...] = ()


@dataclass(frozen=True)
class BdRange:
    value: float  # BD-rate (%) over this part of the shared quality range
    share: float  # its share of the shared quality range
    bpp_low: float
    bpp_high: float


def _operational(points: list[dict], metric: str) -> tuple[list[tuple[float, float]], bool] | None:
    """(bpp, quality oriented higher-better) pairs by increasing rate, keeping only points no other
    point of the curve beats (as many bits or fewer, quality as good or better), and whether any
    was dropped; None when a value is missing, a rate is not a positive number, or fewer than two
    points remain. A lossless point (PSNR +inf) lies on no curve of finite quality: left out."""
    row = get_metric(metric)
    pairs = [(p["bpp"], p.get(metric)) for p in points]
    if len(pairs) < 2 or any(v is None or r is None or not 0 < r < math.inf for r, v in pairs):
        return None
    kept, best = [], -math.inf
    finite = ((r, row.oriented(v)) for r, v in pairs if math.isfinite(v))
    for bpp, quality in sorted(finite):
        if quality > best:
            kept.append((bpp, quality))
            best = quality
    # Equal rates keep the better point only.
    kept = [p for i, p in enumerate(kept) if i + 1 == len(kept) or kept[i + 1][0] != p[0]]
    return (kept, len(kept) < len(pairs)) if len(kept) >= 2 else None


def bd_rate(
    anchor: list[dict], test: list[dict], metric: str, by_range: bool = False
) -> BdComparison | None:
    """BD-rate (%) of ``test`` against ``anchor`` with the curves' overlap; None where there is
    none (fewer than two points, a missing metric, no overlap). A curve whose rate does not rise
    with quality (a fit at a higher rate ending worse) loses its dominated points first.
    ``by_range``: also the BD-rate of each part between the curves' crossings (``ranges``)."""
    a, t = _operational(anchor, metric), _operational(test, metric)
    if a is None or t is None:
        return None
    (a, a_pruned), (t, t_pruned) = a, t
    low = max(a[0][1], t[0][1])
    high = min(a[-1][1], t[-1][1])
    joint = max(a[-1][1], t[-1][1]) - min(a[0][1], t[0][1])
    if high <= low or joint <= 0:
        return None
    anchor_curve, test_curve = _log_rate_curve(a), _log_rate_curve(t)
    # The overlap's rates on the same PCHIP curves the BD-rate and its ranges integrate.
    rates = [float(f(q)) for f in (anchor_curve, test_curve) for q in (low, high)]
    pruned = tuple(name for name, flag in (("anchor", a_pruned), ("test", t_pruned)) if flag)
    overlap = (high - low) / joint
    value = _percent(anchor_curve, test_curve, low, high) if overlap >= MIN_OVERLAP else math.nan
    value = value if math.isfinite(value) else None
    ranges = ()
    if by_range and value is not None:
        ranges = _ranges_between_crossings(anchor_curve, test_curve, low, high)
    return BdComparison(value, overlap, pow10(min(rates)), pow10(max(rates)), pruned, ranges)


def _percent(anchor: PchipInterpolator, test: PchipInterpolator, start: float, end: float) -> float:
    """BD-rate (%) between two log-rate curves over [start, end] of quality (> start)."""
    mean = (float(test.integrate(start, end)) - float(anchor.integrate(start, end))) / (end - start)
    return (pow10(mean) - 1) * 100


# Crossings are looked for on this many steps of the shared quality range; parts narrower than
# one step are not told apart.
_CROSSING_STEPS = 1000


def _ranges_between_crossings(
    anchor: PchipInterpolator, test: PchipInterpolator, low: float, high: float
) -> tuple[BdRange, ...]:
    """A curve that is better at low rates and worse at high ones (or the reverse) averages the
    two into one BD-rate; split at each crossing, each part gets its own, on the same curves."""
    grid = np.linspace(low, high, _CROSSING_STEPS + 1)
    gap = test(grid) - anchor(grid)
    edges, last = [low], None
    for i in np.flatnonzero(gap):  # a grid point right on a crossing is stepped over
        if last is not None and (gap[i] > 0) != (gap[last] > 0):
            edges.append(_crossing(anchor, test, grid[last], grid[i]))
        last = i
    if len(edges) == 1:
        return ()
    edges.append(high)
    # A root found on a grid point itself would leave a part of no width.
    edges = [e for i, e in enumerate(edges) if i == 0 or e > edges[i - 1]]
    parts = []
    for start, end in itertools.pairwise(edges):
        rates = [pow10(float(f(q))) for f in (anchor, test) for q in (start, end)]
        parts.append(
            BdRange(
                _percent(anchor, test, start, end),
                (end - start) / (high - low),
                min(rates),
                max(rates),
            )
        )
    return tuple(parts)


def _log_rate_curve(curve: list[tuple[float, float]]) -> PchipInterpolator:
    return PchipInterpolator([q for _, q in curve], [log10(r) for r, _ in curve])


def _crossing(anchor, test, start: float, end: float) -> float:
    """The quality between two grid points where the two log-rate curves meet."""
    return float(brentq(lambda q: float(test(q) - anchor(q)), start, end))

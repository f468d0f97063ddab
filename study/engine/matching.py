"""Rate matching: the codec setting whose file lands within a tolerance of a target bitrate, for
one image, in few fits.

Bitrate is monotone in a codec's rate setting (λ: more λ, fewer bits; NIF width, quality: more,
more bits), so the matcher brackets the target and then closes in by interpolation (regula
falsi, each fit kept 5 % of the bracket away from its ends) on log bpp against the setting — on
log λ where the axis is searched on a log scale, on the index of a discrete axis's ordered values.
Steps grow until the target is bracketed, beyond the search range when needed, up to the axis's
valid range; a target still out of reach there is reported as unreachable at once. Each fit counts
against a budget; the matcher then returns the closest fit. Pure logic, no fitting: the caller fits
what ``next_setting`` asks for and reports the bitrate with ``observe``.

Earlier fits on the same image guide the search (``hints``: the same loss matched to another target,
or a neighbouring α): the first fit goes where their curve crosses the target, and the second
follows their slope, instead of starting mid-range and stepping by a quarter of it. Fits of the very
loss being matched (``on_curve``, made for another target) are points of the same curve: they also
bracket and aim every later step. Neither kind is this match's fit: they never count against the
budget, end the search, or become its result.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

from inr_models.base import RateAxis, RateValue
from study.results.rate_targets import match_rank, on_target

SIGNIFICANT_DIGITS = 4  # rounded settings: short names and stable trial keys
# A bracket narrower than this (in the search coordinate: 1 % of λ on a log axis) that still holds
# no fit on target means the rate jumps there (a different quantisation step, say): stop.
JUMP_WIDTH = 0.01
# Hints bracketing the target with a slope this many times their whole curve's trend straddle a
# jump: the trend, not that slope, aims the steps after the first fit.
JUMP_STEEPNESS = 4.0


def rate_error(bpp: float, target: float) -> float:
    """log(bpp / target), the matcher's coordinate: > 0 too many bits, < 0 too few."""
    return math.log(bpp / target)


def rounded(value: float) -> float:
    """``value`` to ``SIGNIFICANT_DIGITS`` significant digits."""
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _trend(points: Sequence[tuple[float, float]], rising: bool) -> float | None:
    """The least-squares slope of the rate error along the coordinate; None when the points
    give none in the axis's direction."""
    if len({u for u, _ in points}) < 2:
        return None
    mean_u = sum(u for u, _ in points) / len(points)
    mean_e = sum(e for _, e in points) / len(points)
    spread = sum((u - mean_u) ** 2 for u, _ in points)
    slope = sum((u - mean_u) * (e - mean_e) for u, e in points) / spread
    return slope if slope and (slope > 0) == rising else None


@dataclass(frozen=True)
class Probe:
    setting: RateValue
    bpp: float


@dataclass(frozen=True)
class MatchResult:
    setting: RateValue  # of the fit closest to the target
    bpp: float
    reached: bool  # within the tolerance
    fits: int
    # Why the target was not reached: "", "budget", or "unreachable: ..." .
    reason: str = ""
    # Its fits (with the same loss's for other targets) lie on both sides of the target:
    # reachable, but not by these fits (the rate jumps across it, or the budget ran out).
    bracketed: bool = False


class RateMatcher:
    def __init__(
        self,
        axis: RateAxis,
        target_bpp: float,
        tolerance: float,
        budget: int,
        search_range: tuple[float, float] | None = None,
        hints: Sequence[Probe] = (),
        on_curve: Sequence[Probe] = (),
    ):
        self.axis, self.target, self.tolerance, self.budget = axis, target_bpp, tolerance, budget
        self.probes: list[Probe] = []
        self.reason = ""
        if axis.choices is not None:
            self.low, self.high = 0.0, float(len(axis.choices) - 1)
            start_range = (self.low, self.high)
        else:
            self.low = self._to_u(axis.low if axis.low is not None else -math.inf)
            self.high = self._to_u(axis.high if axis.high is not None else math.inf)
            start_range = tuple(self._to_u(v) for v in (search_range or axis.search_range))
        self.start = (start_range[0] + start_range[1]) / 2
        self.first_step = (start_range[1] - start_range[0]) / 4
        if axis.choices is not None:
            self.first_step = max(round(self.first_step), 1)
        # Does the bitrate rise with the coordinate?
        self.rising = axis.rate_increases
        # d(log bpp)/du along the hints' curve, for the step after the first fit.
        self.hint_slope: float | None = None
        self.on_curve = list(on_curve)
        if hints:
            self.start = self._start_from(hints)

    # --- coordinates: log of the value on a log axis, the index on a discrete one -----------

    def _to_u(self, value: float) -> float:
        if self.axis.choices is not None:
            return float(self.axis.choices.index(value))
        if self.axis.log:
            return math.log(value) if value > 0 else -math.inf
        return float(value)

    def _to_setting(self, u: float) -> RateValue:
        if self.axis.choices is not None:
            return self.axis.choices[round(u)]
        value = math.exp(u) if self.axis.log else u
        return round(value) if self.axis.kind is int else rounded(value)

    def _start_from(self, hints: Sequence[Probe]) -> float:
        """Where the hints' curve crosses the target: interpolated between the closest hints on
        either side, else extrapolated along the two closest (by at most twice the first step);
        one hint alone: a first step from it toward the target."""
        points = sorted((self._to_u(h.setting), self._error(h)) for h in hints)
        below = [p for p in points if p[1] < 0]
        above = [p for p in points if p[1] > 0]
        nearest = min(points, key=lambda p: abs(p[1]))
        if below and above:
            pair = (max(below, key=lambda p: p[1]), min(above, key=lambda p: p[1]))
        else:
            pair = tuple(sorted(points, key=lambda p: abs(p[1]))[:2])
        slope = None
        if len(pair) == 2 and pair[0][0] != pair[1][0]:
            slope = (pair[1][1] - pair[0][1]) / (pair[1][0] - pair[0][0])
        if slope and (slope > 0) == self.rising:  # a flat pair (the file's floor) gives no aim
            self.hint_slope = slope
            trend = _trend(points, self.rising)
            if below and above and trend and abs(slope) > JUMP_STEEPNESS * abs(trend):
                # The file size jumps between the pair: start there, but step on along the
                # curve's trend, which a jump's slope would have the matcher crawl along.
                self.hint_slope = trend
            u = nearest[0] - nearest[1] / slope
            if not (below and above):
                reach = 2 * self.first_step
                u = min(max(u, nearest[0] - reach), nearest[0] + reach)
        else:  # no usable slope: one step from the closest hint, as after a first fit there
            toward = -1.0 if (nearest[1] > 0) == self.rising else 1.0
            u = nearest[0] + toward * self.first_step * (nearest[1] != 0)
        u = min(max(u, self.low), self.high)
        if self.axis.choices is not None:
            u = float(round(u))
        return u

    # --- the search ----------------------------------------------------------------------------

    def _error(self, probe: Probe) -> float:
        return rate_error(probe.bpp, self.target)

    def _reached(self, probe: Probe) -> bool:
        return on_target(probe.bpp, self.target, self.tolerance)

    def observe(self, setting: RateValue, bpp: float) -> None:
        self.probes.append(Probe(setting, bpp))

    def next_setting(self) -> RateValue | None:
        """The next setting to fit, or None when done (see ``result``)."""
        if not self.probes:
            return self._to_setting(self.start)
        if any(self._reached(p) for p in self.probes) or self.reason:
            return None
        if len(self.probes) >= self.budget:
            self.reason = "budget"
            return None
        u = self._next_u()
        if u is None:
            return None
        setting = self._to_setting(u)
        if any(p.setting == setting for p in self.probes):
            # Rounding or adjacent discrete values leave nothing new to try.
            self.reason = f"no {self.axis.label} between the closest fits lands within tolerance"
            return None
        return setting

    def _next_u(self) -> float | None:
        known = self.probes + self.on_curve
        points = sorted((self._to_u(p.setting), self._error(p)) for p in known)
        below = [(u, e) for u, e in points if e < 0]  # too few bits
        above = [(u, e) for u, e in points if e > 0]  # too many bits
        if below and above:
            # Bracketed: the closest pair on either side, by coordinate.
            lo = max(below) if self.rising else min(below)
            hi = min(above) if self.rising else max(above)
            if self.axis.choices is None and abs(hi[0] - lo[0]) < JUMP_WIDTH:
                self.reason = (
                    f"the file size jumps across the target between {self.axis.label} "
                    f"{self._to_setting(lo[0])} and {self._to_setting(hi[0])}"
                )
                return None
            return self._interpolate(lo, hi)
        last_u, last_e = self._to_u(self.probes[-1].setting), self._error(self.probes[-1])
        # Move toward the target: fewer bits means down the coordinate if bitrate rises with it.
        direction = -1.0 if (last_e > 0) == self.rising else 1.0
        step = self.first_step * 2 ** (len(self.probes) - 1)
        u = last_u + direction * step
        secant = None
        if len(points) >= 2:  # a secant through the two closest fits usually lands closer
            (u1, e1), (u2, e2) = sorted(points, key=lambda p: abs(p[1]))[:2]
            if u1 != u2 and (e2 - e1) != 0:
                secant = u1 - e1 * (u2 - u1) / (e2 - e1)
        elif self.hint_slope is not None:  # one fit: along the hints' slope
            secant = last_u - last_e / self.hint_slope
        if secant is not None and (secant - last_u) * direction > 0:
            # Overshoot a little, to bracket; but a flat stretch of the curve (the file near its
            # fixed costs) must not fling the next fit to the axis's end.
            u = last_u + direction * min(abs(secant - last_u) * 1.2, 2 * step)
            if self.axis.choices is not None:  # at least the next value, not back onto this one
                u = last_u + direction * max(abs(u - last_u), 1.0)
        limit = self.high if direction > 0 else self.low
        if (u - limit) * direction > 0:
            u = limit
        if u == last_u or (abs(last_u - limit) < 1e-12):
            side = "above" if last_e > 0 else "below"
            self.reason = (
                f"unreachable: at the {self.axis.label} limit "
                f"{self.probes[-1].setting} the file is still {side} the target "
                f"({self.probes[-1].bpp:.4f} bpp)"
            )
            return None
        return u

    def _interpolate(self, lo: tuple[float, float], hi: tuple[float, float]) -> float:
        (u_lo, e_lo), (u_hi, e_hi) = lo, hi
        u = u_lo - e_lo * (u_hi - u_lo) / (e_hi - e_lo)
        if self.axis.choices is not None:
            # Strictly between the bracket: bisect when interpolation rounds onto an end.
            inner = round(u)
            if inner in (round(u_lo), round(u_hi)):
                inner = round((u_lo + u_hi) / 2)
            return float(inner)
        # Keep away from the ends, so the bracket keeps shrinking even along a curved stretch.
        margin = 0.05 * abs(u_hi - u_lo)
        return min(max(u, min(u_lo, u_hi) + margin), max(u_lo, u_hi) - margin)

    @property
    def result(self) -> MatchResult:
        best = min(self.probes, key=lambda p: match_rank(p.bpp, self.target, self.tolerance))
        reached = self._reached(best)
        # The fits of the same loss for other targets bracket too (``_next_u``).
        errors = [self._error(p) for p in self.probes + self.on_curve]
        return MatchResult(
            setting=best.setting,
            bpp=best.bpp,
            reached=reached,
            fits=len(self.probes),
            reason="" if reached else (self.reason or "budget"),
            bracketed=min(errors) < 0 < max(errors),
        )

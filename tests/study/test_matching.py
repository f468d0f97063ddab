"""Rate matching on synthetic monotone rate curves: brackets, closes in, knows when it cannot."""

import math

import pytest

from inr_models.base import RateAxis
from study.engine.matching import Probe, RateMatcher

LAMBDA = RateAxis(name="lmbda", config_key="lmbdas", label="λ", kind=float, default=1e-3,
                  low=1e-8, high=10.0, search_range=(1e-4, 2e-2), log=True,
                  rate_increases=False, help="")  # fmt: skip
WIDTH = RateAxis(name="configuration", config_key="configs", label="width", kind=str,
                 default="b", choices=("a", "b", "c", "d", "e", "f", "g"), help="")  # fmt: skip


def run(matcher: RateMatcher, bpp_of) -> list:
    settings = []
    while (setting := matcher.next_setting()) is not None:
        settings.append(setting)
        matcher.observe(setting, bpp_of(setting))
    return settings


@pytest.mark.parametrize("target", [0.05, 0.25, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("slope", [0.3, 0.6, 1.2])
def test_lambda_lands_within_tolerance_in_few_fits(target, slope):
    # bpp falls as a power of λ, like COOL-CHIC's curves, with an offset for realism.
    def bpp(lmbda):
        return 0.02 + 0.4 * (lmbda / 1e-3) ** -slope

    matcher = RateMatcher(LAMBDA, target, tolerance=0.05, budget=8)
    settings = run(matcher, bpp)
    result = matcher.result
    assert result.reached, (result, settings)
    assert abs(result.bpp / target - 1) <= 0.05 and len(settings) <= 8


def test_a_target_beyond_the_axis_is_reported_unreachable_early():
    matcher = RateMatcher(LAMBDA, 0.001, tolerance=0.05, budget=30)
    settings = run(matcher, lambda lmbda: 0.1 + 0.01 * (lmbda / 1e-3) ** -0.5)  # floor: 0.1 bpp
    result = matcher.result
    assert not result.reached and result.reason.startswith("unreachable: at the λ limit 10")
    assert len(settings) < 30


def test_the_budget_bounds_the_fits():
    matcher = RateMatcher(LAMBDA, 0.5, tolerance=1e-9, budget=3)
    run(matcher, lambda lmbda: 0.05 + 0.4 * (lmbda / 1e-3) ** -0.7)
    assert matcher.result.fits == 3 and matcher.result.reason == "budget"


def test_discrete_widths_match_where_one_lands_and_say_when_none_does():
    rates = dict(zip(WIDTH.choices, (0.3, 0.5, 0.8, 1.2, 1.7, 2.4, 3.3), strict=True))
    matcher = RateMatcher(WIDTH, 1.2, tolerance=0.05, budget=8)
    run(matcher, rates.get)
    assert matcher.result.reached and matcher.result.setting == "d"

    matcher = RateMatcher(WIDTH, 1.0, tolerance=0.05, budget=8)
    settings = run(matcher, rates.get)
    result = matcher.result
    assert (
        not result.reached and result.setting in ("c", "d") and len(set(settings)) == len(settings)
    )
    assert "no width between the closest fits lands within tolerance" in result.reason


def test_an_integer_axis_on_a_log_scale():
    levels = RateAxis(name="levels", config_key="levels_list", label="levels", kind=int,
                      default=16, low=2, high=256, search_range=(2, 64), log=True,
                      help="")  # fmt: skip
    matcher = RateMatcher(levels, 3.0, tolerance=0.05, budget=10)
    run(matcher, lambda n: 3 * math.log2(n) / 3)
    assert matcher.result.reached and matcher.result.setting == 8


def test_a_jump_across_the_target_stops_the_search_and_says_where():
    matcher = RateMatcher(LAMBDA, 0.25, tolerance=0.05, budget=30)
    settings = run(matcher, lambda lmbda: 0.3 if lmbda < 0.1 else 0.2)
    result = matcher.result
    assert not result.reached and "the file size jumps across the target between λ" in result.reason
    assert len(settings) < 30 and result.bracketed  # reachable by another curve (another seed)
    # A fit of the same loss for another target may hold one side of the bracket.
    other = RateMatcher(LAMBDA, 0.25, 0.05, 30, on_curve=[Probe(0.1, 0.2)])
    run(other, lambda lmbda: 0.3 if lmbda < 0.1 else 0.2)
    assert "jumps" in other.result.reason and other.result.bracketed


def test_a_fit_on_target_is_the_result_though_one_off_it_lies_nearer():
    matcher = RateMatcher(LAMBDA, 1.0, tolerance=0.05, budget=8)
    matcher.observe(1e-3, 1.051)  # |log| 0.0497, 5.1 % over
    matcher.observe(2e-3, 0.951)  # |log| 0.0502, 4.9 % under
    assert matcher.next_setting() is None
    assert matcher.result.reached and matcher.result.setting == 2e-3


def power_curve(scale: float = 1.0):
    return lambda lmbda: scale * (0.02 + 0.4 * (lmbda / 1e-3) ** -0.7)


@pytest.mark.parametrize("target", [0.25, 0.5, 1.0])
def test_hints_from_the_same_curve_or_a_neighbouring_one_save_fits(target):
    # Fits of the same loss at other targets (λ 1e-3, 3e-3, 1e-2), or of a neighbouring α
    # whose files are 15 % larger: either way the first fit lands close.
    hint_lambdas = (1e-3, 3e-3, 1e-2)
    alone = RateMatcher(LAMBDA, target, tolerance=0.05, budget=8)
    fits_alone = len(run(alone, power_curve()))
    for scale in (1.0, 1.15):
        hints = [Probe(lmbda, power_curve(scale)(lmbda)) for lmbda in hint_lambdas]
        matcher = RateMatcher(LAMBDA, target, tolerance=0.05, budget=8, hints=hints)
        settings = run(matcher, power_curve())
        assert matcher.result.reached and len(settings) <= 2 < fits_alone
        assert matcher.result.fits == len(settings)  # hints are not this match's fits


def test_a_hint_on_target_is_still_fitted_and_hints_do_not_spend_the_budget():
    hints = [Probe(2e-3, 0.499), Probe(4e-3, 0.3)]
    matcher = RateMatcher(LAMBDA, 0.5, tolerance=0.05, budget=1, hints=hints)
    assert matcher.next_setting() == pytest.approx(2e-3, rel=0.01)
    matcher.observe(2e-3, 0.499)
    assert matcher.next_setting() is None and matcher.result.reached


def test_one_hint_or_a_contrary_slope_starts_a_step_from_the_closest():
    step = math.log(2e-2 / 1e-4) / 4
    too_many_bits = RateMatcher(LAMBDA, 0.5, 0.05, 8, hints=[Probe(1e-3, 1.0)])
    assert too_many_bits.next_setting() == pytest.approx(1e-3 * math.exp(step), rel=1e-3)
    # Noise may put two hints on a rising slope, which λ's curve never has: not followed.
    noisy = [Probe(1e-3, 0.8), Probe(1.1e-3, 0.82)]
    contrary = RateMatcher(LAMBDA, 0.5, 0.05, 8, hints=noisy)
    assert contrary.next_setting() == pytest.approx(1e-3 * math.exp(step), rel=1e-3)


def test_discrete_widths_start_from_hints():
    rates = dict(zip(WIDTH.choices, (0.3, 0.5, 0.8, 1.2, 1.7, 2.4, 3.3), strict=True))
    hints = [Probe(w, 1.1 * rates[w]) for w in ("c", "d")]  # a neighbouring α, 10 % larger
    matcher = RateMatcher(WIDTH, 1.7, tolerance=0.05, budget=8, hints=hints)
    assert run(matcher, rates.get) == ["e"]


def test_flat_hints_give_no_aim_and_a_steep_one_still_moves_a_discrete_axis():
    # Two hints with the same file size (the codec's floor) have no slope to follow.
    flat = RateMatcher(LAMBDA, 0.5, 0.05, 8, hints=[Probe(1e-2, 0.1), Probe(2e-2, 0.1)])
    step = math.log(2e-2 / 1e-4) / 4
    assert flat.next_setting() == pytest.approx(1e-2 * math.exp(-step), rel=1e-3)
    # A slope steeper than the codec's: its correction rounds back onto the fitted width, so the
    # matcher steps to the next width instead of giving up after one fit.
    rates = dict(zip(WIDTH.choices, (0.3, 0.5, 0.8, 1.2, 1.7, 2.4, 3.3), strict=True))
    steep = RateMatcher(WIDTH, 1.1, 0.05, 8, hints=[Probe("a", 0.1), Probe("b", 1.0)])
    assert run(steep, rates.get)[:2] == ["b", "c"]


def test_fits_of_the_same_loss_for_other_targets_bracket_the_later_steps():
    # L1's rate at low λ climbs faster than its fits at 0.5 bpp suggest: the first fit overshoots
    # the 1 bpp target, and the fit at 0.5 bpp bounds the next step from the other side.
    on_curve = [Probe(4.472e-3, 0.786), Probe(9.457e-3, 0.576)]
    matcher = RateMatcher(LAMBDA, 1.0, 0.05, 8, hints=on_curve, on_curve=on_curve)
    first = matcher.next_setting()
    matcher.observe(first, 1.586)
    assert first < matcher.next_setting() < 4.472e-3
    assert matcher.result.fits == 1 and matcher.result.setting == first  # its own fits only

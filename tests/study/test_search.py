"""The search's tasks, spaces, scores, recommendations and Pareto fronts, without Ray."""

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from study.config import StudyConfigError, parse_config
from study.engine.search import (
    enqueue_grid,
    finished_samples,
    pareto_front,
    recommend,
    reopen_matches,
    sample_result,
    samples_to_run,
    score,
    task_space,
)
from study.engine.selection import SelectionError, parse_where, select
from study.engine.tasks import TASK_FIELDS, ImageOutcome, run_image, search_tasks


def test_score_penalises_only_rate_outside_the_tolerance():
    assert score("psnr", 30.0, 1.04, 1.0, 0.05) == 30.0
    assert score("psnr", 30.0, 0.96, 1.0, 0.05) == 30.0
    assert score("psnr", 30.0, 1.2, 1.0, 0.05) < 30.0 - 10
    assert score("lpips", 0.1, 1.0, 1.0, 0.05) == -0.1  # lower is better


def config(**search):
    return parse_config(
        {
            "name": "s",
            "codecs": [{"name": "coolchic-v1", "preset": "debug"}, {"name": "nif"}],
            "losses": ["lc_ssim", "mse"],
            "search": {"targets_bpp": [0.5], **search},
        }
    )


@pytest.fixture
def task():
    return search_tasks(config())[0]


def test_tasks_and_spaces_per_mode():
    match = config()
    names = [t.name for t in search_tasks(match)]
    assert names == ["coolchic-v1/lc_ssim/0.5bpp", "coolchic-v1/mse/0.5bpp",
                     "nif/lc_ssim/0.5bpp", "nif/mse/0.5bpp"]  # fmt: skip
    lc_ssim, mse = search_tasks(match)[:2]
    assert task_space(lc_ssim, match.search) == {"alpha": FloatDistribution(0.0, 1.0)}
    assert task_space(mse, match.search) == {} and mse.budget(match.search) == 1  # no α: one sample
    two_targets = [t.name for t in search_tasks(config(targets_bpp=[0.25, 0.5]))][:2]
    assert two_targets == ["coolchic-v1/lc_ssim/0.25bpp", "coolchic-v1/lc_ssim/0.5bpp"]

    pareto = config(targets_bpp=[], mode="pareto", alpha=[0, 0.5])
    coolchic, _, nif, _ = search_tasks(pareto)
    assert coolchic.name == "coolchic-v1/lc_ssim/pareto"
    space = task_space(coolchic, pareto.search)
    assert space["rate"] == FloatDistribution(1e-4, 2e-2, log=True)
    assert space["alpha"] == FloatDistribution(0.0, 0.5)
    assert isinstance(task_space(nif, pareto.search)["rate"], CategoricalDistribution)


def test_an_alpha_grid_measures_each_value_once_across_interrupted_runs():
    grid = config(alphas={"lc_ssim": [0.0, 0.01, 0.1]}, trials=20)
    task = search_tasks(grid)[0]
    assert task.budget(grid.search) == 3 and search_tasks(grid)[1].budget(grid.search) == 1
    study = optuna.create_study(direction="maximize")
    enqueue_grid(study, task, grid.search)
    space = task_space(task, grid.search)
    first, second = study.ask(space), study.ask(space)
    study.tell(first, 1.0)  # the driver is killed while `second` runs
    assert finished_samples(study) == 1  # `second` is now failed, so its α is queued again
    enqueue_grid(study, task, grid.search)
    asked = sorted(study.ask(space).params["alpha"] for _ in range(2))
    assert asked == sorted({0.0, 0.01, 0.1} - {first.params["alpha"]})
    assert second.params["alpha"] in asked
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert waiting == []  # nothing queued twice

    for bad, message in (
        ({"mse": [0.1]}, "not a loss family with an α"),
        ({"lc_ssim": [0.1, 0.1]}, "distinct"),
        ({"lc_ssim": [1.5]}, r"must lie in \[0, 1\]"),
        ({"l1_ssim": [0.2]}, "not among the study's losses"),
    ):
        with pytest.raises(StudyConfigError, match=message):
            config(alphas=bad)


def test_further_seeds_are_for_matches():
    with pytest.raises(StudyConfigError, match="jump_seeds: further seeds are for matches"):
        config(targets_bpp=[], mode="pareto", jump_seeds=1)


def test_a_searched_alpha_range_lies_in_every_searched_family_s_own():
    assert config(alpha=[0.0, 0.5]).search.alpha == (0.0, 0.5)
    for bounds, message in (
        ([0.5, 1.5], r"lc_ssim's α lies in \[0, 1\]"),
        ([0.5, 0.2], "low < high"),
    ):
        with pytest.raises(StudyConfigError, match=message):
            config(alpha=bounds)


def test_a_run_picks_whole_tasks_and_leaves_the_others_pending():
    grid = config(alphas={"lc_ssim": [0.0, 0.01, 0.1]})
    tasks = search_tasks(grid)
    studies = {t.name: optuna.create_study(direction="maximize") for t in tasks}
    for task in tasks:
        enqueue_grid(studies[task.name], task, grid.search)
    first = studies[tasks[0].name]
    first.tell(first.ask(task_space(tasks[0], grid.search)), 1.0)

    picked = select(tasks, parse_where("codec=coolchic-v1"), TASK_FIELDS, "search task")
    assert samples_to_run(tasks, studies, grid.search, picked) == {
        "coolchic-v1/lc_ssim/0.5bpp": 2,  # one of its three α measured already
        "coolchic-v1/mse/0.5bpp": 1,
        "nif/lc_ssim/0.5bpp": 0,
        "nif/mse/0.5bpp": 0,
    }
    one = parse_where("search=nif/mse/0.5bpp,search=coolchic-v1/mse/0.5bpp")
    assert [t.name for t in select(tasks, one, TASK_FIELDS)] == [
        "coolchic-v1/mse/0.5bpp",
        "nif/mse/0.5bpp",
    ]
    lc_of_nif = parse_where("codec=nif,family=lc_ssim")
    assert [t.name for t in select(tasks, lc_of_nif, TASK_FIELDS)] == ["nif/lc_ssim/0.5bpp"]
    for where, message in (
        ("image=kodim01", "a search task has no field 'image'; give one of codec, family, search"),
        ("codec=c3", "codec=c3 matches no search task of the study; its codec values: "
                     "coolchic-v1, nif"),
        ("codec", "--where 'codec': expected FIELD=VALUE"),
    ):  # fmt: skip
        with pytest.raises(SelectionError, match=message):
            select(tasks, parse_where(where), TASK_FIELDS, "search task")


def fit(alpha, image, bpp, psnr):
    """A finished fit of the task ``coolchic-v1/lc_ssim/0.5bpp``, as the run store gives it."""
    return {
        "search": "coolchic-v1/lc_ssim/0.5bpp",
        "codec": "coolchic-v1",
        "trial_key": f"{alpha}-{image}-{bpp}",
        "alpha": alpha,
        "image": image,
        "bpp": bpp,
        "psnr": psnr,
    }


def test_the_recommended_alpha_wins_at_matched_rate(task):
    runs = [
        fit(0.1, "a", 0.51, 30.0), fit(0.1, "b", 0.49, 32.0),
        fit(0.2, "a", 0.50, 31.0), fit(0.2, "b", 0.50, 32.5),
        fit(0.3, "a", 0.52, 35.0), fit(0.3, "b", 0.70, 36.0),  # off target on b
        fit(0.2, "a", 0.9, 40.0),  # a probe farther from the target: not the matched fit
    ]  # fmt: skip
    best = recommend(task, runs, "psnr", 0.05)
    assert best.reached and best.alpha == 0.2 and best.value == pytest.approx(31.75)
    assert best.samples == 3 and best.on_target == 2
    assert "α=0.2 wins at matched rate" in best.describe() and "so far" not in best.describe()
    grid = {task.family: [0.1, 0.2, 0.3, 0.4]}  # 0.3 off target on b, 0.4 not fitted
    assert (
        "(best of 2 α on target, 3 measured, of 4 planned: the best so far)"
        in recommend(task, runs, "psnr", 0.05, grid=grid).describe()
    )
    assert recommend(task, runs, "psnr", 0.05, images=["a", "b", "c"]) is None  # none on all


def test_the_recommendation_says_when_no_alpha_reached_the_target(task):
    runs = [fit(0.1, "a", 0.8, 30.0), fit(0.2, "a", 0.6, 29.0)]
    best = recommend(task, runs, "psnr", 0.05)
    assert not best.reached and best.bpp == 0.6
    assert "target not reached" in best.describe()


def test_run_image_matches_the_rate_with_the_fits_it_is_given(task):
    search = config().search
    fitted = []

    def fake_fit(spec):
        fitted.append(spec)
        return {"bpp": 0.05 + 0.3 * (spec.rate / 1e-3) ** -0.6, "psnr": 30.0}

    outcome = run_image(task, {"alpha": 0.123456}, "kodim01", fake_fit, search=search,
                        metric="psnr", variant="")  # fmt: skip
    assert outcome.reached and abs(outcome.bpp / 0.5 - 1) <= 0.05
    assert outcome.fits == len(fitted) <= search.fit_budget
    assert {s.loss for s in fitted} == {"lc_ssim(0.1235)"}
    assert {s.search for s in fitted} == {"coolchic-v1/lc_ssim/0.5bpp"}
    assert outcome.key == fitted[-1].key


def test_a_match_at_the_one_width_an_entry_lists_fits_it_once():
    """NIF's widths set its rate: an entry listing one width compares α at that width, the
    match checking the rate against the target and trying no other width."""
    study = parse_config(
        {
            "name": "s",
            "codecs": [{"name": "nif", "configs": ["0_31"]}],
            "losses": ["lc_ssim"],
            "search": {"targets_bpp": [1.8], "alphas": {"lc_ssim": [0.0, 0.01]}},
        }
    )
    (task,) = search_tasks(study)
    assert task.rate_axis.choices == ("0_31",)
    for bpp, reached in ((1.76, True), (2.3, False)):
        fitted = []

        def fake_fit(spec, bpp=bpp, fitted=fitted):
            fitted.append(spec.rate)
            return {"bpp": bpp, "psnr": 30.0}

        outcome = run_image(task, {"alpha": 0.01}, "kodim01", fake_fit, search=study.search,
                            metric="psnr", variant="")  # fmt: skip
        assert fitted == ["0_31"] and outcome.reached is reached


def record(spec, bpp):
    """A finished fit as the study's records hold it."""
    return {**spec.params(), "rate": spec.rate, "trial_key": spec.key, "bpp": bpp, "psnr": 30.0}


def test_a_match_starts_from_the_image_s_earlier_fits_and_a_resumed_one_refits_nothing(task):
    search = config().search

    def bpp(spec):
        return 0.05 + 0.3 * (spec.rate / 1e-3) ** -0.6

    def matched(sample, earlier):
        fitted = []

        def fake_fit(spec):
            fitted.append(spec)
            return {"bpp": bpp(spec), "psnr": 30.0}

        outcome = run_image(task, sample, "kodim01", fake_fit, search=search,
                            metric="psnr", variant="", earlier=earlier)  # fmt: skip
        return outcome, fitted

    first, first_fits = matched({"alpha": 0.1}, ())
    assert first.reached and len(first_fits) >= 3
    earlier = [record(spec, bpp(spec)) for spec in first_fits]
    # The same match again (a resumed sample): its own fits are observed, none refitted.
    again, again_fits = matched({"alpha": 0.1}, earlier)
    assert again_fits == [] and again.key == first.key and again.fits == len(first_fits)
    # A neighbouring α: the first fit goes where α 0.1's fits cross the target.
    near, near_fits = matched({"alpha": 0.12}, earlier)
    assert near.reached and len(near_fits) == 1 and near_fits[0].loss == "lc_ssim(0.12)"
    # Fits of another preset, image or crop are no hints.
    for field, value in (("preset", "paper"), ("image", "kodim02"), ("image_variant", "64px")):
        foreign = [{**r, field: value} for r in earlier]
        assert len(matched({"alpha": 0.12}, foreign)[1]) == len(first_fits)


def jumpy_bpp(spec):
    """A rate curve whose file size jumps across 0.5 bpp: at λ 5.1e-4 for seed 0 (0.575 → 0.425
    there), at 1.5 times that for seed 1, whose curve crosses 0.5 bpp smoothly at λ 6.6e-4."""
    smooth = 0.05 + 0.3 * (spec.rate / 1e-3) ** -0.6
    jump = 5.09e-4 * 1.5**spec.seed
    return smooth * (1.15 if spec.rate < jump else 0.85)


def test_a_match_the_rate_jumps_across_goes_on_with_the_next_seed(task):
    def matched(jump_seeds, earlier=()):
        search = config(jump_seeds=jump_seeds).search
        fitted = []

        def fake_fit(spec):
            fitted.append(spec)
            return {"bpp": jumpy_bpp(spec), "psnr": 30.0}

        outcome = run_image(task, {"alpha": 0.1}, "kodim01", fake_fit, search=search,
                            metric="psnr", variant="", earlier=earlier)  # fmt: skip
        return outcome, fitted

    stuck, seed_0 = matched(0)  # closing in on the jump until its budget ends
    assert not stuck.reached and {s.seed for s in seed_0} == {0}
    landed, more = matched(1, [record(spec, jumpy_bpp(spec)) for spec in seed_0])
    assert landed.reached and {s.seed for s in more} == {1}  # seed 0's fits replayed, not refitted
    assert len(more) <= 3  # aimed at the jump by seed 0's fits
    assert landed.key == more[-1].key and landed.fits == len(seed_0) + len(more)


def test_finished_matches_further_seeds_would_take_on_are_queued_again(task):
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask({"alpha": FloatDistribution(0.0, 1.0)}), 1.0)  # α drawn at random
    alpha = study.trials[0].params["alpha"]
    fits = []
    run_image(task, {"alpha": alpha}, "kodim01",
              lambda spec: fits.append(spec) or {"bpp": jumpy_bpp(spec), "psnr": 30.0},
              search=config().search, metric="psnr", variant="")  # fmt: skip
    records = [record(spec, jumpy_bpp(spec)) for spec in fits]
    args = (task, records, config(jump_seeds=1).search, ["kodim01"], "")
    assert reopen_matches(study, *args) == 1
    assert reopen_matches(study, *args) == 1  # waiting already: counted, not queued twice
    waiting = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in waiting] == [{"alpha": alpha}]
    # Seeds off again: the re-run still waits (Optuna asks it first), so it is still counted.
    assert reopen_matches(study, task, records, config().search, ["kodim01"], "") == 1
    # A raised budget would refit seed 0, not a further seed: nothing is queued for it.
    more_budget = config(jump_seeds=1, fit_budget=12).search
    assert reopen_matches(study, task, records, more_budget, ["kodim01"], "") == 1
    # The re-run done: no new sample of the budget.
    study.tell(study.ask({"alpha": FloatDistribution(0.0, 1.0)}), 1.0)
    assert finished_samples(study) == 1


def test_sample_results_score_at_matched_rate(task):
    outcomes = [ImageOutcome("a", "k1", 0.5, 30.0, 3), ImageOutcome("b", "k2", 0.49, 32.0, 4)]
    result = sample_result(task, outcomes, "psnr", 0.05)
    assert result["objective"] == 31.0 and result["on_target"] and result["fits"] == 7
    off = [*outcomes[:1], ImageOutcome("b", "k2", 0.1, 40.0, 8, False, "unreachable: at λ")]
    result = sample_result(task, off, "psnr", 0.05)
    assert result["objective"] < 31.0 and not result["on_target"]
    assert result["unreachable"] == "b: unreachable: at λ"


def test_the_pareto_front_keeps_only_undominated_samples(task):
    runs = [
        {"alpha": 0.1, "rate": 1e-3, "image": "a", "bpp": 0.5, "psnr": 30.0},
        {"alpha": 0.2, "rate": 1e-3, "image": "a", "bpp": 0.6, "psnr": 29.0},  # dominated
        {"alpha": 0.1, "rate": 1e-2, "image": "a", "bpp": 0.2, "psnr": 26.0},
        {"alpha": 0.3, "rate": 1e-4, "image": "a", "bpp": 1.5, "psnr": 35.0},
    ]
    front = pareto_front(task, runs, "psnr")
    assert [(p["bpp"], p["value"]) for p in front] == [(0.2, 26.0), (0.5, 30.0), (1.5, 35.0)]

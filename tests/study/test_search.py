"""The search's score and recommendation rules, without Ray."""

import pytest

from study.config import parse_config
from study.engine.search import recommend, score, search_tasks


def test_score_penalises_only_rate_outside_the_tolerance():
    assert score("psnr", 30.0, 1.04, 1.0, 0.05) == 30.0
    assert score("psnr", 30.0, 0.96, 1.0, 0.05) == 30.0
    assert score("psnr", 30.0, 1.2, 1.0, 0.05) < 30.0 - 10
    assert score("lpips", 0.1, 1.0, 1.0, 0.05) == -0.1  # lower is better


@pytest.fixture
def task():
    config = parse_config(
        {
            "name": "s",
            "codecs": [{"name": "coolchic-v1", "preset": "debug"}],
            "losses": ["lc_ssim"],
            "search": {"targets_bpp": [0.5]},
        }
    )
    [task] = search_tasks(config)
    return task


def sample(alpha, lmbda, bpp, psnr, image="a"):
    return {"alpha": alpha, "rate": lmbda, "bpp": bpp, "psnr": psnr, "image": image}


def test_recommendation_is_the_best_sample_on_target(task):
    runs = [
        sample(0.1, 1e-3, 0.51, 30.0),
        sample(0.2, 2e-3, 0.49, 31.0),
        sample(0.3, 3e-3, 0.70, 35.0),  # better but off target
    ]
    best = recommend(task, runs, "psnr", 0.05)
    assert best.reached and (best.alpha, best.rate_parameter, best.rate) == (0.2, "lmbda", 2e-3)
    assert "(best of 3 samples)" in best.describe()


def test_recommendation_says_when_no_sample_reached_the_target(task):
    best = recommend(
        task, [sample(0.1, 1e-3, 0.8, 30.0), sample(0.2, 2e-3, 0.6, 29.0)], "psnr", 0.05
    )
    assert not best.reached and best.bpp == 0.6
    assert "target not reached" in best.describe()


def test_samples_missing_an_image_are_not_compared(task):
    runs = [sample(0.1, 1e-3, 0.5, 30.0, "a"), sample(0.1, 1e-3, 0.5, 30.0, "b"),
            sample(0.2, 2e-3, 0.5, 40.0, "a")]  # fmt: skip
    best = recommend(task, runs, "psnr", 0.05)
    assert best.alpha == 0.1 and best.samples == 1


def test_search_specs_round_alpha_and_lambda(task):
    spec = task.trial_spec({"alpha": 0.123456, "rate": 0.00123456}, "kodim01", "", 0)
    assert spec.loss == "lc_ssim(0.1235)" and spec.rate == 0.001235
    assert spec.search == "coolchic-v1/lc_ssim/0.5bpp"

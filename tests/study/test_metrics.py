import math

import numpy as np
import pytest
import torch

from losses import networks
from study.results import metrics
from study.results.evaluation import evaluate
from study.results.metrics import (
    aggregate,
    lpips_distance,
    mean_of_images,
    ms_ssim_db,
    ms_ssim_rgb,
    psnr,
)


@pytest.fixture
def noisy256(crop256):
    noise = np.random.default_rng(0).normal(0, 6, crop256.shape)
    return np.clip(crop256 + noise, 0, 255).round().astype(np.uint8)


@pytest.fixture
def fresh_metric_state(monkeypatch):
    """Forget which one-time warnings were given and whether LPIPS could be built."""
    monkeypatch.setattr(metrics, "_warned", set())
    networks.forget_loaded()
    yield
    networks.forget_loaded()


def test_psnr_matches_its_formula(crop256, noisy256):
    mse = np.mean((crop256.astype(float) - noisy256.astype(float)) ** 2)
    assert psnr(crop256, noisy256) == pytest.approx(10 * math.log10(255**2 / mse), rel=1e-12)
    assert psnr(crop256, crop256) == math.inf


def test_ms_ssim_and_its_db_form(crop256, noisy256):
    value = ms_ssim_rgb(crop256, noisy256)
    assert 0.9 < value < 1
    assert ms_ssim_db(value) == pytest.approx(-10 * math.log10(1 - value))
    assert ms_ssim_db(1.0) == math.inf


def test_ms_ssim_on_a_small_image_is_missing_with_one_warning(crop64, fresh_metric_state, caplog):
    assert ms_ssim_rgb(crop64, crop64) is None
    assert ms_ssim_rgb(crop64, crop64) is None
    warnings = [r for r in caplog.records if "MS-SSIM needs a short side" in r.message]
    assert len(warnings) == 1
    assert "64x64 get MS-SSIM recorded as missing" in warnings[0].message
    result = evaluate(crop64, crop64, optional=False)
    assert result["ms_ssim"] is None and result["ms_ssim_db"] is None and result["ssim"] == 1.0


def test_lpips_without_weights_is_missing_with_one_warning(
    crop64, without_weights, fresh_metric_state, caplog
):
    assert lpips_distance(crop64, crop64) is None
    assert evaluate(crop64, crop64)["lpips"] is None
    warnings = [r for r in caplog.records if "LPIPS is recorded as missing" in r.message]
    assert len(warnings) == 1
    assert "alexnet.pt is missing" in warnings[0].message
    assert "inr-study fetch weights" in warnings[0].message


def test_lpips_plumbing_with_a_random_backbone(crop64):
    """Scaling and shapes only: a random-backbone model is never reported as LPIPS."""
    import lpips

    torch.manual_seed(0)
    model = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False).eval()
    assert lpips_distance(crop64, crop64, model=model) == pytest.approx(0.0, abs=1e-7)
    assert lpips_distance(crop64, 255 - crop64, model=model) > 0


def test_mismatched_sizes_are_an_error(crop64, crop256):
    with pytest.raises(ValueError, match=r"image sizes differ"):
        psnr(crop64, crop256)


def test_dataset_value_is_mean_of_per_image_values():
    rows = [{"psnr": 30.0, "ms_ssim_db": 10.0}, {"psnr": 32.0, "ms_ssim_db": 20.0}]
    assert aggregate(rows, ["psnr", "ms_ssim_db"]) == {"psnr": 31.0, "ms_ssim_db": 15.0}
    assert mean_of_images([1.0, None]) is None


def test_ms_ssim_db_is_labelled_with_its_definition():
    from study.results.table import get_metric

    # MS-SSIM 0.9 and 0.99: the mean of per-image dB (15) is what the label says, not the dB of
    # the mean MS-SSIM (12.6, CompressAI's plotter's conversion).
    rows = [{"ms_ssim_db": ms_ssim_db(0.9)}, {"ms_ssim_db": ms_ssim_db(0.99)}]
    assert aggregate(rows, ["ms_ssim_db"])["ms_ssim_db"] == pytest.approx(15.0)
    metric = get_metric("ms_ssim_db")
    assert metric.axis_label == "MS-SSIM (dB = −10·log₁₀(1 − MS-SSIM) of each image)"
    assert metric.definition_sentence() == (
        "MS-SSIM dB (msssim-db-rgb) = −10·log₁₀(1 − MS-SSIM) of each image, then the mean of "
        "per-image dB values (not the dB of the mean MS-SSIM)."
    )
    assert get_metric("psnr").axis_label == "PSNR (dB)" and not get_metric("psnr").definition
    assert get_metric("lpips").axis_label == "LPIPS (lower is better)"


def test_evaluate_without_weights_prints_json_with_lpips_missing(
    crop64, write_png, without_weights, fresh_metric_state, capsys
):
    import json

    from study.cli import main

    image = str(write_png(crop64))
    assert main(["evaluate", image, image]) == 0
    assert json.loads(capsys.readouterr().out)["lpips"] is None

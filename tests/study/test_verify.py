"""Re-scored figures against recorded ones: each metric's declared tolerance."""

import math

from study.engine.verify import mismatch, same_value


def test_psnr_keeps_its_declared_absolute_tolerance_and_the_float32_metrics_a_relative_one():
    assert same_value(30.00009, 30.0, "psnr") and not same_value(30.0002, 30.0, "psnr")
    assert same_value(math.inf, math.inf, "psnr") and not same_value(60.0, math.inf, "psnr")
    # One float32 step of MS-SSIM at 0.999 is 2.6e-4 dB (30 dB): within 1e-5 relative.
    assert same_value(30.00026, 30.0, "ms_ssim_db") and not same_value(30.001, 30.0, "ms_ssim_db")


def test_the_first_disagreeing_metric_is_named_with_both_values():
    recorded = {"psnr": 30.0, "lpips": 0.1}
    assert mismatch({"psnr": 30.00005, "lpips": 0.1000001}, recorded) is None
    assert mismatch({"psnr": 30.0, "lpips": 0.12}, recorded) == (
        "LPIPS 0.12 from the decoded file, 0.1 recorded"
    )
    assert mismatch({"ssim": 0.5}, recorded) is None  # nothing recorded to compare with

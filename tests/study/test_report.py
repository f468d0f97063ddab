"""Reports: dataset-mean R-D points and BD-rate against each codec's original loss."""

import math

import pytest

from study.results.report import bd_rate, bd_rate_rows, rd_points


def record(codec, loss, lmbda, image, bpp, psnr, lpips=None):
    return {
        "codec": codec,
        "loss": loss,
        "rate_parameter": "lmbda",
        "lmbda": lmbda,
        "rate": lmbda,
        "image": image,
        "bpp": bpp,
        "psnr": psnr,
        "ms_ssim_db": psnr / 2,
        "lpips": lpips,
    }


def test_rd_points_are_means_over_all_images_only():
    records = [
        record("coolchic-v1", "mse", 1e-3, "a", 1.0, 30.0),
        record("coolchic-v1", "mse", 1e-3, "b", 2.0, 34.0),
        record("coolchic-v1", "mse", 4e-3, "a", 0.5, 27.0),  # image b missing at this λ
    ]
    [point] = rd_points(records)["coolchic-v1__mse"]
    assert point["setting"] == 1e-3
    assert point["bpp"] == 1.5 and point["psnr"] == 32.0


def curve(loss, factor, lpips=True):
    """A log-linear R-D curve; ``factor`` scales the rate at every quality."""
    out = []
    for i, lmbda in enumerate((1e-2, 4e-3, 1e-3, 1e-4)):
        quality = 26.0 + 3 * i
        bpp = factor * 0.25 * 2**i
        out.append(
            {"bpp": bpp, "psnr": quality, "ms_ssim_db": quality / 2, "lpips": 0.5 / (i + 1)}
            | ({} if lpips else {"lpips": None})
            | {"setting": lmbda, "loss": loss}
        )
    return out


def test_bd_rate_recovers_a_known_rate_saving():
    anchor, better = curve("mse", 1.0), curve("l1", 0.8)
    assert bd_rate(anchor, better, "psnr") == pytest.approx(-20.0, abs=0.01)
    assert bd_rate(anchor, better, "lpips") == pytest.approx(-20.0, abs=0.01)  # lower is better
    assert bd_rate(anchor, curve("x", 1.0, lpips=False), "lpips") is None
    assert bd_rate(anchor[:1], better, "psnr") is None


def test_bd_rate_is_none_without_overlap():
    far = [p | {"psnr": p["psnr"] + 40} for p in curve("l1", 1.0)]
    assert bd_rate(curve("mse", 1.0), far, "psnr") is None


def test_bd_rate_rows_compare_each_loss_with_the_codecs_original_loss():
    curves = {
        "coolchic-v1__mse": curve("mse", 1.0),
        "coolchic-v1__l1": curve("l1", 1.1),
        "nif__mse": curve("mse", 1.0),  # NIF's anchor (lc_ssim(0.01)) is absent: no row
        "jpeg": curve(None, 2.0),
    }
    [row] = bd_rate_rows(curves)
    assert (row["codec"], row["loss"], row["anchor"]) == ("coolchic-v1", "l1", "mse")
    assert math.isclose(row["bd_rate_psnr"], 10.0, abs_tol=0.01)

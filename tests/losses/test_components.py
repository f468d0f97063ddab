# SSIM tolerances are 1e-6 relative: pytorch_msssim builds its Gaussian window in float32.

"""Loss values against independent float64 formulas, under every convention."""

import math

import numpy as np
import pytest
import torch

from losses import COOLCHIC, NIF, PLAIN, available_components, build_loss, component_info


def gaussian_window(size=11, sigma=1.5):
    x = np.arange(size) - size // 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def blur_valid(channel: np.ndarray) -> np.ndarray:
    g = gaussian_window()
    rows = np.apply_along_axis(lambda r: np.convolve(r, g, mode="valid"), 1, channel)
    return np.apply_along_axis(lambda c: np.convolve(c, g, mode="valid"), 0, rows)


def reference_ssim(x: np.ndarray, y: np.ndarray, data_range=1.0) -> float:
    """Gaussian SSIM (11 taps, σ 1.5, K = 0.01/0.03), valid filtering, mean over map, channels."""
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    values = []
    for a, b in zip(x, y, strict=True):
        mu_a, mu_b = blur_valid(a), blur_valid(b)
        var_a = blur_valid(a * a) - mu_a**2
        var_b = blur_valid(b * b) - mu_b**2
        cov = blur_valid(a * b) - mu_a * mu_b
        ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
            (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
        )
        values.append(ssim_map.mean())
    return float(np.mean(values))


def reference_terms(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Independent values on [0, 1] inputs (C, H, W) in float64."""
    d = x - y
    return {
        "l1": np.abs(d).mean(),
        "mse": (d**2).mean(),
        "logcosh": np.log(np.cosh(d)).mean(),
        "ssim": 1 - reference_ssim(x, y),
    }


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(0)
    target = torch.rand(3, 48, 48, generator=generator, dtype=torch.float64)
    noise = 0.1 * torch.randn(3, 48, 48, generator=generator, dtype=torch.float64)
    return (target + noise).clamp(0, 1), target


@pytest.mark.parametrize("name", ["l1", "mse", "logcosh", "ssim"])
def test_plain_components_match_formulas(pair, name):
    x, y = pair
    expected = reference_terms(x.numpy(), y.numpy())[name]
    assert float(build_loss(name)(x, y)) == pytest.approx(expected, rel=1e-6, abs=1e-12)


def test_ms_ssim_component_is_one_minus_ms_ssim(crop256):
    from pytorch_msssim import ms_ssim

    y = torch.tensor(crop256).permute(2, 0, 1).double() / 255
    x = (y + 0.05 * torch.randn_like(y)).clamp(0, 1)
    expected = 1 - float(ms_ssim(x[None], y[None], data_range=1.0))
    assert float(build_loss("ms_ssim")(x, y)) == pytest.approx(expected, rel=1e-6)


def test_ms_ssim_on_small_image_says_what_is_needed(pair):
    with pytest.raises(ValueError, match=r"short side of at least 161 px"):
        build_loss("ms_ssim")(*pair)


@pytest.mark.parametrize("alpha", [0.0, 0.01, 0.2, 1.0])
def test_coolchic_convention_is_mean_of_weighted_terms_on_unit_range(pair, alpha):
    x, y = pair
    t = reference_terms(x.numpy(), y.numpy())
    lc = build_loss(f"lc_ssim({alpha})", COOLCHIC)(x, y)
    l1s = build_loss(f"l1_ssim({alpha})", COOLCHIC)(x, y)
    assert float(lc) == pytest.approx((t["logcosh"] + alpha * t["ssim"]) / 2, rel=1e-6)
    assert float(l1s) == pytest.approx(((1 - alpha) * t["l1"] + alpha * t["ssim"]) / 2, rel=1e-6)


def test_coolchic_paper_weights_as_run(pair):
    """reference-codecs.md §1: LcSSIM = 0.5·LC + 0.005·DSSIM, L1SSIM = 0.4·L1 + 0.1·DSSIM."""
    x, y = pair
    t = reference_terms(x.numpy(), y.numpy())
    assert float(build_loss("lc_ssim", COOLCHIC)(x, y)) == pytest.approx(
        0.5 * t["logcosh"] + 0.005 * t["ssim"], rel=1e-6
    )
    assert float(build_loss("l1_ssim", COOLCHIC)(x, y)) == pytest.approx(
        0.4 * t["l1"] + 0.1 * t["ssim"], rel=1e-6
    )


def polyphase_dssim(x: np.ndarray, y: np.ndarray) -> float:
    subs = [(x[:, i::2, j::2], y[:, i::2, j::2]) for i in (0, 1) for j in (0, 1)]
    return float(np.mean([1 - reference_ssim(a, b) for a, b in subs]))


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
def test_nif_convention_sums_terms_on_signed_range_with_polyphase_ssim(pair, alpha):
    x, y = (t.numpy() for t in pair)
    xs, ys = 2 * x - 1, 2 * y - 1  # NIF's [-1, 1]
    d = xs - ys
    dssim = polyphase_dssim(x, y)  # SSIM of [-1, 1] data mapped to [0, 255] == unit range
    expected = {
        "l1": np.abs(d).mean(),
        "mse": (d**2).mean(),
        "logcosh": np.log(np.cosh(d)).mean(),
        f"lc_ssim({alpha})": np.log(np.cosh(d)).mean() + alpha * dssim,
        f"l1_ssim({alpha})": (1 - alpha) * np.abs(d).mean() + alpha * dssim,
    }
    for spec, value in expected.items():
        assert float(build_loss(spec, NIF)(*pair)) == pytest.approx(value, rel=1e-6), spec


def test_plain_composite_is_weighted_sum(pair):
    x, y = pair
    t = reference_terms(x.numpy(), y.numpy())
    loss = build_loss("l1:0.8+ssim:0.2+mse:3", PLAIN)
    assert float(loss(x, y)) == pytest.approx(0.8 * t["l1"] + 0.2 * t["ssim"] + 3 * t["mse"])


@pytest.mark.parametrize("convention", [PLAIN, COOLCHIC, NIF])
@pytest.mark.parametrize("spec", [*available_components(), "lc_ssim", "l1_ssim"])
def test_gradients_are_finite(convention, spec, kodim01, monkeypatch):
    if spec in available_components() and component_info(spec).networks:
        # No pretrained weights offline: the plumbing with untrained stand-ins.
        from tests.losses.test_perceptual import use_stand_in_networks

        use_stand_in_networks(monkeypatch)
    # MS-SSIM on NIF's polyphase sub-images needs a full image side of 2 × 161 px, WD 2 × 64.
    side = {"ms_ssim": 352, "wd": 128}.get(spec, 64)
    target = torch.tensor(kodim01[:side, :side]).permute(2, 0, 1).float() / 255
    x = (target + 0.05 * torch.randn_like(target)).clamp(0, 1).requires_grad_()
    build_loss(spec, convention)(x, target).backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_logcosh_is_finite_for_huge_residuals():
    x = torch.tensor([1e4, -1e4, 0.0], requires_grad=True)
    value = build_loss("logcosh")(x.view(1, 1, 1, 3), torch.zeros(1, 1, 1, 3))
    value.backward()
    expected = (2 * (1e4 - math.log(2)) + 0.0) / 3  # log cosh d ≈ |d| − ln 2 for large |d|
    assert value.item() == pytest.approx(expected, rel=1e-6)
    assert torch.isfinite(x.grad).all()

"""Perceptual loss terms: LPIPS through the metric's own network loader, MS-SSIM as a family, and
the checks that stop a study before a fit when a term cannot train on its images."""

from functools import cache

import lpips
import numpy as np
import pytest
import torch

from losses import COOLCHIC, NIF, PLAIN, build_loss, get_family, networks
from losses.networks import WeightsUnavailable


@cache
def _stand_ins() -> dict[str, torch.nn.Module]:
    """Untrained stand-ins for every pretrained network (built once: VGG-16 is large): LPIPS's
    published linear heads over untrained backbones, and VGG-16's feature layers."""
    import torchvision

    torch.manual_seed(0)
    models = {
        net: lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval().requires_grad_(False)
        for net in ("alex", "vgg")
    }
    vgg = torchvision.models.vgg.make_layers(torchvision.models.vgg.cfgs["D"])
    return models | {"vgg16": vgg[: networks.VGG_CUTS["relu5_3"] + 1].eval().requires_grad_(False)}


def use_stand_in_networks(monkeypatch) -> dict[str, torch.nn.Module]:
    """Plumbing tests on this offline machine; real runs refuse to start without the published
    weights."""
    models = _stand_ins()
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: models[net])
    cuts = {through: models["vgg16"][: last + 1] for through, last in networks.VGG_CUTS.items()}
    monkeypatch.setattr(networks, "_vgg16_or_reason", lambda through="relu4_3": cuts[through])
    return models


@pytest.fixture
def stand_in_lpips(monkeypatch):
    return use_stand_in_networks(monkeypatch)


@pytest.fixture
def pair():
    generator = torch.Generator().manual_seed(1)
    target = torch.rand(1, 3, 64, 64, generator=generator)
    noisy = (target + 0.1 * torch.randn(target.shape, generator=generator)).clamp(0, 1)
    return noisy, target


@pytest.mark.parametrize(("component", "net"), [("lpips", "alex"), ("lpips_vgg", "vgg")])
def test_lpips_term_is_the_networks_distance_on_its_input_range(
    stand_in_lpips, pair, component, net
):
    x, y = pair
    expected = stand_in_lpips[net](2 * x - 1, 2 * y - 1).mean()  # LPIPS reads [-1, 1]
    assert build_loss(component)(x, y).item() == pytest.approx(expected.item(), rel=1e-6)
    # NIF's convention hands the term [-1, 1] values: the same distance, per polyphase sub-image.
    subs = [stand_in_lpips[net](2 * x[..., i::2, j::2] - 1, 2 * y[..., i::2, j::2] - 1).mean()
            for i in (0, 1) for j in (0, 1)]  # fmt: skip
    nif = build_loss(component, NIF)(x, y).item()
    assert nif == pytest.approx(torch.stack(subs).mean().item(), rel=1e-5)


def test_mse_lpips_family_mixes_the_terms(stand_in_lpips, pair):
    x, y = pair
    loss = build_loss("mse_lpips(0.05)", PLAIN)
    terms = loss.term_values(x, y)
    assert loss(x, y).item() == pytest.approx((terms["mse"] + 0.05 * terms["lpips_vgg"]).item())
    x = x.clone().requires_grad_()
    loss(x, y).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in stand_in_lpips["vgg"].parameters())


def test_without_weights_the_term_fails_loudly_and_says_which_file(monkeypatch, pair):
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: "no network here")
    loss = build_loss("mse:1+lpips_vgg:0.1")
    [problem] = loss.problems(64, 64)
    assert "lpips_vgg term cannot be computed on this machine: no network here" in problem
    with pytest.raises(WeightsUnavailable, match="LPIPS"):
        loss(*pair)


def test_size_limits_follow_the_convention():
    assert build_loss("ms_ssim").problems(256, 300) == []
    [problem] = build_loss("ms_ssim", NIF).problems(256, 300)
    assert "at least 161 px, got 128 per polyphase sub-image" in problem
    [problem] = build_loss("l1_ssim").problems(8, 64)
    assert "its ssim term needs a short side of at least 11 px, got 8" in problem


def test_new_families_are_declared_for_the_dashboards():
    ms_ssim, mse_lpips = get_family("ms_ssim"), get_family("mse_lpips")
    assert ms_ssim.structural and not ms_ssim.takes_alpha
    assert mse_lpips.structural and mse_lpips.alpha_default == 0.01


def test_wasserstein_at_log2_sigma_0_is_the_feature_mse():
    from losses.wasserstein import map_distortion

    generator = torch.Generator().manual_seed(2)
    x, y = (
        torch.rand(2, 3, 20, 24, generator=generator),
        torch.rand(2, 3, 20, 24, generator=generator),
    )
    assert map_distortion(x, y, 0.0).item() == pytest.approx((x - y).square().mean().item())


def test_wasserstein_at_log2_sigma_1_between_constant_images():
    """One blur level: each pixel's local Gaussian has mean w·a and variance w(1 − w)·a², w the
    blur mass inside the image (1 inside, 3/4 on an edge, 9/16 in a corner), so its 2-Wasserstein
    distance to b's is w·(a − b)²; the mean over the image is (a − b)²·(1 − 1/2H)·(1 − 1/2W)."""
    from losses.wasserstein import map_distortion

    a, b, h, w = 0.7, 0.2, 20, 24
    x, y = torch.full((1, 1, h, w), a, dtype=torch.float64), torch.full((1, 1, h, w), b).double()
    expected = (a - b) ** 2 * (1 - 0.5 / h) * (1 - 0.5 / w)
    assert map_distortion(x, y, 1.0).item() == pytest.approx(expected, rel=1e-6)


def test_wasserstein_term_reads_four_vgg_maps_and_passes_gradients(monkeypatch):
    from losses.wasserstein import VGG_MAPS, map_distortion

    stand_in = use_stand_in_networks(monkeypatch)["vgg16"]
    generator = torch.Generator().manual_seed(3)
    y = torch.rand(1, 3, 48, 48, generator=generator)
    x = (y + 0.1 * torch.randn(y.shape, generator=generator)).clamp(0, 1).requires_grad_()
    value = build_loss("wasserstein")(x, y)
    maps = [stand_in[: i + 1] for i in VGG_MAPS]
    expected = sum(map_distortion(m(x), m(y)) for m in maps)
    assert value.item() == pytest.approx(expected.item(), rel=1e-5)
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert get_family("mse_wasserstein").alpha_default == pytest.approx(0.004 / 0.2)


@pytest.mark.parametrize("convention", [PLAIN, COOLCHIC])
def test_cool_chic_5s_wasserstein_weighs_its_terms_as_it_does_under_any_convention(
    monkeypatch, convention
):
    use_stand_in_networks(monkeypatch)
    generator = torch.Generator().manual_seed(5)
    y = torch.rand(1, 3, 48, 48, generator=generator)
    x = (y + 0.1 * torch.randn(y.shape, generator=generator)).clamp(0, 1)
    mse, wd = (float(build_loss(name)(x, y)) for name in ("mse", "wasserstein"))
    cc5 = build_loss("cc5_wasserstein", convention)
    assert float(cc5(x, y)) == pytest.approx(0.2 * mse + 0.004 * wd, rel=1e-6)  # summed
    assert cc5.warm_up_loss.name == "mse"  # its warm-up candidates train on MSE alone
    # Ours averages under ``coolchic``: the same terms at half their summed weight.
    ours = build_loss("mse_wasserstein", convention)
    fold = 0.5 if convention is COOLCHIC else 1.0
    assert float(ours(x, y)) == pytest.approx(fold * (mse + 0.02 * wd), rel=1e-6)
    assert ours.warm_up_loss is ours


def test_wasserstein_computes_each_targets_features_once_per_fit(monkeypatch):
    """Under NIF's convention the target reaches the term rescaled and split into four polyphase
    sub-images, as new tensors every step: their VGG maps are still computed once each."""
    first_layer = use_stand_in_networks(monkeypatch)["vgg16"][0]
    forwards = []
    handle = first_layer.register_forward_hook(lambda *_: forwards.append(1))
    generator = torch.Generator().manual_seed(4)
    target = torch.rand(1, 3, 96, 96, generator=generator)
    loss = build_loss("mse_wasserstein", NIF)
    try:
        for _ in range(3):
            loss(torch.rand(1, 3, 96, 96, generator=generator), target)
    finally:
        handle.remove()
    assert len(forwards) == 3 * 4 + 4  # every output's four sub-images, each target's once


def test_wasserstein_without_vgg_weights_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(networks, "_vgg16_or_reason", lambda *_: "no network here")
    [problem] = build_loss("mse_wasserstein").problems(256, 256)
    assert "wasserstein term cannot be computed on this machine: no network here" in problem
    with pytest.raises(WeightsUnavailable, match="VGG-16"):
        build_loss("wasserstein")(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32))


def _blur(plane: np.ndarray) -> np.ndarray:
    """3×3 binomial blur with zero padding, in float64 NumPy."""
    kernel = np.outer([0.25, 0.5, 0.25], [0.25, 0.5, 0.25])
    padded = np.pad(plane, 1)
    out = np.zeros_like(plane)
    for i in range(3):
        for j in range(3):
            out += kernel[i, j] * padded[i : i + plane.shape[0], j : j + plane.shape[1]]
    return out


def reference_map_distortion(x: np.ndarray, y: np.ndarray, log2_sigma: float) -> float:
    """Wasserstein distortion of two (H, W) planes, written from its definition: level weights
    relu(1 − |L_i − i|) with L_0 = L_1 = log2 σ and L_{i+1} the blurred, decimated L_i; level 0
    the squared difference, level k + 1 the squared differences of the local means and standard
    deviations after k + 1 blurs (the second moment carried down the pyramid)."""
    levels = [np.full(x.shape, log2_sigma)] * 2
    for _ in range(4):
        levels.append(_blur(levels[-1])[::2, ::2])
    weights = [np.maximum(0, 1 - np.abs(level - i)) for i, level in enumerate(levels)]
    total = (weights[0] * (x - y) ** 2).mean()
    moments = {"x": (x, x**2), "y": (y, y**2)}
    for k in range(5):
        stats = {}
        for name, (first, second) in moments.items():
            mean, mean_square = _blur(first), _blur(second)
            stats[name] = (mean, np.sqrt(np.maximum(mean_square - mean**2, 5e-7)))
            moments[name] = (mean[::2, ::2], mean_square[::2, ::2])
        (mx, sx), (my, sy) = stats["x"], stats["y"]
        total += (weights[k + 1] * ((mx - my) ** 2 + (sx - sy) ** 2)).mean()
    return float(total)


@pytest.mark.parametrize("log2_sigma", [2.0, 3.0, 1.5])
@pytest.mark.parametrize(("height", "width"), [(40, 56), (37, 29)])
def test_wasserstein_equals_its_definition_across_the_pyramid(log2_sigma, height, width):
    from losses.wasserstein import map_distortion

    rng = np.random.default_rng(4)
    x, y = rng.random((2, 1, height, width)), rng.random((2, 1, height, width))
    expected = np.mean([reference_map_distortion(x[c, 0], y[c, 0], log2_sigma) for c in (0, 1)])
    ours = map_distortion(torch.tensor(x).view(1, 2, height, width),
                          torch.tensor(y).view(1, 2, height, width), log2_sigma)  # fmt: skip
    assert ours.item() == pytest.approx(expected, rel=1e-10)


def test_wasserstein_trains_the_standard_deviations_too():
    """A checkerboard and a flat image have the same local means under the binomial blur, so away
    from the borders only the standard-deviation term separates them; its gradient must reach
    the image (Cool-Chic 5's clamp would stop it)."""
    from losses.wasserstein import map_distortion

    i, j = np.indices((32, 32))
    board = torch.tensor(0.5 + 0.2 * (-1.0) ** (i + j))[None, None]
    flat = torch.full_like(board, 0.5, requires_grad=True)
    value = map_distortion(flat, board, 1.0)
    (gradient,) = torch.autograd.grad(value, flat)
    inner = gradient[..., 2:-2, 2:-2]
    assert value.item() > 0.01 and inner.abs().max() < 1e-15  # flat: std 0 everywhere...
    torch.manual_seed(0)
    noisy = (flat.detach() + 0.01 * torch.randn_like(flat)).requires_grad_()
    (gradient,) = torch.autograd.grad(map_distortion(noisy, board, 1.0), noisy)
    assert gradient[..., 2:-2, 2:-2].abs().max() > 1e-5  # ...any texture is pulled to 0.2

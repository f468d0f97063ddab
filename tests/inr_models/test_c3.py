"""The C3-style codec: end to end on a 256x256 Kodak crop (debug preset, CPU), its quantisers,
the exact GELU and bilinear upsampling its decoder relies on, and its presets."""

import math

import pytest
import torch
import torch.nn.functional as F

from inr_models import create_codec, get_codec_class
from inr_models.c3.presets import PAPER, SHORT
from inr_models.c3.quantizers import (
    SoftRoundNoise,
    StraightThroughSoftRound,
    kumaraswamy_noise,
    soft_round,
    soft_round_inverse,
)
from inr_models.coolchic.exact import fixed_point
from inr_models.coolchic.gelu import gelu_exact, tail_table
from inr_models.coolchic.layers import bilinear_exact
from inr_models.coolchic.model import CoolChic
from study.results.metrics import psnr


@pytest.fixture(scope="module")
def encoded(crop256):
    return {
        loss: create_codec("c3", loss=loss, lmbda=2e-3, preset="debug", seed=1).encode(crop256)
        for loss in ("mse", "lc_ssim")
    }


def test_fresh_process_decode_equals_encoder_reconstruction(encoded, crop256, check_fresh_decodes):
    for decoded in check_fresh_decodes(list(encoded.values())):
        assert decoded.shape == crop256.shape and psnr(crop256, decoded) > 18


def test_rate_comes_from_the_file_and_macs_are_c3s(encoded):
    for result in encoded.values():
        real, estimate = result.bpp(256, 256), result.stats["bpp_estimate"]
        # Looser than COOL-CHIC's 5 %: 40 debug iterations leave the ARM near C3's peaked start,
        # and the latents it gives under 2^-16 (the estimate's 16-bit cap) cost up to 20 bits
        # in the coder.
        assert 0.5 * estimate < real < 1.2 * estimate + 0.02
        # C3's own count for its Kodak model is about 1,770 (8 MACs per resized grid, ours 4).
        assert 1700 <= result.stats["mac_per_pixel"] <= 1800


def test_every_iteration_is_the_final_models(encoded):
    for result in encoded.values():  # one model, no warm-up candidates
        stats = result.stats
        assert stats["warmup_iterations"] == 0
        assert stats["final_model_iterations"] == stats["iterations"] > 0


def test_seeded_encodes_are_identical(encoded, crop256):
    again = create_codec("c3", loss="mse", lmbda=2e-3, preset="debug", seed=1).encode(crop256)
    assert again.data == encoded["mse"].data


def test_model_starts_as_c3_does():
    model = CoolChic(get_codec_class("c3").architecture, 16, 16)
    assert not any(p is model.log2_gains for p in model.parameters())  # fixed gains
    assert torch.allclose(model.gains(), 2.0 ** torch.arange(7.0) / 0.4)
    assert model.arm.biases[-1].tolist() == [0.0, 8.0]  # C3's log-scale shift
    # Residual 3x3 layers start as the identity.
    assert not model.synthesis.weights[3].any() and not model.synthesis.weights[4].any()
    first = model.synthesis.weights[0].detach()
    assert first.abs().max() <= 2 / math.sqrt(7) + 1e-6  # truncated at 2 std of 1/√fan_in


def test_presets_follow_c3s_kodak_configuration():
    assert (PAPER.soft_round_iterations, PAPER.ste_iterations) == (100_000, 10_000)
    assert PAPER.learning_rate == 1e-2 and PAPER.gradient_clip == 0.1
    assert PAPER.temperature == (0.3, 0.1) and PAPER.kumaraswamy == (2.0, 1.0)
    assert (PAPER.ste_learning_rate, PAPER.ste_patience, PAPER.ste_decay) == (1e-4, 20, 0.8)
    assert SHORT.total_iterations == 3000
    v2_short = get_codec_class("coolchic-v2").get_preset("short")
    assert v2_short.total_iterations == 3019
    # Of which 924 train 14 warm-up candidates; the kept model trains 2,359 (C3's: all 3,000).
    assert (v2_short.warmup_total, v2_short.final_model_iterations) == (924, 2359)


def test_v2_budget_presets_match_c3s_final_model_and_keep_the_papers_proportions():
    v2 = get_codec_class("coolchic-v2")
    final, timed = v2.get_preset("short-final3000"), v2.get_preset("short-c3time")
    assert final.final_model_iterations == SHORT.total_iterations == 3000
    assert final.warmup_total == v2.get_preset("short").warmup_total  # the same candidates
    paper = [phase.iterations for phase in v2.get_preset("paper").phases]
    for preset in (final, timed):
        phases = [phase.iterations for phase in preset.phases]
        shares = [n / sum(phases) for n in phases]
        assert shares == pytest.approx([n / sum(paper) for n in paper], abs=1 / sum(phases))
        assert [p.learning_rate for p in preset.phases] == [
            p.learning_rate for p in v2.get_preset("paper").phases
        ]
    assert timed.total_iterations == 2612  # 0.866 of ``short``'s 3,019: C3's wall time


def test_soft_rounding_interpolates_between_identity_and_rounding():
    x = torch.linspace(-3, 3, 601, dtype=torch.float64)
    away = x[(x - torch.round(x)).abs() < 0.49]  # soft rounding keeps half-integers in place
    assert torch.allclose(soft_round(away, 1e-3), torch.round(away), atol=1e-6)
    assert (soft_round(x, 10.0) - x).abs().max() < 1e-2  # a high temperature: nearly identity
    for temperature in (0.1, 0.3):
        y = soft_round(x, temperature)
        assert torch.allclose(soft_round_inverse(y, temperature), x, atol=1e-9)


def test_kumaraswamy_noise_shape():
    torch.manual_seed(0)
    like = torch.empty(200_000)
    uniform, peaked = kumaraswamy_noise(like, 1.0), kumaraswamy_noise(like, 2.0)
    assert uniform.min() >= -0.5 and uniform.max() <= 0.5
    assert uniform.var() == pytest.approx(1 / 12, rel=0.02)  # a = 1: uniform on [−½, ½]
    assert peaked.var() < 0.8 * uniform.var()  # a = 2: concentrated around 0, its mode


def test_training_quantisers_forward_and_gradient():
    torch.manual_seed(0)
    x = (torch.randn(1000, dtype=torch.float64) * 3).requires_grad_()
    noisy = SoftRoundNoise(0.3, 2.0)(x)
    assert (noisy - x).abs().max() <= 1.0
    noisy.sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    x.grad = None
    rounded = StraightThroughSoftRound(0.1)(x)
    assert torch.equal(rounded, torch.round(x))
    rounded.sum().backward()
    expected = torch.autograd.grad(soft_round(x, 0.1).sum(), x)[0]
    assert torch.allclose(x.grad, expected)


def test_exact_gelu_is_close_and_made_of_integers():
    x = torch.round(torch.linspace(-12, 12, 100_001, dtype=torch.float64) * 2**16) / 2**16
    assert (gelu_exact(x) - F.gelu(x)).abs().max() < 2e-6
    table = tail_table()
    # Entries are multiples of 2^-32 equal to a·Φ(−a) to that precision.
    assert torch.equal(table, torch.round(table * 2**32) / 2**32)
    a = 0.75
    assert float(table[192]) == pytest.approx(a * 0.5 * math.erfc(a / math.sqrt(2)), abs=2**-32)
    assert float(table[-2]) == 0.0 == float(table[-1])


def test_exact_bilinear_equals_torch_on_power_of_two_ratios():
    torch.manual_seed(0)
    grid = torch.randint(-50, 50, (1, 1, 5, 7)).double()
    round_to = fixed_point(16, 2.0**12, "test")
    for factor in (2, 8, 64):
        size = (5 * factor, 7 * factor)
        expected = F.interpolate(grid, size, mode="bilinear", align_corners=False)
        assert torch.equal(bilinear_exact(grid, *size, round_to), expected)
    odd = bilinear_exact(grid, 13, 17, round_to)  # taps rounded to 2^-16: close, not equal
    expected = F.interpolate(grid, (13, 17), mode="bilinear", align_corners=False)
    assert (odd - expected).abs().max() < 1e-3

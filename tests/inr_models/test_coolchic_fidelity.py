"""COOL-CHIC as the paper's forks ran it (INRAnalysis-ICIP24/cool-chic, branches 1.0- and
2.0-adaptations)."""

import math
from dataclasses import replace

import pytest
import torch

from inr_models.coolchic import quantization
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.presets import ARCHITECTURES, PRESETS


@pytest.mark.parametrize(("layer", "fan_in", "fan_out"), [(0, 7, 40), (1, 40, 3)])
def test_v2_synthesis_starts_from_pytorchs_conv_init_over_out_squared(layer, fan_in, fan_out):
    """v2's fork: nn.Conv2d's default init (U(±1/√fan_in)) divided by out², zero bias."""
    torch.manual_seed(0)
    weights = torch.cat([
        CoolChic(ARCHITECTURES[2], 8, 8).synthesis.weights[layer].detach().flatten()
        for _ in range(20)
    ])  # fmt: skip
    bound = 1 / math.sqrt(fan_in) / fan_out**2
    assert weights.abs().max() <= bound
    assert weights.std() == pytest.approx(bound / math.sqrt(3), rel=0.1)  # std of U(±bound)
    assert not CoolChic(ARCHITECTURES[2], 8, 8).synthesis.biases[layer].any()


def test_v1_synthesis_starts_from_a_normal_over_out_squared():
    torch.manual_seed(0)
    weights = torch.cat([
        CoolChic(ARCHITECTURES[1], 8, 8).synthesis.weights[0].detach().flatten()
        for _ in range(20)
    ])  # fmt: skip
    assert weights.std() == pytest.approx(1 / 12**2, rel=0.1)


def test_synthesis_phases_train_the_synthesis_alone():
    """v2's fork trains its learned upsampling kernel only in the phases that train everything."""
    model = CoolChic(ARCHITECTURES[2], 8, 8)
    trained = {id(p) for p in model.parameters_of("synthesis")}
    assert trained == {id(p) for p in model.synthesis.parameters()}
    assert id(model.upsampling.kernel) not in trained
    phases = PRESETS[2]["paper"].phases
    assert any(phase.trained == "synthesis" for phase in phases)


@pytest.mark.parametrize(
    ("version", "order"), [(1, ["synthesis", "arm"]), (2, ["arm", "upsampling", "synthesis"])]
)
def test_greedy_quantisation_runs_in_the_forks_order(monkeypatch, version, order):
    searched = []

    def record(name, *args):
        searched.append(name)
        return name

    monkeypatch.setattr(quantization, "_search_module", record)
    model = CoolChic(ARCHITECTURES[version], 16, 16)
    result = quantization.greedy_quantize(model, torch.rand(1, 3, 16, 16), torch.nn.MSELoss(), 1e-3)
    assert searched == order
    assert list(result) == list(model.network_modules())  # the file keeps its own order


def test_every_v2_gain_trains_from_the_first_step_with_half_the_gradient_at_the_floor():
    """v2's fork floors the gains with torch.max(2^g, 1): at the tie (grid 0 starts at g = 0) half
    the gradient passes; clamp_min would pass none and the finest grid's gain would never move."""
    torch.manual_seed(0)
    floored = CoolChic(ARCHITECTURES[2], 16, 16)
    for grid in floored.latents:
        grid.data = torch.randn_like(grid)
    free = CoolChic(replace(ARCHITECTURES[2], gain_floor_one=False), 16, 16)
    free.load_state_dict(floored.state_dict())
    grads = []
    for model in (floored, free):
        torch.manual_seed(1)
        reconstruction, rate = model("noise")
        (reconstruction.square().mean() + 1e-3 * rate).backward()
        grads.append(model.log2_gains.grad)
    assert (grads[0] != 0).all()
    torch.testing.assert_close(grads[0][0], grads[1][0] / 2)
    torch.testing.assert_close(grads[0][1:], grads[1][1:])  # gains above 1: untouched


def test_v2_arm_search_stops_at_its_integer_grid(monkeypatch):
    """v2's fork integerises its ARM as round(w·2^6): a 2^-7 step would not be the one coded."""
    tried = {1: set(), 2: set()}
    real = quantization.quantize_group
    for version in (1, 2):
        model = CoolChic(ARCHITECTURES[version], 16, 16)
        arm_weights = len(list(model.arm.weights))

        def spy(tensors, exponent, version=version, arm_weights=arm_weights):
            if len(tensors) == arm_weights and tensors[0].dim() == 2:  # the ARM's linear layers
                tried[version].add(exponent)
            return real(tensors, exponent)

        monkeypatch.setattr(quantization, "quantize_group", spy)
        quantization.greedy_quantize(
            model, torch.rand(1, 3, 16, 16), torch.nn.MSELoss(), 1e-3, exhaustive=False
        )
    assert max(tried[2]) == ARCHITECTURES[2].arm_fraction_bits == 6
    assert max(tried[1]) == 7  # v1's ARM (8 fraction bits) keeps 2^-7


def _v2_after_quantisation():
    from inr_models.coolchic.training import Fitter
    from losses import COOLCHIC, build_loss

    torch.manual_seed(0)
    preset = PRESETS[2]["debug"]
    target = torch.rand(1, 3, 16, 16)
    fitter = Fitter(ARCHITECTURES[2], preset, target, build_loss("mse", COOLCHIC), 1e-3)
    model = CoolChic(ARCHITECTURES[2], 16, 16)
    for grid in model.latents:
        grid.data = torch.randn_like(grid) * 2
    fitter.quantize_network(model, "quantized")
    with torch.no_grad():  # an ARM whose activations the integer grid rounds
        for p in model.arm.parameters():
            p.copy_(torch.round(torch.randn_like(p) * 16) / 64)
    return fitter, model, replace(preset.phases[-1], iterations=2)


def test_the_last_v2_phase_clips_latents_synthesis_and_upsampling_and_rates_with_the_integer_arm(
    monkeypatch,
):
    """As v2's fork: after the network's quantisation the synthesis and the upsampling still get
    gradients (counted in the clip norm, never stepped); the integer ARM gets none, and the float
    ARM must not either: the rate comes from the integer one."""
    from inr_models.coolchic import training

    fitter, model, phase = _v2_after_quantisation()
    assert phase.integer_arm and phase.trained == "latent"
    clipped = []
    real_clip = training.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm):
        parameters = list(parameters)
        clipped.append({id(p) for p in parameters if p.grad is not None})
        return real_clip(parameters, max_norm)

    monkeypatch.setattr(training.nn.utils, "clip_grad_norm_", spy)
    network_before = [p.detach().clone() for p in model.network_modules()["synthesis"].parameters()]
    fitter.train_phase(model, phase, "phase 10")
    expected = [*model.latents, model.log2_gains, *model.synthesis.parameters()]
    expected += list(model.upsampling.parameters())
    assert clipped == [{id(p) for p in expected}] * 2
    assert all(p.grad is None for p in model.arm.parameters())
    for before, after in zip(network_before, model.synthesis.parameters(), strict=True):
        assert torch.equal(before, after)


def test_the_last_v2_phase_logs_the_rate_of_the_integer_arm_it_trains_with():
    fitter, model, phase = _v2_after_quantisation()
    fitter.train_phase(model, phase, "phase 10")
    logged = fitter.history[-1]["bpp_estimate"] * fitter.pixels
    model.eval()
    with torch.no_grad():
        integer = float(fitter.objective(model, "round", integer_arm=True)[2])
        float_arm = float(fitter.objective(model, "round")[2])
    assert logged == integer != float_arm


def test_v2_evaluation_sees_the_8_bit_image_and_training_the_float_one():
    torch.manual_seed(0)
    latents = [torch.randn(1, 1, h, w) for h, w in ((16, 16), (8, 8), (4, 4), (2, 2), (1, 1))]
    latents += [torch.randn(1, 1, 1, 1), torch.randn(1, 1, 1, 1)]
    v2 = CoolChic(ARCHITECTURES[2], 16, 16)
    for p in v2.synthesis.parameters():
        torch.nn.init.normal_(p, std=0.3)
    v2.eval()
    levels = v2.reconstruct(latents) * 255
    assert torch.equal(levels, torch.round(levels))
    v2.train()
    levels = v2.reconstruct(latents) * 255
    assert not torch.equal(levels, torch.round(levels))
    v1 = CoolChic(ARCHITECTURES[1], 16, 16).eval()
    levels = v1.reconstruct(latents) * 255
    assert not torch.equal(levels, torch.round(levels))


def test_v2_clips_the_gradient_of_every_parameter_and_steps_the_phases_own(monkeypatch):
    from inr_models.coolchic import training
    from inr_models.coolchic.presets import Phase
    from losses import COOLCHIC, build_loss

    clipped = []
    real_clip = training.nn.utils.clip_grad_norm_

    def spy(parameters, max_norm):
        clipped.append(len(list(parameters)))
        return real_clip([p for p in model.parameters() if p.grad is not None], max_norm)

    monkeypatch.setattr(training.nn.utils, "clip_grad_norm_", spy)
    torch.manual_seed(0)
    preset = PRESETS[2]["paper"]
    model = CoolChic(ARCHITECTURES[2], 16, 16)
    fitter = training.Fitter(
        ARCHITECTURES[2], preset, torch.rand(1, 3, 16, 16), build_loss("mse", COOLCHIC), 1e-3
    )
    arm_before = [p.detach().clone() for p in model.arm.parameters()]
    phase = Phase(iterations=2, learning_rate=1e-2, trained="synthesis", quantizer="noise")
    fitter.train_phase(model, phase, "synthesis only")
    assert clipped == [len(list(model.parameters()))] * 2  # all of them, not the synthesis'
    for before, after in zip(arm_before, model.arm.parameters(), strict=True):
        assert torch.equal(before, after)  # their gradients exist, but no step is taken


def test_the_last_v2_phase_takes_the_latents_gradient_through_the_coded_values_only():
    from inr_models.coolchic.exact import arm_rounding
    from inr_models.coolchic.layers import laplace_rate_bits

    assert PRESETS[2]["paper"].phases[-1].integer_arm
    torch.manual_seed(0)
    model = CoolChic(ARCHITECTURES[2], 16, 16)
    for p in model.arm.parameters():
        p.data = torch.round(torch.randn_like(p) * 16) / 64  # quantised: steps of 2^-6
    latents = [torch.round(torch.randn(1, 1, h, w) * 3).requires_grad_() for h, w in
               ((16, 16), (8, 8), (4, 4), (2, 2), (1, 1), (1, 1), (1, 1))]  # fmt: skip
    rounding = arm_rounding(model.architecture)
    rate = model.latent_rate(latents, rounding)
    found = torch.autograd.grad(rate, latents)
    with torch.no_grad():
        mu, log_scale = model.double().arm([g.double() for g in latents], rounding)
    model.float()
    values = torch.cat([g.flatten() for g in latents])
    fixed = laplace_rate_bits(values, mu.float(), log_scale.float()).sum()
    torch.testing.assert_close(rate, fixed)
    for a, b in zip(found, torch.autograd.grad(fixed, latents), strict=True):
        torch.testing.assert_close(a, b)
    through_context = torch.autograd.grad(model.latent_rate(latents), latents)
    assert any(not torch.allclose(a, b) for a, b in zip(found, through_context, strict=True))


@pytest.mark.parametrize(("size_in", "size_out"), [((5, 7), (9, 13)), ((4, 7), (8, 13))])
def test_v1_upsamples_odd_sides_with_pytorchs_bicubic_as_its_fork(size_in, size_out):
    """The fork resizes each grid to the finer one's size with F.interpolate: ×(2n−1)/n along an
    odd side, not ×2 then a crop. Training uses exactly that; the exact decoder's form stays
    within the rounding of its taps and values to 2^-16."""
    from inr_models.coolchic.exact import SYNTHESIS_FRACTION_BITS, fixed_point
    from inr_models.coolchic.layers import Upsampling

    torch.manual_seed(0)
    x = torch.randn(3, 1, *size_in, dtype=torch.float64) * 4
    fork = torch.nn.functional.interpolate(x, size=size_out, mode="bicubic", align_corners=False)
    upsampling = Upsampling(learned=False).double()
    assert torch.equal(upsampling.level(x, *size_out), fork)
    round_to = fixed_point(SYNTHESIS_FRACTION_BITS, 2.0**12, "synthesis")
    grid = torch.round(x * 2**16) / 2**16  # the decoder's values are on its grid
    exact = upsampling.level(grid, *size_out, round_to)
    assert torch.equal(exact, torch.round(exact * 2**16) / 2**16)
    torch.testing.assert_close(exact, fork, rtol=0, atol=1e-3)

"""C3's maths pinned to numbers worked out from its definition, so that a reversed or constant
schedule, a wrong soft-rounding, a misplaced GELU or a shared snapshot fails here: the recipe's
schedules, the soft rounding and its inverse, the straight-through phase on a scripted loss
curve, the synthesis' widths and activations, and the Laplace scale bounds."""

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from inr_models import get_codec_class
from inr_models.c3 import quantizers
from inr_models.c3.presets import DEBUG
from inr_models.c3.quantizers import SoftRoundNoise, soft_round, soft_round_inverse
from inr_models.c3.training import C3Fitter
from inr_models.coolchic.layers import laplace_scale
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.training import Forward
from losses import COOLCHIC, build_loss

ARCHITECTURE = get_codec_class("c3").architecture


def _fitter(preset, height=16, width=16):
    torch.manual_seed(0)
    target = torch.rand(1, 3, height, width)
    return C3Fitter(ARCHITECTURE, preset, target, build_loss("mse", COOLCHIC), 1e-3)


def test_soft_rounding_phase_schedules_at_chosen_steps():
    """Temperature 0.3 → 0.1 linear over the phase's steps (last step at 0.1), Kumaraswamy a
    2 → 1 linear in step / steps, learning rate 1e-2 cosine-decayed towards 0."""
    preset = dataclasses.replace(DEBUG, soft_round_iterations=11, validate_every=1000)
    fitter = _fitter(preset)
    model = CoolChic(ARCHITECTURE, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=preset.learning_rate)
    seen = []
    steps = fitter.soft_round_phase(model, optimizer)
    request = next(steps)
    while True:
        assert isinstance(request, Forward) and isinstance(request.mode, SoftRoundNoise)
        seen.append((request.mode.temperature, request.mode.kumaraswamy_a,
                     optimizer.param_groups[0]["lr"]))  # fmt: skip
        try:
            request = steps.send(torch.tensor(1.0))
        except StopIteration:
            break
    assert len(seen) == 11
    expected = {  # step: (temperature, a, learning rate)
        0: (0.3, 2.0, 1e-2),
        5: (0.2, 2.0 - 5 / 11, 1e-2 * 0.5 * (1 + math.cos(math.pi * 5 / 11))),
        10: (0.1, 2.0 - 10 / 11, 1e-2 * 0.5 * (1 + math.cos(math.pi * 10 / 11))),
    }
    for step, values in expected.items():
        assert seen[step] == pytest.approx(values, rel=1e-12), step
    temperatures = [t for t, _, _ in seen]
    assert temperatures == sorted(temperatures, reverse=True) and len(set(temperatures)) == 11


def test_soft_rounding_and_its_inverse_match_their_formulas():
    # s(x) = m + tanh((x − m)/T) / (2·tanh(1/(2T))), m = ⌊x⌋ + ½; values worked out by hand.
    for x, temperature in ((0.3, 0.2), (-1.7, 0.3), (2.95, 0.1)):
        middle = math.floor(x) + 0.5
        expected = middle + math.tanh((x - middle) / temperature) / (
            2 * math.tanh(1 / (2 * temperature))
        )
        found = soft_round(torch.tensor(x, dtype=torch.float64), temperature)
        assert float(found) == pytest.approx(expected, abs=1e-12)
        # s⁻¹(y) = m + T·atanh(2·tanh(1/(2T))·(y − m)), m = ⌊y⌋ + ½
        y = expected
        middle_y = math.floor(y) + 0.5
        inverse = middle_y + temperature * math.atanh(
            2 * math.tanh(1 / (2 * temperature)) * (y - middle_y)
        )
        back = soft_round_inverse(torch.tensor(y, dtype=torch.float64), temperature)
        assert float(back) == pytest.approx(inverse, abs=1e-12)
        assert inverse == pytest.approx(x, abs=1e-9)


def test_the_noisy_soft_rounding_is_the_conditional_mean_of_its_noised_value(monkeypatch):
    """r(s(x) + u) with r(y) = s⁻¹(y − ½) + ½: with the noise held at u, each value is that."""
    x = torch.tensor([-2.2, -0.4, 0.1, 0.8, 3.49], dtype=torch.float64)
    u = torch.tensor([0.3, -0.45, 0.0, 0.2, -0.1], dtype=torch.float64)
    monkeypatch.setattr(quantizers, "kumaraswamy_noise", lambda like, a, generator=None: u)
    temperature = 0.25
    found = SoftRoundNoise(temperature, 2.0)(x)
    for value, noise, result in zip(x.tolist(), u.tolist(), found.tolist(), strict=True):
        y = float(soft_round(torch.tensor(value, dtype=torch.float64), temperature)) + noise
        shifted = y - 0.5
        middle = math.floor(shifted) + 0.5
        r = middle + temperature * math.atanh(
            2 * math.tanh(1 / (2 * temperature)) * (shifted - middle)
        )
        assert result == pytest.approx(r + 0.5, abs=1e-12)


class _Scripted:
    """Drives the straight-through phase, answering each forward pass with the next scripted J,
    with a gradient of ones for Adam's steps; records the learning rate and a latent at each
    request (the state its J belongs to)."""

    def __init__(self, fitter, model, optimizer, losses):
        self.model, self.optimizer, self.losses = model, optimizer, list(losses)
        self.rates, self.latents = [], []
        self.steps = fitter.straight_through_phase(model, optimizer)

    def run(self) -> int:
        answered = 0
        request = next(self.steps)
        while True:
            assert request.model is self.model
            self.rates.append(self.optimizer.param_groups[0]["lr"])
            self.latents.append(float(self.model.latents[0].detach()[0, 0, 0, 0]))
            for parameter in self.model.parameters():
                parameter.grad = torch.ones_like(parameter)
            try:
                request = self.steps.send(torch.tensor(self.losses.pop(0)))
            except StopIteration:
                return answered + 1
            answered += 1


def _straight_through_setup():
    """A fitter whose straight-through phase has patience 2, decays by half from 1e-4 and stops
    below 3e-5; a model, its optimiser, and the J the phase starts from."""
    preset = dataclasses.replace(
        DEBUG, ste_iterations=100, ste_patience=2, ste_decay=0.5,
        ste_learning_rate=1e-4, ste_min_learning_rate=3e-5, validate_every=1000,
    )  # fmt: skip
    fitter = _fitter(preset)
    model = CoolChic(ARCHITECTURE, 16, 16)
    optimizer = torch.optim.Adam(model.parameters(), lr=1.0)
    return fitter, model, optimizer, fitter.validate(model, "reference")


def test_straight_through_phase_decays_resets_to_best_and_stops_on_a_scripted_curve():
    fitter, model, optimizer, start = _straight_through_setup()
    # Better, better (the best), worse, worse -> decay to 5e-5 and back to the best; worse,
    # worse -> 2.5e-5 < 3e-5: back to the best and stop.
    script = [start - 1, start - 2, start, start, start, start]
    driver = _Scripted(fitter, model, optimizer, script)
    assert driver.run() == len(script)
    assert driver.rates == [1e-4, 1e-4, 1e-4, 1e-4, 5e-5, 5e-5]
    # Steps move the latent by the learning rate (Adam's first steps, gradient of ones)...
    assert len(set(driver.latents[:4])) == 4
    # ...and each restore brings back the state the best J was measured on (not the one after
    # that step's update), and so does the end.
    best = driver.latents[1]
    assert driver.latents[4] == best
    assert float(model.latents[0].detach()[0, 0, 0, 0]) == best


def test_a_restored_snapshot_is_not_changed_by_the_steps_after_it():
    """Regression: the optimiser once adopted the snapshot's moment tensors and updated them in
    place, so a second restore brought back a changed state."""
    fitter, model, optimizer, start = _straight_through_setup()
    moments = []
    original = torch.optim.Optimizer.load_state_dict

    def record(self, state):
        original(self, state)
        first = self.state[self.param_groups[0]["params"][0]]
        moments.append(first["exp_avg"].clone() if "exp_avg" in first else None)

    torch.optim.Optimizer.load_state_dict = record
    try:
        # A step, then the best (its snapshot holds Adam's moments), then worse with a step,
        # worse (restore), worse with a step, worse (restore and stop): both restores must
        # give the snapshot's moments, though steps ran between them.
        _Scripted(fitter, model, optimizer, [start, start - 1, start, start, start, start]).run()
    finally:
        torch.optim.Optimizer.load_state_dict = original
    assert len(moments) == 2 and moments[0] is not None
    assert torch.equal(moments[0], moments[1])


def test_synthesis_widths_and_activations_are_c3s():
    """18, 18 and 3 channels of 1x1 layers, GELU after the first two, then two residual 3x3
    layers, GELU after the first: checked against that sequence written out here."""
    model = CoolChic(ARCHITECTURE, 12, 20)
    shapes = [tuple(w.shape) for w in model.synthesis.weights]
    assert shapes == [(18, 7, 1, 1), (18, 18, 1, 1), (3, 18, 1, 1), (3, 3, 3, 3), (3, 3, 3, 3)]
    assert [tuple(w.shape) for w in model.arm.weights] == [(18, 24), (18, 18), (2, 18)]
    torch.manual_seed(3)
    with torch.no_grad():
        for parameter in model.synthesis.parameters():
            parameter.normal_(std=0.5)
    x = torch.randn(1, 7, 12, 20)
    w, b = list(model.synthesis.weights), list(model.synthesis.biases)

    def conv3(h, i):
        return F.conv2d(F.pad(h, (1, 1, 1, 1), mode="replicate"), w[i], b[i])

    h = F.gelu(F.conv2d(x, w[0], b[0]))
    h = F.gelu(F.conv2d(h, w[1], b[1]))
    h = F.conv2d(h, w[2], b[2])
    h = F.gelu(conv3(h, 3) + h)
    expected = conv3(h, 4) + h
    with torch.no_grad():
        found = model.synthesis(x)
    torch.testing.assert_close(found, expected, rtol=1e-5, atol=1e-5)


def test_laplace_scales_are_bounded_in_the_coded_domain():
    """Scales between 1e-3 and e^5 ≈ 148 integer steps of the coded latents, whatever the ARM
    says; C3's latents reach the ARM as coded integers (gain 2^i / 0.4 for grid i)."""
    extremes = laplace_scale(torch.tensor([-1e9, -10.0, 13.8155, 1e9]))
    assert extremes.tolist() == pytest.approx([math.exp(5), math.exp(5), 1e-3, 1e-3], rel=1e-4)
    model = CoolChic(ARCHITECTURE, 16, 16)
    with torch.no_grad():
        for grid in model.latents:
            grid.fill_(0.33)  # 0.825, 1.65, 3.3, 6.6, 13.2, 26.4, 52.8 in the coded domain
    coded = model.quantized_latents("round")
    assert [float(g.detach().flatten()[0]) for g in coded] == [1, 2, 3, 7, 13, 26, 53]

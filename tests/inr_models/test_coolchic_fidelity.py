"""COOL-CHIC as the paper's forks ran it (INRAnalysis-ICIP24/cool-chic, branches 1.0- and
2.0-adaptations)."""

import math

import pytest
import torch

from inr_models.coolchic import quantization
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.presets import ARCHITECTURES, get_preset


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
    phases = get_preset(2, "paper").phases
    assert any(phase.trained == "synthesis" for phase in phases)


@pytest.mark.parametrize(
    ("version", "order"), [(1, ["synthesis", "arm"]), (2, ["arm", "upsampling", "synthesis"])]
)
def test_greedy_quantisation_runs_in_the_forks_order(monkeypatch, version, order):
    searched = []

    def record(name, module, evaluate, lmbda_per_pixel, exhaustive):
        searched.append(name)
        return name

    monkeypatch.setattr(quantization, "_search_module", record)
    model = CoolChic(ARCHITECTURES[version], 16, 16)
    result = quantization.greedy_quantize(model, torch.rand(1, 3, 16, 16), torch.nn.MSELoss(), 1e-3)
    assert searched == order
    assert list(result) == list(model.network_modules())  # the file keeps its own order

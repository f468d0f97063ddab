"""Greedy per-module search of network quantisation steps (reference-codecs.md §3).

For each module in turn (synthesis, then v2's upsampling, then the ARM), every pair of
power-of-two steps for its weights and its biases is tried; the pair minimising
D + λ·(R_latents + R_module) / pixels is kept before moving to the next module. A module's rate is
the cost of its integers under a zero-mean Laplace of scale std/√2, as they are then coded.
"""

import copy
import itertools
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from inr_models.coolchic.exact import arm_rounding
from inr_models.coolchic.layers import laplace_rate_bits
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.presets import Architecture
from inr_models.entropy import laplace_bits, laplace_scale_of

# Quantisation steps 2^-e the file can carry: e in 0..16 for synthesis and upsampling, 0..7 for
# the ARM.
STEP_EXPONENTS = {"synthesis": range(17), "upsampling": range(17), "arm": range(8)}
MAX_INTEGER = 65535  # larger integers mean the step is too fine: the candidate is rejected


@dataclass
class QuantizedGroup:
    exponent: int  # step = 2^-exponent
    integers: np.ndarray  # all tensors of the group, flattened in module order

    @property
    def step(self) -> float:
        return 2.0**-self.exponent

    def rate_bits(self) -> float:
        if self.integers.size == 0:
            return 0.0
        return laplace_bits(self.integers, float(laplace_scale_of(self.integers)))


@dataclass
class QuantizedModule:
    weights: QuantizedGroup
    biases: QuantizedGroup

    def rate_bits(self) -> float:
        return self.weights.rate_bits() + self.biases.rate_bits()


def quantize_group(tensors: list[Tensor], exponent: int) -> QuantizedGroup | None:
    if not tensors:
        return QuantizedGroup(exponent, np.zeros(0, dtype=np.int64))
    flat = torch.cat([t.detach().flatten() for t in tensors]).double().cpu().numpy()
    integers = np.round(flat * 2.0**exponent).astype(np.int64)
    if integers.size and np.abs(integers).max() > MAX_INTEGER:
        return None
    return QuantizedGroup(exponent, integers)


def load_group(tensors: list[Tensor], group: QuantizedGroup) -> None:
    """Overwrite ``tensors`` with the group's dequantised values, in place."""
    start = 0
    with torch.no_grad():
        for tensor in tensors:
            stop = start + tensor.numel()
            values = torch.from_numpy(group.integers[start:stop] * group.step)
            tensor.copy_(values.view_as(tensor).to(tensor.dtype))
            start = stop


@torch.no_grad()
def greedy_quantize(
    model: CoolChic, target: Tensor, distortion, lmbda: float, exhaustive: bool = True
) -> dict[str, QuantizedModule]:
    """Quantise the network of ``model`` in place; returns each module's integers and steps."""
    model.eval()
    latents = model.quantized_latents("round")
    modules, result = model.network_modules(), {}
    for name in model.architecture.quantization_order:
        evaluate = _evaluator(name, model, latents, target, distortion)
        result[name] = _search_module(
            name, modules[name], evaluate, lmbda / model.n_pixels, exhaustive, model.architecture
        )
    return {name: result[name] for name in modules}  # in the file's order


def searched_exponents(name: str, architecture: Architecture) -> range:
    """Steps the search tries. The ARM's stop at its integer grid 2^-F: v2's fork builds its
    integer ARM as round(w·2^6), so a 2^-7 step it picked was coded as 2^-6 (reference-codecs.md
    §4); v1 (F = 8) and C3 keep the whole range."""
    exponents = STEP_EXPONENTS[name]
    if name == "arm":
        return range(min(len(exponents), architecture.arm_fraction_bits + 1))
    return exponents


def _search_module(
    name: str,
    module: nn.Module,
    evaluate,
    lmbda_per_pixel: float,
    exhaustive: bool,
    architecture: Architecture,
):
    weights, biases = list(module.weights), list(module.biases)
    original_weights = [t.detach().clone() for t in weights]
    original_biases = [t.detach().clone() for t in biases]

    def cost(weight_exponent: int, bias_exponent: int):
        quantized = QuantizedModule(
            quantize_group(original_weights, weight_exponent),
            quantize_group(original_biases, bias_exponent),
        )
        if quantized.weights is None or quantized.biases is None:
            return None
        load_group(weights, quantized.weights)
        load_group(biases, quantized.biases)
        d, latent_bits = evaluate()
        return d + lmbda_per_pixel * (latent_bits + quantized.rate_bits()), quantized

    def best_of(pairs, incumbent=None):
        tried = [c for c in (cost(w, b) for w, b in pairs) if c is not None]
        return min(tried + ([incumbent] if incumbent else []), key=lambda c: c[0])

    exponents = searched_exponents(name, architecture)
    if exhaustive:
        best = best_of(itertools.product(exponents, exponents))
    else:  # debug presets: tie both steps, then refine the bias step with the weight step fixed
        best = best_of((e, e) for e in exponents)
        best = best_of(((best[1].weights.exponent, e) for e in exponents), incumbent=best)
    load_group(weights, best[1].weights)
    load_group(biases, best[1].biases)
    return best[1]


def _evaluator(name: str, model: CoolChic, latents: list[Tensor], target: Tensor, distortion):
    """(distortion, latent bits) with the current weights, recomputing only what `name` changes."""
    if name == "arm":
        fixed_d = float(distortion(model.reconstruct(latents), target))
        exact_model = copy.deepcopy(model).double()
        latents64 = [grid.double() for grid in latents]
        values = torch.cat([grid.flatten() for grid in latents64])
        round_to = arm_rounding(model.architecture)

        def arm_rate():
            for source, exact in zip(
                model.arm.parameters(), exact_model.arm.parameters(), strict=True
            ):
                exact.copy_(source)
            mu, log_scale = exact_model.arm(latents64, round_to)  # the integerised ARM, as coded
            return fixed_d, float(laplace_rate_bits(values, mu, log_scale).sum())

        return arm_rate
    fixed_bits = float(model.latent_rate(latents))
    return lambda: (float(distortion(model.reconstruct(latents), target)), fixed_bits)

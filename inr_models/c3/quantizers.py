"""C3's training quantisers of the latents (integer domain in, integer domain out).

Soft rounding (Agustsson & Theis, 2020) with temperature T:
    s(x) = m + tanh((x − m)/T) / (2·tanh(1/(2T))),  m = ⌊x⌋ + ½,
its inverse s⁻¹(y) = m + T·atanh(2·tanh(1/(2T))·(y − m)), m = ⌊y⌋ + ½, and the conditional mean
r(y) = s⁻¹(y − ½) + ½. The main phase passes r(s(x) + u), u a Kumaraswamy(a, b) sample shifted to
[−½, ½] with b chosen so that its mode is ½ (a = 1: uniform noise); the fine-tuning phase rounds
in the forward pass and takes the gradient of s at a tiny temperature.
"""

import math

import torch
from torch import Tensor

from inr_models.coolchic.quantizers import uniform_like


def soft_round(x: Tensor, temperature: float) -> Tensor:
    middle = torch.floor(x) + 0.5
    return middle + torch.tanh((x - middle) / temperature) / (2 * math.tanh(0.5 / temperature))


def soft_round_inverse(y: Tensor, temperature: float) -> Tensor:
    middle = torch.floor(y) + 0.5
    inside = (y - middle) * (2 * math.tanh(0.5 / temperature))
    return middle + temperature * torch.atanh(inside)


def kumaraswamy_noise(like: Tensor, a: float, generator: torch.Generator | None = None) -> Tensor:
    """Samples in [−½, ½] by the inverse CDF; its mode is at 0."""
    b = (2**a * (a - 1) + 1) / a
    uniform = uniform_like(like, generator)
    return (1 - (1 - uniform) ** (1 / b)) ** (1 / a) - 0.5


class SoftRoundNoise:
    def __init__(self, temperature: float, kumaraswamy_a: float):
        self.temperature, self.kumaraswamy_a = temperature, kumaraswamy_a

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        noisy = soft_round(x, self.temperature) + kumaraswamy_noise(
            x, self.kumaraswamy_a, generator
        )
        return soft_round_inverse(noisy - 0.5, self.temperature) + 0.5


class StraightThroughSoftRound:
    def __init__(self, temperature: float):
        self.temperature = temperature

    def __call__(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        soft = soft_round(x, self.temperature)
        return soft + (torch.round(x) - soft).detach()

"""Latent quantisers used while training (reference-codecs.md §3–4).

v1: additive U(−½, ½) noise with identity gradient; STE = round with identity gradient.
v2: the same forward passes, with the backward scaled: ×100 for noise, ×0.01 for STE.
At evaluation the latents are simply rounded.
"""

from collections.abc import Callable
from typing import Literal

import torch
from torch import Tensor

QuantizerMode = Literal["noise", "ste", "round"]
# A codec's own training quantiser (C3's soft rounding): integer-domain latents and the fit's
# random generator in, integer-domain latents out.
Quantizer = Callable[[Tensor, torch.Generator | None], Tensor]


def uniform_like(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """U(0, 1) samples shaped as ``x``, drawn from ``generator`` (None: torch's default one, as
    ``torch.rand_like``; the same numbers from a generator in the same state)."""
    return torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def _uniform_per_fit(x: Tensor, generator) -> Tensor:
    """U(0, 1) samples shaped as ``x``: from one generator, or, given a list, B fits' samples
    along the first dimension, each from its own generator (as each fit alone would draw them)."""
    if not isinstance(generator, list):
        return uniform_like(x, generator)
    return torch.cat([uniform_like(part, g) for part, g in zip(x, generator, strict=True)])[:, None]


class _Noise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, gradient_scale: float, generator) -> Tensor:
        ctx.gradient_scale = gradient_scale
        return x + (_uniform_per_fit(x, generator) - 0.5)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.gradient_scale, None, None


class _RoundStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, gradient_scale: float) -> Tensor:
        ctx.gradient_scale = gradient_scale
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.gradient_scale, None


def quantize(
    x: Tensor,
    mode: QuantizerMode,
    noise_gradient: float,
    ste_gradient: float,
    generator: torch.Generator | list[torch.Generator | None] | None = None,
) -> Tensor:
    """``x`` quantised as ``mode`` says; ``generator``: the noise's, or a list of B fits' for an
    ``x`` that stacks B fits' grids (B, 1, h, w)."""
    if mode == "noise":
        return _Noise.apply(x, noise_gradient, generator)
    if mode == "ste":
        return _RoundStraightThrough.apply(x, ste_gradient)
    return torch.round(x)

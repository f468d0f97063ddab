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
# A codec's own training quantiser (C3's soft rounding): integer-domain latents in, out.
Quantizer = Callable[[Tensor], Tensor]


class _Noise(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, gradient_scale: float) -> Tensor:
        ctx.gradient_scale = gradient_scale
        return x + (torch.rand_like(x) - 0.5)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.gradient_scale, None


class _RoundStraightThrough(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: Tensor, gradient_scale: float) -> Tensor:
        ctx.gradient_scale = gradient_scale
        return torch.round(x)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return grad * ctx.gradient_scale, None


def quantize(x: Tensor, mode: QuantizerMode, noise_gradient: float, ste_gradient: float) -> Tensor:
    if mode == "noise":
        return _Noise.apply(x, noise_gradient)
    if mode == "ste":
        return _RoundStraightThrough.apply(x, ste_gradient)
    return torch.round(x)

"""Bit-exact decoding arithmetic shared by the encoder and the decoder.

Every value on the decoding path (latents, quantised weights, activations rounded to a fixed grid
after each layer) is a dyadic rational with few significant bits, so float64 sums and products of
them are exact: the result does not depend on summation order, thread count, BLAS library or
device. The encoder reports the image this path produces, and the decoder reproduces it bit for bit.

- synthesis and upsampling activations: rounded to 2^-16 after each layer and upsampling level
  (and after GELU, through ``gelu.gelu_exact``);
- a latent step other than 1 (C3's 0.4): one IEEE multiply of each upsampled value, correctly
  rounded and so the same everywhere, then rounded to 2^-16 (keep it one multiply: fusing or
  reordering it with other operations would break that);
- ARM activations: rounded to 2^-F (F = 8 for v1, 6 for v2), i.e. the fixed-point integer ARM;
- Laplace scales: ``deterministic_exp`` of the fixed-point log-scale.
"""

import numpy as np
import torch
from torch import Tensor

from inr_models.base import CodecError
from inr_models.coolchic.layers import LOG_SCALE_MAX, LOG_SCALE_MIN
from inr_models.coolchic.model import CoolChic
from inr_models.entropy import deterministic_exp

SYNTHESIS_FRACTION_BITS = 16
# Bounds that keep every product and sum within float64's 53-bit mantissa (weights carry at most
# 16 significant bits): activations below 2^12 on the synthesis path, 2^16 in the ARM.
SYNTHESIS_ACTIVATION_LIMIT = 2.0**12
ARM_ACTIVATION_LIMIT = 2.0**16
LATENT_LIMIT = 2**15 - 1
SYNTHESIS_BAND_ROWS = 64


def fixed_point(fraction_bits: int, limit: float, where: str, offset: float = 0.5):
    """Rounding to multiples of 2^-fraction_bits: floor(t·2^F + offset) / 2^F."""
    scale = float(2**fraction_bits)

    def round_to_grid(t: Tensor) -> Tensor:
        """Round to the grid, in place (``t`` is always a fresh intermediate)."""
        if t.numel():
            low, high = torch.aminmax(t)
            if max(-float(low), float(high)) >= limit:
                raise CodecError(
                    f"{where} values exceed ±{limit:g}: outside the range decoded exactly"
                )
        return t.mul_(scale).add_(offset).floor_().div_(scale)

    return round_to_grid


def arm_rounding(architecture):
    """The integer ARM's rounding after each layer, as the architecture's decoder does it."""
    return fixed_point(
        architecture.arm_fraction_bits,
        ARM_ACTIVATION_LIMIT,
        "ARM",
        architecture.arm_rounding_offset,
    )


def to_uint8(x: Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] to (H, W, 3) uint8, rounding half up."""
    pixels = torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5)
    return pixels[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def exact_image(model: CoolChic, latents: list[Tensor]) -> np.ndarray:
    """Decoded image from integer latents; ``model`` holds quantised weights in float64.

    The synthesis runs on bands of rows with a halo as tall as its 3x3 layers reach, dropped
    afterwards: its widest float64 activation is held for one band, not the whole image. Every
    value is exact, so banding changes no bit.
    """
    round_to = fixed_point(SYNTHESIS_FRACTION_BITS, SYNTHESIS_ACTIVATION_LIMIT, "synthesis")
    upsampled = model.synthesis_input(latents, round_to)
    height, width = upsampled.shape[-2:]
    halo = model.synthesis.halo()
    image = np.empty((height, width, 3), np.uint8)
    for top in range(0, height, SYNTHESIS_BAND_ROWS):
        bottom = min(top + SYNTHESIS_BAND_ROWS, height)
        first, last = max(top - halo, 0), min(bottom + halo, height)
        band = model.synthesis(upsampled[:, :, first:last], round_to)
        image[top:bottom] = to_uint8(band[:, :, top - first : bottom - first])
    return image


@torch.no_grad()
def exact_laplace_parameters(
    model: CoolChic, latents: list[Tensor]
) -> tuple[np.ndarray, np.ndarray]:
    """μ and scale of every latent (grids flattened in order), as the decoder computes them."""
    mu, log_scale = model.arm(latents, arm_rounding(model.architecture))
    return mu.cpu().numpy(), scale_from_log(log_scale.cpu().numpy())


def scale_from_log(log_scale: np.ndarray) -> np.ndarray:
    return deterministic_exp(-0.5 * np.clip(log_scale, LOG_SCALE_MIN, LOG_SCALE_MAX))

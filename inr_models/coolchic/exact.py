"""Bit-exact decoding arithmetic shared by the encoder and the decoder.

Every value on the decoding path (latents, quantised weights, activations rounded to a fixed grid
after each layer) is a dyadic rational with few significant bits, so float64 sums and products of
them are exact: the result does not depend on summation order, thread count, BLAS library or
device. The encoder reports the image this path produces, and the decoder reproduces it bit for bit.

- synthesis and upsampling activations: rounded to 2^-16 after each layer and upsampling level;
- ARM activations: rounded to 2^-F (F = 8 for v1, 6 for v2), i.e. the fixed-point integer ARM;
- Laplace scales: ``deterministic_exp`` of the fixed-point log-scale.
"""

import math

import numpy as np
import torch
from torch import Tensor

from inr_models.base import CodecError
from inr_models.coolchic.layers import LOG_SCALE_MAX, LOG_SCALE_MIN, upsample_hierarchy
from inr_models.coolchic.model import CoolChic
from inr_models.entropy import LaplaceDecoder, deterministic_exp, encode_laplace

SYNTHESIS_FRACTION_BITS = 16
# Bounds that keep every product and sum within float64's 53-bit mantissa (weights carry at most
# 16 significant bits): activations below 2^12 on the synthesis path, 2^16 in the ARM.
SYNTHESIS_ACTIVATION_LIMIT = 2.0**12
ARM_ACTIVATION_LIMIT = 2.0**16
LATENT_LIMIT = 2**15 - 1


def fixed_point(fraction_bits: int, limit: float, where: str):
    scale = float(2**fraction_bits)

    def round_to_grid(t: Tensor) -> Tensor:
        """Round half up to the grid, in place (``t`` is always a fresh intermediate)."""
        if t.numel():
            low, high = torch.aminmax(t)
            if max(-float(low), float(high)) >= limit:
                raise CodecError(
                    f"{where} values exceed ±{limit:g}: outside the range decoded exactly"
                )
        return t.mul_(scale).add_(0.5).floor_().div_(scale)

    return round_to_grid


def to_uint8(x: Tensor) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] to (H, W, 3) uint8, rounding half up."""
    pixels = torch.floor(x.clamp(0.0, 1.0) * 255.0 + 0.5)
    return pixels[0].permute(1, 2, 0).to(torch.uint8).cpu().numpy()


@torch.no_grad()
def exact_image(model: CoolChic, latents: list[Tensor]) -> np.ndarray:
    """Decoded image from integer latents; ``model`` holds quantised weights in float64."""
    round_to = fixed_point(SYNTHESIS_FRACTION_BITS, SYNTHESIS_ACTIVATION_LIMIT, "synthesis")
    upsampled = upsample_hierarchy(latents, model.upsampling.kernel, round_to)
    return to_uint8(model.synthesis(upsampled, round_to))


@torch.no_grad()
def exact_laplace_parameters(
    model: CoolChic, latents: list[Tensor]
) -> tuple[np.ndarray, np.ndarray]:
    """μ and scale of every latent (grids flattened in order), as the decoder computes them."""
    bits = model.architecture.arm_fraction_bits
    mu, log_scale = model.arm(latents, fixed_point(bits, ARM_ACTIVATION_LIMIT, "ARM"))
    return mu.cpu().numpy(), _scale_from_log(log_scale.cpu().numpy())


def _scale_from_log(log_scale: np.ndarray) -> np.ndarray:
    return deterministic_exp(-0.5 * np.clip(log_scale, LOG_SCALE_MIN, LOG_SCALE_MAX))


def wavefront_order(height: int, width: int, rowcol: int) -> np.ndarray:
    """Raster indices of a grid sorted by wavefront w = col + (rowcol+1)·row, then row.

    Every causal neighbour of a latent lies on an earlier wavefront, so a whole wavefront can be
    decoded at once.
    """
    rows, cols = np.divmod(np.arange(height * width), width)
    return np.lexsort((rows, cols + (rowcol + 1) * rows))


def encode_latents(
    encoder, latents: list[np.ndarray], mu: np.ndarray, scale: np.ndarray, rowcol: int
) -> list[int]:
    """Range-code each grid in wavefront order; returns each grid's bound A (values in [-A, A]).

    An all-zero grid (A = 0) costs nothing: the decoder fills it with zeros.
    """
    bounds, start = [], 0
    for grid in latents:
        flat = grid.reshape(-1).astype(np.int64)
        stop = start + flat.size
        bound = int(np.abs(flat).max()) if flat.size else 0
        bounds.append(bound)
        if bound:
            order = wavefront_order(*grid.shape, rowcol)
            encode_laplace(
                encoder, flat[order], mu[start:stop][order], scale[start:stop][order], -bound, bound
            )
        start = stop
    return bounds


class WavefrontArm:
    """The integer ARM evaluated on one wavefront at a time with numpy (decoder side)."""

    def __init__(self, model: CoolChic):
        arm = model.arm
        self.offsets = arm.offsets
        self.rowcol = arm.rowcol
        self.layers = [
            (w.detach().double().cpu().numpy().T, b.detach().double().cpu().numpy(), residual)
            for w, b, residual in zip(arm.weights, arm.biases, arm.residual, strict=True)
        ]
        self.scale = float(2**model.architecture.arm_fraction_bits)
        # Log-scales are multiples of 2^-F, so their Laplace scales come from a table: the same
        # values _scale_from_log computes element by element, without an exp per wavefront.
        self.first_index = math.ceil(LOG_SCALE_MIN * self.scale)
        last_index = math.floor(LOG_SCALE_MAX * self.scale)
        grid = np.arange(self.first_index, last_index + 1) / self.scale
        self.scale_table = _scale_from_log(np.append(grid, LOG_SCALE_MAX))

    def __call__(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h = context
        for i, (weight, bias, residual) in enumerate(self.layers):
            out = h @ weight + bias
            if residual:
                out += h
            if out.size and np.abs(out).max() >= ARM_ACTIVATION_LIMIT:
                raise CodecError("corrupted file: ARM values outside the exactly decodable range")
            h = np.floor(out * self.scale + 0.5) / self.scale
            if i < len(self.layers) - 1:
                h = np.maximum(h, 0.0)
        return h[:, 0], self._scale_lookup(h[:, 1])

    def _scale_lookup(self, log_scale: np.ndarray) -> np.ndarray:
        index = (log_scale * self.scale).astype(np.int64) - self.first_index
        beyond_max = log_scale > LOG_SCALE_MAX  # clamped to LOG_SCALE_MAX itself, the last entry
        index = np.clip(index, 0, len(self.scale_table) - 2)
        index[beyond_max] = len(self.scale_table) - 1
        return self.scale_table[index]

    def decode_grid(
        self, decoder: LaplaceDecoder, height: int, width: int, bound: int
    ) -> np.ndarray:
        if bound == 0:
            return np.zeros((height, width))
        r = self.rowcol
        padded_width = width + 2 * r
        padded = np.zeros((height + r, padded_width))  # zero context above and beside the grid
        flat = padded.reshape(-1)
        neighbour = np.array([dy * padded_width + dx for dy, dx in self.offsets])
        for wave in range(width + (r + 1) * (height - 1)):
            first_row = max(0, -(-(wave - width + 1) // (r + 1)))
            rows = np.arange(first_row, min(height - 1, wave // (r + 1)) + 1)
            cols = wave - (r + 1) * rows
            centre = (rows + r) * padded_width + cols + r
            mu, scale = self(flat[centre[:, None] + neighbour[None, :]])
            flat[centre] = decoder.decode(mu, scale, -bound, bound)
        return padded[r:, r : r + width].copy()

"""Entropy coding of the latent grids in interleaved wavefronts (COOL-CHIC file format 2).

A latent's causal context lies on earlier wavefronts w = col + (rowcol+1)·row of its own grid, so
the decoder can decode a whole wavefront at once. Format 2 interleaves the grids: wavefront w of
every coded grid (finest first, rows ascending within a grid) is one ARM evaluation and one
range-coder call, so the Python loop runs as many steps as the finest grid has wavefronts (2,301
for v1 on a Kodak image) instead of the sum over all grids (4,555). The symbols of one wavefront
share an alphabet [−B, B], B the largest bound among the grids it holds; each grid's own bound
stays in the header and is checked after decoding.
"""

import math

import numpy as np

from inr_models.base import CodecError
from inr_models.coolchic.exact import ARM_ACTIVATION_LIMIT, scale_from_log
from inr_models.coolchic.layers import LOG_SCALE_MAX, LOG_SCALE_MIN
from inr_models.coolchic.model import CoolChic
from inr_models.entropy import LaplaceDecoder, encode_laplace


class Schedule:
    """Where every coded latent sits in one zero-padded buffer holding all grids, in coding order.

    Grids whose bound is 0 are not coded: they stay zero in the buffer.
    """

    def __init__(self, shapes: list[tuple[int, int]], bounds: tuple[int, ...], rowcol: int):
        r = rowcol
        n_grids = len(shapes)
        bases, size = [], 0
        for height, width in shapes:
            bases.append(size)
            size += (height + r) * (width + 2 * r)
        self.buffer_size = size
        self.shapes, self.bases, self.rowcol = shapes, bases, r
        self.coded = [g for g, bound in enumerate(bounds) if bound]
        keys, centres = [], []
        for g in self.coded:
            height, width = shapes[g]
            rows, cols = np.divmod(np.arange(height * width), width)
            keys.append((cols + (r + 1) * rows) * n_grids + g)
            centres.append(bases[g] + (rows + r) * (width + 2 * r) + cols + r)
        key = np.concatenate(keys) if keys else np.zeros(0, np.int64)
        # Stable: within one (wavefront, grid) the raster order is the row order.
        self.order = np.argsort(key, kind="stable")
        self.centres = np.concatenate(centres)[self.order] if centres else key
        sorted_key = key[self.order]
        self.grid_of = (sorted_key % n_grids).astype(np.intp)
        waves = sorted_key // n_grids
        self.starts = np.flatnonzero(np.diff(waves, prepend=-1, append=-2))
        bound_of = np.asarray(bounds, dtype=np.int64)[self.grid_of]
        self.wave_bounds = (
            np.maximum.reduceat(bound_of, self.starts[:-1]) if len(bound_of) else bound_of
        )

    def neighbours(self, offsets: list[tuple[int, int]]) -> np.ndarray:
        """(n_grids, n_context) buffer offsets of the causal context, per grid."""
        widths = [width + 2 * self.rowcol for _, width in self.shapes]
        return np.array([[dy * padded + dx for dy, dx in offsets] for padded in widths])

    def coding_order(self, per_grid: list[np.ndarray]) -> np.ndarray:
        """Values given per grid (raster order, all grids) rearranged in coding order."""
        return np.concatenate([per_grid[g].reshape(-1) for g in self.coded])[self.order]

    def waves(self):
        """(start, stop, bound) of each wavefront in coding order."""
        for index, bound in enumerate(self.wave_bounds):
            yield int(self.starts[index]), int(self.starts[index + 1]), int(bound)

    def grids(self, buffer: np.ndarray) -> list[np.ndarray]:
        r = self.rowcol
        grids = []
        for base, (height, width) in zip(self.bases, self.shapes, strict=True):
            padded = buffer[base : base + (height + r) * (width + 2 * r)]
            grids.append(padded.reshape(height + r, width + 2 * r)[r:, r : r + width].copy())
        return grids


def encode_latents(
    encoder, latents: list[np.ndarray], mu: np.ndarray, scale: np.ndarray, rowcol: int
) -> tuple[int, ...]:
    """Range-codes the grids (integer values, finest first) under the ARM's μ and scale (all grids
    flattened in order); returns each grid's bound A (values in [−A, A], 0: not coded)."""
    bounds = tuple(int(np.abs(grid).max()) if grid.size else 0 for grid in latents)
    schedule = Schedule([grid.shape for grid in latents], bounds, rowcol)
    stops = np.cumsum([grid.size for grid in latents])
    mu_of, scale_of = np.split(mu, stops[:-1]), np.split(scale, stops[:-1])
    values = schedule.coding_order([grid.astype(np.int64) for grid in latents])
    mu_sorted, scale_sorted = schedule.coding_order(mu_of), schedule.coding_order(scale_of)
    # Consecutive wavefronts mostly share their bound: one call per run of equal bounds.
    runs = np.flatnonzero(np.diff(schedule.wave_bounds, prepend=-1))
    for index, first in enumerate(runs):
        bound = int(schedule.wave_bounds[first])
        start = schedule.starts[first]
        stop = schedule.starts[runs[index + 1]] if index + 1 < len(runs) else len(values)
        part = slice(start, stop)
        encode_laplace(encoder, values[part], mu_sorted[part], scale_sorted[part], -bound, bound)
    return bounds


class WavefrontArm:
    """The integer ARM evaluated on one wavefront at a time with numpy (decoder side).

    Activations are kept as integers, i.e. in units of 2^-F: scaling by a power of two is exact,
    so each layer is a product, a bias (with the rounding offset folded in), a floor and a ReLU,
    and gives exactly the values of ``arm_rounding`` in the encoder.
    """

    def __init__(self, model: CoolChic, latent_bound: int):
        arm = model.arm
        self.offsets = arm.offsets
        self.rowcol = arm.rowcol
        self.unit = float(2**model.architecture.arm_fraction_bits)
        self.offset = model.architecture.arm_rounding_offset
        self.layers = [
            (
                w.detach().double().cpu().numpy().T,
                b.detach().double().cpu().numpy() * self.unit + self.offset,
                residual,
            )
            for w, b, residual in zip(arm.weights, arm.biases, arm.residual, strict=True)
        ]
        self.checked = not self._within_exact_range(latent_bound)
        # Log-scales are multiples of 2^-F, so their Laplace scales come from a table: the same
        # values scale_from_log computes element by element, without an exp per wavefront.
        self.first_index = math.ceil(LOG_SCALE_MIN * self.unit)
        grid = np.arange(self.first_index, math.floor(LOG_SCALE_MAX * self.unit) + 1) / self.unit
        self.scale_table = scale_from_log(np.append(grid, LOG_SCALE_MAX))

    def _within_exact_range(self, latent_bound: int) -> bool:
        """Whether no layer can reach ARM_ACTIVATION_LIMIT for contexts within ±latent_bound
        (then the per-wavefront check is skipped); a bound from the weights' absolute sums."""
        bound = float(latent_bound)
        for weight, shifted_bias, residual in self.layers:
            bias = np.abs(shifted_bias - self.offset) / self.unit
            reach = float((np.abs(weight).sum(axis=0) * bound + bias).max(initial=0.0))
            reach += bound if residual else 0.0
            if not reach < ARM_ACTIVATION_LIMIT:
                return False
            bound = reach + 1.0 / self.unit  # rounding up adds at most one unit
        return True

    def __call__(self, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """μ and Laplace scale from contexts given in units of 2^-F."""
        h = context
        last = len(self.layers) - 1
        for i, (weight, shifted_bias, residual) in enumerate(self.layers):
            out = h @ weight
            out += shifted_bias
            if residual:
                out += h
            if self.checked and np.abs(out - self.offset).max() >= ARM_ACTIVATION_LIMIT * self.unit:
                raise CodecError("corrupted file: ARM values outside the exactly decodable range")
            h = np.floor(out, out=out)
            if i < last:
                np.maximum(h, 0.0, out=h)
        return h[:, 0] / self.unit, self._scale_lookup(h[:, 1])

    def _scale_lookup(self, log_scale_units: np.ndarray) -> np.ndarray:
        # Clipped at both ends: below LOG_SCALE_MIN to the first entry, beyond the top to the
        # last, LOG_SCALE_MAX itself.
        index = log_scale_units.astype(np.intp)
        index -= self.first_index
        return self.scale_table.take(index, mode="clip")


def decode_latents(
    decoder: LaplaceDecoder, model: CoolChic, shapes: list[tuple[int, int]], bounds: tuple[int, ...]
) -> list[np.ndarray]:
    """The grids (float64 integer values, finest first) coded by ``encode_latents``, under the
    ARM of ``model`` (its quantised weights in float64)."""
    arm = WavefrontArm(model, max(bounds))
    schedule = Schedule(shapes, bounds, arm.rowcol)
    # Latents in units of 2^-F, the ARM's own (see __call__); zero context around every grid.
    buffer = np.zeros(schedule.buffer_size)
    neighbours = schedule.neighbours(arm.offsets)
    centres, grid_of = schedule.centres, schedule.grid_of
    for start, stop, bound in schedule.waves():
        centre = centres[start:stop]
        context = buffer[neighbours.take(grid_of[start:stop], axis=0) + centre[:, None]]
        mu, scale = arm(context)
        buffer[centre] = decoder.decode(mu, scale, -bound, bound) * arm.unit
    grids = [grid / arm.unit for grid in schedule.grids(buffer)]
    for index, (grid, bound) in enumerate(zip(grids, bounds, strict=True)):
        if grid.size and np.abs(grid).max() != bound:
            raise CodecError(
                f"corrupted file: latent grid {index} does not reach the bound {bound} its "
                "header gives"
            )
    return grids

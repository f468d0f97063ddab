"""NIF: a SIREN whose per-pixel period is set by a small modulator network."""

import itertools
import math

import torch
from torch import Tensor, nn

from inr_models.nif.fused import OMEGA, nif_forward
from inr_models.nif.presets import Widths

ENCODING_BASE = 1.4


def coordinate_grid(
    height: int, width: int, dtype=torch.float32, rows: slice = slice(None)
) -> Tensor:
    """(H, W, 2) (y, x) coordinates in [-1, 1], corners at ±1; ``rows`` keeps a band of rows (the
    same values as slicing the whole grid)."""
    ys, xs = _axis(height)[rows], _axis(width)
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).to(dtype)


def _axis(size: int) -> Tensor:
    return torch.arange(size, dtype=torch.float64) / max(size - 1, 1) * 2 - 1


def positional_encoding(coordinates: Tensor, frequencies: int) -> Tensor:
    """Raw coordinates, then sin and cos of 1.4^i·π·c per frequency i and per axis: 2 + 4F wide."""
    features = [coordinates]
    for i in range(frequencies):
        scaled = coordinates * (ENCODING_BASE**i * math.pi)
        for axis in range(coordinates.shape[-1]):
            features += [
                torch.sin(scaled[..., axis : axis + 1]),
                torch.cos(scaled[..., axis : axis + 1]),
            ]
    return torch.cat(features, dim=-1)


def grid_encoding(
    height: int, width: int, frequencies: int, dtype=torch.float32, rows: slice = slice(None)
) -> Tensor:
    """``positional_encoding(coordinate_grid(height, width, dtype, rows), frequencies)``, the same
    values computed once per row and per column (each feature depends on one axis) and broadcast:
    no sine per pixel (a third of a Kodak image's decoding time otherwise)."""
    ys, xs = _axis(height)[rows].to(dtype), _axis(width).to(dtype)
    columns = [ys[:, None], xs[None, :]]
    for i in range(frequencies):
        for values, shape in ((ys, (-1, 1)), (xs, (1, -1))):
            scaled = values * (ENCODING_BASE**i * math.pi)
            columns += [torch.sin(scaled).view(shape), torch.cos(scaled).view(shape)]
    encoded = torch.empty(len(ys), len(xs), len(columns), dtype=dtype)
    for index, column in enumerate(columns):
        encoded[..., index] = column
    return encoded


def _siren_init(layer: nn.Linear, first: bool) -> None:
    # SIREN: first layer U(±1/fan_in); later layers U(±√(6/fan_in)/ω). Biases keep PyTorch's init.
    bound = 1.0 / layer.in_features if first else math.sqrt(6.0 / layer.in_features) / OMEGA
    nn.init.uniform_(layer.weight, -bound, bound)


def layer_sizes(widths: Widths) -> tuple[list[int], list[int]]:
    """Features through the main network and through the modulator, input to output."""
    return (
        [2 + 4 * widths.frequencies, *widths.hidden, 3],
        [2 + 4 * widths.modulator_frequencies, *widths.modulator_hidden, 1],
    )


def _stack(sizes: list[int]) -> nn.ModuleList:
    layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
    for index, layer in enumerate(layers):
        _siren_init(layer, first=index == 0)
    return layers


class Nif(nn.Module):
    def __init__(self, widths: Widths):
        super().__init__()
        self.widths = widths
        main, modulator = layer_sizes(widths)
        self.main, self.modulator = _stack(main), _stack(modulator)

    def encode_inputs(self, coordinates: Tensor) -> tuple[Tensor, Tensor]:
        """Positional encodings of the main network and the modulator: constant per grid, so
        trainers compute them once."""
        return (
            positional_encoding(coordinates, self.widths.frequencies),
            positional_encoding(coordinates, self.widths.modulator_frequencies),
        )

    def encode_grid(
        self, height: int, width: int, dtype=torch.float32, rows: slice = slice(None)
    ) -> tuple[Tensor, Tensor]:
        """``encode_inputs`` of the coordinate grid (or a band of its rows), computed per axis."""
        return (
            grid_encoding(height, width, self.widths.frequencies, dtype, rows),
            grid_encoding(height, width, self.widths.modulator_frequencies, dtype, rows),
        )

    def forward(self, inputs: tuple[Tensor, Tensor]) -> Tensor:
        """Encoded (..., 2) coordinates -> (..., 3) colours in about [-1, 1]:
        sin(ω·(W·h + b)) layers in the modulator, whose output m sets the period
        p = ω + 10·m of the main network's sin(p·(W·h + b)) layers."""
        main_features, modulator_features = inputs
        pixels = main_features.shape[:-1]
        out = nif_forward(
            main_features.reshape(-1, main_features.shape[-1]),
            modulator_features.reshape(-1, modulator_features.shape[-1]),
            [(layer.weight, layer.bias) for layer in self.main],
            [(layer.weight, layer.bias) for layer in self.modulator],
        )
        return out.view(*pixels, out.shape[-1])

    def macs_per_pixel(self) -> int:
        return sum(layer.weight.numel() for layer in [*self.main, *self.modulator])

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
    ys = (torch.arange(height, dtype=torch.float64) / max(height - 1, 1) * 2 - 1)[rows]
    xs = torch.arange(width, dtype=torch.float64) / max(width - 1, 1) * 2 - 1
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).to(dtype)


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

"""The COOL-CHIC model: latent grids with gains, upsampling, synthesis and ARM together."""

import copy
import math

import torch
from torch import Tensor, nn

from inr_models.coolchic.layers import (
    Arm,
    BilinearUpsampling,
    Synthesis,
    Upsampling,
    arm_mlp,
    laplace_rate_bits,
    synthesize,
    upsample_many,
)
from inr_models.coolchic.presets import Architecture, ModuleGroup
from inr_models.coolchic.quantizers import Quantizer, QuantizerMode, quantize


def grid_shapes(height: int, width: int, n_grids: int) -> list[tuple[int, int]]:
    return [(math.ceil(height / 2**i), math.ceil(width / 2**i)) for i in range(n_grids)]


class CoolChic(nn.Module):
    def __init__(self, architecture: Architecture, height: int, width: int, latents: bool = True):
        super().__init__()
        self.architecture = architecture
        self.height, self.width = height, width
        # The decoder reads the latents from the file: it builds the network alone.
        shapes = grid_shapes(height, width, architecture.n_grids) if latents else []
        self.latents = nn.ParameterList(nn.Parameter(torch.zeros(1, 1, h, w)) for h, w in shapes)
        log2_gains = torch.arange(float(architecture.n_grids))
        if architecture.learned_gains:
            self.log2_gains = nn.Parameter(log2_gains)
        else:
            self.register_buffer("log2_gains", log2_gains)
        if architecture.upsampling == "bilinear":
            self.upsampling = BilinearUpsampling()
        else:
            self.upsampling = Upsampling(learned=architecture.learned_upsampling)
        self.synthesis = Synthesis(
            architecture.n_grids, architecture.synthesis, architecture.synthesis_init
        )
        self.arm = Arm(
            architecture.arm_rowcol, architecture.arm_hidden, architecture.arm_log_scale_bias
        )

    # Modules whose weights are quantised and sent, in bitstream order.
    def network_modules(self) -> dict[str, nn.Module]:
        modules = {"synthesis": self.synthesis, "arm": self.arm}
        if self.architecture.learned_upsampling:
            modules = {"synthesis": self.synthesis, "upsampling": self.upsampling, "arm": self.arm}
        return modules

    def parameters_of(self, group: ModuleGroup) -> list[nn.Parameter]:
        if group == "all":
            return list(self.parameters())
        if group == "latent":
            gains = [self.log2_gains] if self.architecture.learned_gains else []
            return [*self.latents, *gains]
        if group == "synthesis":  # without v2's upsampling kernel, as v2's fork trains it
            return list(self.synthesis.parameters())
        return list(self.arm.parameters())

    def gains(self) -> Tensor:
        """Each grid's factor from stored to coded integer domain (before rounding)."""
        gains = torch.pow(2.0, self.log2_gains)
        if self.architecture.gain_floor_one:
            # maximum, not clamp_min: at the tie (the finest grid starts at gain 1) it passes half
            # the gradient, as v2's fork does, so that gain trains; clamp_min would pass none.
            gains = torch.maximum(gains, torch.ones_like(gains))
        return gains / self.architecture.latent_step

    def quantized_latents(
        self, mode: QuantizerMode | Quantizer, generator: torch.Generator | None = None
    ) -> list[Tensor]:
        """The latents in the coded integer domain, rounded or as ``mode`` simulates it (its noise
        drawn from ``generator``, torch's default one if None)."""
        arch, gains = self.architecture, self.gains()
        scaled = [grid * gains[i] for i, grid in enumerate(self.latents)]
        if callable(mode):
            return [mode(grid, generator) for grid in scaled]
        noise, ste = arch.noise_gradient, arch.ste_gradient
        return [quantize(grid, mode, noise, ste, generator) for grid in scaled]

    def forward(
        self, mode: QuantizerMode | Quantizer, arm_rounding=None, generator=None
    ) -> tuple[Tensor, Tensor]:
        """(reconstruction in [0, 1] of shape (1, 3, H, W), total latent rate in bits)."""
        if arm_rounding is None:
            return forward_many([self], [mode], [generator])[0]
        latents = self.quantized_latents(mode, generator)
        return self.reconstruct(latents), self.latent_rate(latents, arm_rounding)

    def synthesis_input(self, latents: list[Tensor], round_to) -> Tensor:
        """(1, n_grids, H, W) in the exact decoder's arithmetic (``round_to`` after each step):
        the upsampled latents times the latent step."""
        upsampled = self.upsampling(latents, round_to)
        step = self.architecture.latent_step
        return upsampled if step == 1.0 else round_to(upsampled * step)

    def reconstruct(self, latents: list[Tensor]) -> Tensor:
        """(1, 3, H, W) in [0, 1] from coded latents (1, 1, h, w) per grid."""
        return _reconstructions([self], latents)

    def latent_rate(self, latents: list[Tensor], arm_rounding=None) -> Tensor:
        """Bits of the latents under the ARM. With ``arm_rounding`` (its quantised weights'
        rounding, ``exact.arm_rounding``), the integer ARM in float64 on detached latents, as the
        decoder computes it: the latents' gradient then comes through their coded values only."""
        if arm_rounding is None:
            return _rates([self], latents)[0]
        values = torch.cat([grid.flatten() for grid in latents])
        with torch.no_grad():
            integer_arm = copy.deepcopy(self.arm).double()
            mu, log_scale = integer_arm([g.detach().double() for g in latents], arm_rounding)
        mu, log_scale = mu.to(values.dtype), log_scale.to(values.dtype)
        return laplace_rate_bits(values, mu, log_scale).sum()

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    def n_latents(self) -> int:
        return sum(grid.numel() for grid in self.latents)

    def macs_per_pixel(self) -> dict[str, float]:
        pixels = self.height * self.width
        arm = self.arm.macs_per_latent() * self.n_latents() / pixels
        synthesis = self.synthesis.macs_per_pixel()
        shapes = grid_shapes(self.height, self.width, self.architecture.n_grids)
        upsampling = self.upsampling.macs_per_pixel(shapes)
        return {
            "arm": arm,
            "synthesis": synthesis,
            "upsampling": upsampling,
            "total": arm + synthesis + upsampling,
        }


def forward_many(
    models: list[CoolChic],
    modes: list[QuantizerMode | Quantizer],
    generators: list[torch.Generator | None],
) -> list[tuple[Tensor, Tensor]]:
    """``model(mode)`` of B models of one architecture and size at once: each fit's
    (reconstruction, latent bits) as it would get them alone, bit for bit on a CPU (batched
    matrix products give each fit its own product; kernels that are not batched run fit by fit).
    One set of kernels for B fits is what keeps a GPU busy: a single fit is launch-bound there."""
    if any(m.training != models[0].training for m in models):
        raise ValueError("forward_many: models in training and evaluation mode mixed")
    grids = _quantized_grids(models, modes, generators)
    # unbind, not a slice per fit: its backward stacks the B gradients in one pass, where B
    # slices would each spread theirs over a zero tensor of the whole batch.
    images = [image[None] for image in _reconstructions(models, grids).unbind(0)]
    return list(zip(images, _rates(models, grids).unbind(0), strict=True))


def _reconstructions(models: list[CoolChic], grids: list[Tensor]) -> Tensor:
    """(B, 3, H, W) in [0, 1] from B fits' coded latents (B, 1, h, w) per grid."""
    first = models[0]
    x = upsample_many([m.upsampling for m in models], grids)
    if first.architecture.latent_step != 1.0:
        x = x * first.architecture.latent_step
    synthesis = [m.synthesis for m in models]
    output = synthesize(first.synthesis.layers, *_stacked_parameters(synthesis), x)
    if first.architecture.rounds_evaluation_output and not first.training:
        output = torch.round(output * 255) / 255
    return output.clamp(0.0, 1.0)


def _rates(models: list[CoolChic], grids: list[Tensor]) -> Tensor:
    """(B,): each fit's latent bits under its own float ARM."""
    mu, log_scale = arm_mlp(models[0].arm, *_stacked_parameters([m.arm for m in models]), grids)
    values = torch.cat([grid.flatten(1) for grid in grids], dim=1)
    return laplace_rate_bits(values, mu, log_scale).sum(dim=1)


def _quantized_grids(models: list[CoolChic], modes: list, generators: list) -> list[Tensor]:
    """B fits' quantised latents, (B, 1, h, w) per grid: all fits' grids at once under one of
    COOL-CHIC's modes (each fit's noise from its own generator), fit by fit under a codec's own
    quantisers (C3's) or mixed modes."""
    mode = modes[0]
    if len(models) == 1 or callable(mode) or any(m != mode for m in modes):
        fits = zip(models, modes, generators, strict=True)
        per_fit = [model.quantized_latents(md, g) for model, md, g in fits]
        return [_stacked(level, torch.cat) for level in zip(*per_fit, strict=True)]
    arch = models[0].architecture
    # Fit by fit: a power over B fits' gains at once would take torch's vectorised exp2 for the
    # elements that fill a SIMD vector and the scalar one for the rest, which differ in the last
    # bit, so a fit's gains would depend on its place in the batch and the CPU's vector width
    # (seen on AVX2: three fits' 21 gains, 16 of them vectorised).
    gains = torch.stack([m.gains() for m in models])
    levels = zip(*(m.latents for m in models), strict=True)
    scaled = [torch.cat(level) * gains[:, i, None, None, None] for i, level in enumerate(levels)]
    noise, ste = arch.noise_gradient, arch.ste_gradient
    return [quantize(grid, mode, noise, ste, generators) for grid in scaled]


def _stacked_parameters(modules: list[nn.Module]) -> tuple[list[Tensor], list[Tensor]]:
    """The weights and the biases of B modules of one shape, each stacked along a new first
    dimension."""
    weights = [_stacked(ws, torch.stack) for ws in zip(*(m.weights for m in modules), strict=True)]
    biases = [_stacked(bs, torch.stack) for bs in zip(*(m.biases for m in modules), strict=True)]
    return weights, biases


def _stacked(tensors, join) -> Tensor:
    """B fits' tensors along a new (``torch.stack``) or the first (``torch.cat``) dimension; one
    fit's as a view, without a copy."""
    if len(tensors) > 1:
        return join(tensors)
    return tensors[0][None] if join is torch.stack else tensors[0]

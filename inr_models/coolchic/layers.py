"""COOL-CHIC building blocks: upsampling, synthesis and the auto-regressive entropy model (ARM).

Each block keeps its trainable tensors as ``weights`` and ``biases`` lists in a fixed order:
network quantisation and the bitstream walk them in that order.
"""

import itertools
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from inr_models.coolchic.fused import fused_mlp
from inr_models.coolchic.gelu import gelu_exact

# Latents per chunk of the exact ARM: 64k columns of 12–24 float64 channels, a few MB each.
EXACT_CHUNK_COLUMNS = 1 << 16
# PyTorch's bicubic (A = -0.75, align_corners=False) ×2 impulse response: the fixed v1 upsampler,
# and the initial value of v2's learned 8x8 transposed convolution (its outer product).
BICUBIC_TAPS = (-0.03515625, -0.10546875, 0.26171875, 0.87890625)
UPSAMPLING_KERNEL = 8


def bicubic_kernel_2d() -> Tensor:
    taps = torch.tensor(BICUBIC_TAPS + BICUBIC_TAPS[::-1])
    return torch.outer(taps, taps)[None, None]


def batched_kernels(x: Tensor) -> bool:
    """Whether B fits' convolutions run as one grouped kernel: on a GPU, where launches cost
    more than arithmetic. On a CPU they run fit by fit, where a grouped convolution's sums would
    not be each fit's single-fit sums bit for bit."""
    return x.device.type != "cpu"


def upsample_twice(x: Tensor, kernel: Tensor) -> Tensor:
    """×2 upsampling of (C, 1, h, w) by a stride-2 transposed conv with replicate borders; a
    kernel (1, 1, 8, 8) for every plane, or one per plane (C, 1, 8, 8: B fits' planes at once).

    With the bicubic kernel this equals F.interpolate(mode="bicubic", align_corners=False) at
    scale 2, borders included.
    """
    pad = UPSAMPLING_KERNEL // 2
    crop = (3 * UPSAMPLING_KERNEL - 2) // 2
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    if kernel.shape[0] == 1:
        y = F.conv_transpose2d(padded, kernel, stride=2)
    else:
        planes = kernel.shape[0]
        y = F.conv_transpose2d(padded.transpose(0, 1), kernel, stride=2, groups=planes)
        y = y.transpose(0, 1)
    return y[:, :, crop:-crop, crop:-crop]


class _BicubicTwice(torch.autograd.Function):
    """v1's fixed ×2 bicubic upsampling while training: PyTorch's interpolate forward, and its
    adjoint written out as two strided 1-D convolutions with the replicate borders folded back
    (PyTorch's own bicubic backward was a third of v1's training step on CPU)."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        # upsample_twice = crop ∘ conv_transpose ∘ replicate-pad, so its adjoint is
        # fold ∘ conv ∘ zero-pad; the bicubic kernel is separable, so the conv is two 1-D ones.
        taps = torch.tensor(BICUBIC_TAPS + BICUBIC_TAPS[::-1], dtype=grad.dtype, device=grad.device)
        pad, crop = UPSAMPLING_KERNEL // 2, (3 * UPSAMPLING_KERNEL - 2) // 2
        *planes, height, width = grad.shape
        g = grad.reshape(-1, 1, height, width)
        g = F.conv2d(g, taps.view(1, 1, -1, 1), stride=(2, 1), padding=(crop, 0))
        g = F.conv2d(g, taps.view(1, 1, 1, -1), stride=(1, 2), padding=(0, crop))
        g = _fold_replicate_pad(_fold_replicate_pad(g, 2, pad), 3, pad)
        return g.reshape(*planes, height // 2, width // 2)


def _fold_replicate_pad(g: Tensor, dim: int, pad: int) -> Tensor:
    """Adjoint of replicate-padding ``pad`` values on both ends of ``dim``."""
    size = g.shape[dim] - 2 * pad
    inner = g.narrow(dim, pad, size).clone()
    inner.narrow(dim, 0, 1).add_(g.narrow(dim, 0, pad).sum(dim, keepdim=True))
    inner.narrow(dim, size - 1, 1).add_(g.narrow(dim, pad + size, pad).sum(dim, keepdim=True))
    return inner


def upsample_twice_polyphase(x: Tensor, kernel: Tensor) -> Tensor:
    """The same ×2 upsampling as four 4x4 convolutions whose outputs interleave.

    Mathematically identical to ``upsample_twice``; about 3x faster in float64 (the exact
    decoder), slower to differentiate in float32 (training).
    """
    taps = kernel[0, 0]
    flipped = [[taps[[2 * (3 - t) + a for t in range(4)]][:, [2 * (3 - u) + b for u in range(4)]]
                for b in (0, 1)] for a in (0, 1)]  # fmt: skip
    phases = torch.stack([torch.stack(row) for row in flipped]).reshape(4, 1, 4, 4)
    height, width = x.shape[-2:]
    y = F.pixel_shuffle(F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), phases), 2)
    return y[:, :, 1 : 1 + 2 * height, 1 : 1 + 2 * width]


class Upsampling(nn.Module):
    """Hierarchical upsampling: coarsest grid to the next one's size, concatenated with it, up
    again, ...

    v1 uses PyTorch's bicubic to the finer grid's size, as its fork does (×2, or ×(2n−1)/n along
    an odd side); v2 learns one shared 8x8 transposed-conv kernel initialised to the bicubic ×2
    one, and crops the ×2 result to the finer grid, as its fork does.
    """

    def __init__(self, learned: bool):
        super().__init__()
        self.learned = learned
        kernel = bicubic_kernel_2d()
        if learned:
            self.kernel = nn.Parameter(kernel)
        else:
            self.register_buffer("kernel", kernel)

    @property
    def weights(self) -> list[Tensor]:
        return [self.kernel] if self.learned else []

    @property
    def biases(self) -> list[Tensor]:
        return []

    def forward(self, latents: list[Tensor], round_to=None) -> Tensor:
        """(1, n_grids, H, W) from the grids, finest first; with ``round_to``, the exact form."""
        return upsample_hierarchy(latents, self.level, round_to)

    def macs_per_pixel(self, shapes: list[tuple[int, int]]) -> float:
        # Each ×2 level costs 16 MACs per output sample (8x8 kernel, 4 phases) per channel.
        n_grids, (height, width) = len(shapes), shapes[0]
        macs = sum(16 * (n_grids - 1 - i) * h * w for i, (h, w) in enumerate(shapes[:-1]))
        return macs / (height * width)

    def level(self, x: Tensor, height: int, width: int, round_to=None) -> Tensor:
        """(C, 1, h, w) -> (C, 1, height, width); with ``round_to``, the exact decoder's form."""
        if round_to is None:
            if self.learned:
                return upsample_twice(x, self.kernel)[:, :, :height, :width]
            if (height, width) == (2 * x.shape[-2], 2 * x.shape[-1]):
                return _BicubicTwice.apply(x)
            return F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False)
        if self.learned or (height, width) == (2 * x.shape[-2], 2 * x.shape[-1]):
            return round_to(upsample_twice_polyphase(x, self.kernel)[:, :, :height, :width])
        return bicubic_exact(x, height, width, round_to)


def upsample_many(modules: list[nn.Module], latents: list[Tensor]) -> Tensor:
    """(B, n_grids, H, W) from B fits' grids (B, 1, h_i, w_i), each fit with its own upsampling
    module (all of one kind). On a CPU each fit's planes go alone (a convolution's sums depend on
    how many planes it takes: a fit then gets its single-fit gradients bit for bit); on a GPU all
    fits' planes go at once, learned kernels as a grouped convolution."""
    first = modules[0]
    if isinstance(first, BilinearUpsampling):
        return first(latents)
    if len(modules) == 1 or (batched_kernels(latents[0]) and not first.learned):
        return upsample_hierarchy(latents, first.level)
    if batched_kernels(latents[0]):
        kernels = torch.cat([m.kernel for m in modules])

        def grouped(planes: Tensor, height: int, width: int, round_to=None) -> Tensor:
            per_plane = kernels.repeat_interleave(planes.shape[0] // len(modules), dim=0)
            return upsample_twice(planes, per_plane)[:, :, :height, :width]

        return upsample_hierarchy(latents, grouped)

    def fit_by_fit(planes: Tensor, height: int, width: int, round_to=None) -> Tensor:
        parts = planes.chunk(len(modules))
        return torch.cat([m.level(p, height, width) for m, p in zip(modules, parts, strict=True)])

    return upsample_hierarchy(latents, fit_by_fit)


class BilinearUpsampling(nn.Module):
    """C3's: every grid resized straight to the finest one's size, bilinear (half-pixel centres,
    borders replicated, as PyTorch's align_corners=False), then stacked. Nothing is learned."""

    def forward(self, latents: list[Tensor], round_to=None) -> Tensor:
        height, width = latents[0].shape[-2:]
        resized = [latents[0]]
        for grid in latents[1:]:
            if round_to is None:
                resized.append(
                    F.interpolate(grid, (height, width), mode="bilinear", align_corners=False)
                )
            else:
                resized.append(bilinear_exact(grid, height, width, round_to))
        return torch.cat(resized, dim=1)

    def macs_per_pixel(self, shapes: list[tuple[int, int]]) -> float:
        return 4.0 * (len(shapes) - 1)  # 4 taps per pixel per resized grid


def bilinear_exact(x: Tensor, height: int, width: int, round_to) -> Tensor:
    """F.interpolate(mode="bilinear", align_corners=False) of float64 grids in exact arithmetic
    (see ``_resize_exact``); its taps are exact already for power-of-two ratios."""
    return _resize_exact(x, height, width, round_to, _bilinear_taps)


def _bilinear_taps(size_in: int, size_out: int) -> tuple[Tensor, Tensor]:
    """Source indices and weights of PyTorch's bilinear resize (source clamped at 0) per output."""
    source = (torch.arange(size_out, dtype=torch.float64) + 0.5) * (size_in / size_out) - 0.5
    first = source.clamp(0).floor()
    far = torch.round((source.clamp(0) - first) * 2**16) / 2**16
    index = (first.long()[:, None] + torch.arange(2)).clamp(max=size_in - 1)
    return index, torch.stack((1 - far, far), dim=1)


def upsample_hierarchy(latents: list[Tensor], level, round_to=None) -> Tensor:
    """(B, n_grids, H, W) synthesis input from grids of shape (B, 1, h_i, w_i), finest first (B
    fits, one for a single one); ``level(x, height, width, round_to)`` brings a stack of planes
    (B·k, 1, h, w), fit after fit, to the next size."""
    batch, upsampled = latents[0].shape[0], latents[-1]
    for finer in reversed(latents[:-1]):
        height, width = finer.shape[-2:]
        planes = upsampled.reshape(-1, 1, *upsampled.shape[-2:])
        planes = level(planes, height, width, round_to)
        upsampled = torch.cat((finer, planes.view(batch, -1, height, width)), dim=1)
    return upsampled


def bicubic_exact(x: Tensor, height: int, width: int, round_to) -> Tensor:
    """PyTorch's bicubic resize (align_corners=False, borders replicated) of float64 grids in
    exact arithmetic (see ``_resize_exact``). Used where a side is odd (v1)."""
    return _resize_exact(x, height, width, round_to, _bicubic_taps)


def _resize_exact(x: Tensor, height: int, width: int, round_to, taps_of) -> Tensor:
    """A separable resize of float64 grids, one side after the other: ``taps_of(size_in,
    size_out)`` gives each output's source indices and weights (rounded to 2^-16), and
    ``round_to`` follows each side, so every value stays exact and any machine computes the same
    bits."""
    for axis, size in ((2, height), (3, width)):
        index, taps = taps_of(x.shape[axis], size)
        shape = [1, 1, 1, 1]
        shape[axis] = size
        out = torch.zeros(*x.shape[:axis], size, *x.shape[axis + 1 :], dtype=x.dtype)
        for k in range(index.shape[1]):
            out += x.index_select(axis, index[:, k].contiguous()) * taps[:, k].reshape(shape)
        x = round_to(out)
    return x


def _bicubic_taps(size_in: int, size_out: int) -> tuple[Tensor, Tensor]:
    """Source indices and weights of PyTorch's cubic convolution (A = −0.75) per output."""
    a = -0.75
    source = (torch.arange(size_out, dtype=torch.float64) + 0.5) * (size_in / size_out) - 0.5
    first = torch.floor(source)
    t = source - first

    def near(d):  # |d| <= 1
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):  # 1 < |d| < 2
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    taps = torch.stack((far(t + 1), near(t), near(1 - t), far(2 - t)), dim=1)
    taps = torch.round(taps * 2**16) / 2**16
    index = (first.long()[:, None] + torch.arange(-1, 3)).clamp(0, size_in - 1)
    return index, taps


@dataclass(frozen=True)
class SynthesisLayer:
    out_channels: int
    kernel_size: int
    residual: bool
    relu: bool
    gelu: bool = False  # C3's activation (never with relu)


class Synthesis(nn.Module):
    """Per-pixel layers (1x1 = the v1 MLP) and 3x3 convs with replicate padding (v2).

    ``init`` of the non-residual weights: "normal" (randn) or "uniform" (PyTorch's default conv
    init), divided by out² either way, or "fan_in" (C3: std 1/√fan_in, truncated at 2 std);
    biases start at zero. GELU layers decode through ``gelu_exact``.
    """

    def __init__(self, in_channels: int, layers: tuple[SynthesisLayer, ...], init: str = "normal"):
        super().__init__()
        self.layers = layers
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for layer in layers:
            if layer.residual and layer.out_channels != in_channels:
                raise ValueError("a residual synthesis layer needs equal input and output widths")
            shape = (layer.out_channels, in_channels, layer.kernel_size, layer.kernel_size)
            if layer.residual:
                weight = torch.zeros(shape)  # starts as the identity: no jump in output range
            elif init == "normal":
                weight = torch.randn(shape) / layer.out_channels**2
            elif init == "fan_in":
                std = 1 / math.sqrt(in_channels * layer.kernel_size**2)
                weight = nn.init.trunc_normal_(torch.empty(shape), std=std, a=-2 * std, b=2 * std)
            else:  # PyTorch's default conv init, scaled down
                weight = nn.init.kaiming_uniform_(torch.empty(shape), a=math.sqrt(5))
                weight /= layer.out_channels**2
            self.weights.append(nn.Parameter(weight))
            self.biases.append(nn.Parameter(torch.zeros(layer.out_channels)))
            in_channels = layer.out_channels

    def forward(self, x: Tensor, round_to=None) -> Tensor:
        """(1, C, H, W) -> (1, 3, H, W)."""
        weights = [weight[None] for weight in self.weights]
        return synthesize(self.layers, weights, [bias[None] for bias in self.biases], x, round_to)

    def halo(self) -> int:
        """Rows (or columns) beyond an output pixel that its value depends on."""
        return sum(layer.kernel_size // 2 for layer in self.layers)

    def macs_per_pixel(self) -> int:
        total, in_channels = 0, self.weights[0].shape[1]
        for layer in self.layers:
            total += in_channels * layer.out_channels * layer.kernel_size**2
            in_channels = layer.out_channels
        return total


def synthesize(
    layers: tuple[SynthesisLayer, ...], weights: list[Tensor], biases: list[Tensor], x: Tensor,
    round_to=None,
) -> Tensor:  # fmt: skip
    """(B, C, H, W) -> (B, 3, H, W) for B fits, each with its own weights (B, out, in, k, k) and
    biases (B, out). 1x1 layers run as matrix products on the (B, C, H·W) view, which trains
    several times faster on CPU than 1x1 convolutions; larger kernels as one grouped convolution
    on a GPU, fit by fit on a CPU (``batched_kernels``)."""
    batch, height, width = x.shape[0], *x.shape[-2:]
    layers = list(zip(layers, weights, biases, strict=True))

    # Training and float evaluation run the leading 1x1 layers without GELU as one fused MLP.
    def fusable(item) -> bool:
        return item[0].kernel_size == 1 and not item[0].gelu

    head = [] if round_to is not None else list(itertools.takewhile(fusable, layers))
    if head:
        x = fused_mlp(
            x.reshape(batch, x.shape[1], -1),
            [weight[:, :, :, 0, 0] for _, weight, _ in head],
            [bias for _, _, bias in head],
            residual=[layer.residual for layer, _, _ in head],
            relu=[layer.relu for layer, _, _ in head],
        ).view(batch, -1, height, width)
        layers = layers[len(head) :]
    for layer, weight, bias in layers:
        if layer.kernel_size == 1:
            flat = x.reshape(batch, x.shape[1], -1)
            y = torch.baddbmm(bias[:, :, None], weight[:, :, :, 0, 0], flat)
            y = y.view(batch, -1, height, width)
        else:
            pad = layer.kernel_size // 2
            padded = F.pad(x, (pad,) * 4, mode="replicate")
            if batch > 1 and batched_kernels(x):  # all fits as one grouped convolution
                grouped = padded.reshape(1, -1, *padded.shape[-2:])
                y = F.conv2d(grouped, weight.flatten(0, 1), bias.flatten(), groups=batch)
                y = y.view(batch, -1, height, width)
            else:
                fits = [F.conv2d(padded[i : i + 1], weight[i], bias[i]) for i in range(batch)]
                y = fits[0] if batch == 1 else torch.cat(fits)
        # In place: y is a fresh output, and no backward needs the values of the layer's
        # output before the residual or the ReLU (saves two activations per layer).
        if layer.residual:
            y.add_(x)
        if round_to is not None:
            y = round_to(y)
        if layer.gelu:
            x = F.gelu(y) if round_to is None else round_to(gelu_exact(y))
        else:
            x = torch.relu_(y) if layer.relu else y
    return x


def causal_offsets(rowcol: int) -> list[tuple[int, int]]:
    """(dy, dx) of the context: the raster-order positions before the centre of a
    (2·rowcol+1)² window, e.g. 12 for rowcol 2 (v1), 24 for rowcol 3 (v2)."""
    size = 2 * rowcol + 1
    return [(i // size - rowcol, i % size - rowcol) for i in range((size * size - 1) // 2)]


class Arm(nn.Module):
    """MLP from the causal context of a latent to (μ, log-scale) of its Laplace model.

    Hidden layers whose width equals their input width are residual and zero-initialised.
    """

    def __init__(self, rowcol: int, hidden: tuple[int, ...], log_scale_bias: float = 0.0):
        super().__init__()
        self.rowcol = rowcol
        self.offsets = causal_offsets(rowcol)
        widths = [len(self.offsets), *hidden, 2]
        self.residual = [a == b for a, b in itertools.pairwise(widths)]
        self.residual[-1] = False
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for (fan_in, fan_out), residual in zip(
            itertools.pairwise(widths), self.residual, strict=True
        ):
            weight = torch.zeros(fan_out, fan_in) if residual else torch.randn(fan_out, fan_in)
            self.weights.append(nn.Parameter(weight if residual else weight / fan_out**2))
            self.biases.append(nn.Parameter(torch.zeros(fan_out)))
        with torch.no_grad():
            self.biases[-1][1] = log_scale_bias

    def forward(self, latents: list[Tensor], round_to=None) -> tuple[Tensor, Tensor]:
        """μ and raw log-scale of every latent, grids flattened and concatenated in order."""
        if round_to is None:  # training and float evaluation
            weights = [weight[None] for weight in self.weights]
            mu, log_scale = arm_mlp(self, weights, [bias[None] for bias in self.biases], latents)
            return mu[0], log_scale[0]
        last = len(self.weights) - 1
        h = _CausalContexts.apply(self.rowcol, self.offsets, *latents)[0]
        # The exact (float64, no gradient) path: column chunks bound its activations' memory;
        # every column is computed alone and exactly, so chunking changes no bit.
        out = h.new_empty(2, h.shape[1])
        for start in range(0, h.shape[1], EXACT_CHUNK_COLUMNS):
            part = slice(start, start + EXACT_CHUNK_COLUMNS)
            x = h[:, part]
            for i, (weight, bias) in enumerate(zip(self.weights, self.biases, strict=True)):
                y = torch.addmm(bias[:, None], weight, x)
                if self.residual[i]:
                    y.add_(x)
                x = round_to(y)
                if i < last:
                    x = torch.relu_(x)
            out[:, part] = x
        return out[0], out[1]

    def macs_per_latent(self) -> int:
        return sum(w.numel() for w in self.weights)


def arm_mlp(
    arm: Arm, weights: list[Tensor], biases: list[Tensor], latents: list[Tensor]
) -> tuple[Tensor, Tensor]:
    """μ and raw log-scale, each (B, Σ h·w), of B fits' latents (B, 1, h, w) per grid, under ARMs
    of ``arm``'s shape with the weights (B, out, in) and biases (B, out)."""
    h = _CausalContexts.apply(arm.rowcol, arm.offsets, *latents)
    relu = [i < len(weights) - 1 for i in range(len(weights))]
    h = fused_mlp(h, weights, biases, arm.residual, relu)
    return h[:, 0], h[:, 1]


class _CausalContexts(torch.autograd.Function):
    """(B, n_context, Σ h·w): the zero-padded causal neighbours of every latent of B fits' grids
    (B, 1, h, w), grids in order.

    Each row is a shifted view of a padded grid copied straight into place; the backward adds the
    rows back onto the padded grids' gradients in place, where stacking views and concatenating
    grids would copy every context twice and allocate a padded gradient per neighbour.
    """

    @staticmethod
    def forward(ctx, rowcol: int, offsets: list[tuple[int, int]], *grids: Tensor) -> Tensor:
        r = rowcol
        sizes = [grid.shape[-2] * grid.shape[-1] for grid in grids]
        batch = grids[0].shape[0]
        out = grids[0].new_empty(batch, len(offsets), sum(sizes))
        for grid, part in zip(grids, _column_parts(sizes), strict=True):
            height, width = grid.shape[-2:]
            padded = F.pad(grid[:, 0], (r, r, r, 0))
            for index, (dy, dx) in enumerate(offsets):
                out[:, index, part].view(batch, height, width).copy_(
                    padded[:, r + dy : r + dy + height, r + dx : r + dx + width]
                )
        ctx.rowcol, ctx.offsets, ctx.shapes = r, offsets, [grid.shape for grid in grids]
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):
        r, grads = ctx.rowcol, []
        sizes = [shape[-2] * shape[-1] for shape in ctx.shapes]
        batch = grad.shape[0]
        for shape, part in zip(ctx.shapes, _column_parts(sizes), strict=True):
            height, width = shape[-2:]
            padded = grad.new_zeros(batch, height + r, width + 2 * r)
            for index, (dy, dx) in enumerate(ctx.offsets):
                window = padded[:, r + dy : r + dy + height, r + dx : r + dx + width]
                window += grad[:, index, part].reshape(batch, height, width)
            grads.append(padded[:, r:, r : r + width].reshape(shape))
        return (None, None, *grads)


def _column_parts(sizes: list[int]) -> list[slice]:
    starts = list(itertools.accumulate(sizes, initial=0))
    return [slice(a, b) for a, b in itertools.pairwise(starts)]


LOG_SCALE_MIN, LOG_SCALE_MAX = -10.0, 13.8155
RATE_FLOOR = 2.0**-16


def laplace_scale(log_scale: Tensor) -> Tensor:
    """scale b = exp(−0.5·clamp(s)): bounded to [1e-3, 150]."""
    return torch.exp(-0.5 * log_scale.clamp(LOG_SCALE_MIN, LOG_SCALE_MAX))


def laplace_rate_bits(values: Tensor, mu: Tensor, log_scale: Tensor) -> Tensor:
    """−log2 P(value) per latent, P from the Laplace CDF over [v − ½, v + ½], floored at 2^-16."""
    scale = laplace_scale(log_scale)

    def cdf(x: Tensor) -> Tensor:
        return 0.5 - 0.5 * (x - mu).sign() * torch.expm1(-(x - mu).abs() / scale)

    probability = (cdf(values + 0.5) - cdf(values - 0.5)).clamp_min(RATE_FLOOR)
    return -torch.log2(probability)

"""Wasserstein distortion (Qiu, Wagner, Ballé and Theis, 2024) as Cool-Chic 5 trains with it.

Each feature map is compared through local statistics: at pyramid level 0 the features
themselves, at level k + 1 the local mean and standard deviation under k + 1 binomial blurs (with a
2× decimation between them), that is, the 2-Wasserstein distance between local Gaussian fits. The
σ map chooses the level: level i weighs relu(1 − |log2 σ − i|), so log2 σ = 0 is plain fidelity
and a larger σ compares texture statistics over a wider window.

As in Cool-Chic 5: VGG-16's relu1_2, relu2_2, relu3_3 and relu4_3 outputs on the [0, 1] image (no
ImageNet normalisation), a constant log2 σ = 3, 5 levels, zero padding (so borders weigh the lower
levels a little), a mean over channels and positions per level and a plain sum over maps.

One deliberate difference: Cool-Chic 5 clamps the variances inside ``no_grad``, so its standard
deviation terms count in the value but pass no gradient; here they pass it (clamped at the same
floor), as the distortion's definition intends.
"""

from functools import cache

import torch
import torch.nn.functional as F

from losses import networks
from losses.target_features import target_features

LOG2_SIGMA = 3.0
LEVELS = 5
# Floor of a local variance before its square root (Cool-Chic 5's value).
VARIANCE_FLOOR = 5e-7
# Outputs of torchvision's vgg16().features read: after relu1_2, relu2_2, relu3_3, relu4_3.
VGG_MAPS = (3, 8, 15, 22)

_BINOMIAL = torch.tensor([0.25, 0.5, 0.25])


def _blur(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3×3 binomial blur of each plane of an (N, C, H, W) stack, zero padding. One depthwise
    convolution over the channels: on the CPU about 8× faster than the same blur with the planes
    stacked as a batch of one-channel images."""
    channels = x.shape[1]
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(x).expand(channels, 1, 3, 3)
    return F.conv2d(x, kernel, stride=stride, padding=1, groups=channels)


@cache
def _level_weights(shape: tuple[int, int], log2_sigma: float) -> tuple[torch.Tensor | None, ...]:
    """Weight map of each level 0..LEVELS, the size of that level's distance map; None for a level
    the σ map gives no weight (computed once per size, on the CPU: no device sync per step)."""
    sigma_map = torch.full((1, 1, *shape), float(log2_sigma), dtype=torch.float64)
    maps = [sigma_map, sigma_map]
    for _ in range(LEVELS - 1):
        maps.append(_blur(maps[-1], stride=2))
    weights = [F.relu(1 - (level_map - i).abs()) for i, level_map in enumerate(maps)]
    return tuple(weight if weight.any() else None for weight in weights)


def _local_statistics(
    feature: torch.Tensor, levels: int
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mean, standard deviation) at each level 1..levels of an (N, C, H, W) feature map."""
    first, second, found = feature, feature.square(), []
    for _ in range(levels):
        mean, mean_of_square = _blur(first), _blur(second)
        variance = (mean_of_square - mean.square()).clamp_min(VARIANCE_FLOOR)
        found.append((mean, variance.sqrt()))
        first, second = mean[..., ::2, ::2], mean_of_square[..., ::2, ::2]
    return found


def map_distortion(
    x: torch.Tensor, y: torch.Tensor, log2_sigma: float = LOG2_SIGMA
) -> torch.Tensor:
    """Wasserstein distortion between two (N, C, H, W) feature maps."""
    weights = [
        None if w is None else w.to(x)
        for w in _level_weights(tuple(x.shape[-2:]), float(log2_sigma))
    ]
    total = x.new_zeros(())
    if weights[0] is not None:
        total = total + (weights[0] * (x - y).square()).mean()
    # Levels above the last one the σ map weighs are never read: not computed.
    levels = max((i for i, weight in enumerate(weights) if weight is not None), default=0)
    stats_x, stats_y = _local_statistics(x, levels), _local_statistics(y, levels)
    for level, ((mean_x, std_x), (mean_y, std_y)) in enumerate(zip(stats_x, stats_y, strict=True)):
        weight = weights[level + 1]
        if weight is not None:  # a σ map picks one or two levels: skip the others' arithmetic
            distance = (mean_x - mean_y).square() + (std_x - std_y).square()
            total = total + (weight * distance).mean()
    return total


def _vgg_maps(image: torch.Tensor, layers: torch.nn.Module) -> list[torch.Tensor]:
    maps, h = [], image
    for index, layer in enumerate(layers):
        h = layer(h)
        if index in VGG_MAPS:
            maps.append(h)
    return maps


def wasserstein_distortion(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over VGG-16's four maps of their Wasserstein distortion; images in [0, 1]."""
    layers = networks.vgg16_features(x.device)
    target = target_features(y, layers, lambda image: _vgg_maps(image, layers))
    maps = zip(_vgg_maps(x.clamp(0, 1), layers), target, strict=True)
    return sum(map_distortion(a, b) for a, b in maps)

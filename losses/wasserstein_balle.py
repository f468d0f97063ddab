"""Wasserstein distortion as Ballé et al. define it for images (CVPR 2025, "Good, Cheap, and
Fast"; their PyTorch code, balle-lab/wasserstein-distortion), written here from that definition.

It differs from Cool-Chic 5's training loss (``losses.wasserstein``) in what it reads: the
ImageNet-normalised image itself and VGG-16's relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3, with
every max pooling replaced by 2×2 average pooling, at three input scales (each a binomial blur and
2× decimation of the last): 16 feature maps, summed. Per map, the log2 σ map is resized to the
map (bilinear, antialiased) and lowered by the log2 of the size ratio, so σ keeps its meaning in
image pixels; level 0 compares the features, level i ≥ 1 the local means and standard deviations
after i binomial blurs (a 2× decimation between levels, the second moment carried down), weighted
by relu(1 − |log2 σ − i|), each level averaged over batch, channels and positions. Padding is zero
throughout, the variance floor 1e-8.

``tests/losses/data/wasserstein_balle/golden.json`` holds values the reference code computed, with
their source: this implementation is held to them.
"""

import copy
import math
from functools import cache

import torch
import torch.nn.functional as F

from losses import networks
from losses.target_features import target_features

# The constant log2 σ the ``wd`` loss term and metric use: Cool-Chic 5's (``losses.wasserstein``),
# for lack of the saliency-derived σ maps of Ballé et al.'s study.
LOG2_SIGMA = 3.0
# The short side below which relu5_3 of the third scale has no pixel left.
MIN_SIDE = 64
# The pretrained network it reads (as `inr-study fetch weights --networks` names it).
NETWORK = "vgg16-relu5_3"
SCALES = 3
LEVELS = 5
VARIANCE_FLOOR = 1e-8
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# torchvision `features` indices read (relu1_2 … relu5_3) and the max poolings before them.
VGG_MAPS = (3, 8, 15, 22, 29)
VGG_POOLS = (4, 9, 16, 23)

_BINOMIAL = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64)


def _lowpass(x: torch.Tensor, stride: int = 1) -> torch.Tensor:
    """3×3 binomial blur of every plane, zero padding, then every ``stride``-th sample."""
    channels = x.shape[1]
    kernel = torch.outer(_BINOMIAL, _BINOMIAL).to(x).expand(channels, 1, 3, 3)
    return F.conv2d(x, kernel, stride=stride, padding=1, groups=channels)


def unavailable() -> str | None:
    """Why WD cannot be computed here (VGG-16's weights through relu5_3 missing), or None."""
    return networks.unavailable(NETWORK)


def average_pooled_vgg(device: torch.device | str, dtype: torch.dtype) -> torch.nn.Sequential:
    """VGG-16 through relu5_3, ImageNet weights, with average pooling in place of max pooling
    (the definition's), in ``dtype`` on ``device``."""
    return _average_pooled(networks.vgg16_features(device, through="relu5_3"), dtype)


@cache
def _average_pooled(source: torch.nn.Module, dtype: torch.dtype) -> torch.nn.Sequential:
    """``source``'s layers (shared, frozen) with its poolings replaced, kept per source and
    dtype; in another dtype than ``source``'s, a copy, so the shared network stays as it is."""
    pooled = torch.nn.Sequential(
        *(torch.nn.AvgPool2d(2, 2) if i in VGG_POOLS else layer for i, layer in enumerate(source))
    )
    return pooled if next(source.parameters()).dtype == dtype else copy.deepcopy(pooled).to(dtype)


def feature_maps(image: torch.Tensor, vgg: torch.nn.Module) -> list[torch.Tensor]:
    """The 16 maps of an (N, 3, H, W) image in [0, 1]: the normalised image, then the five VGG
    maps at each of the three scales."""
    mean = torch.tensor(IMAGENET_MEAN).to(image).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).to(image).view(1, 3, 1, 1)
    x = (image - mean) / std
    maps = [x]
    for scale in range(SCALES):
        if scale:
            x = _lowpass(x, stride=2)
        h = x
        for index, layer in enumerate(vgg):
            h = layer(h)
            if index in VGG_MAPS:
                maps.append(h)
    return maps


def map_distortion(a: torch.Tensor, b: torch.Tensor, log2_sigma: torch.Tensor) -> torch.Tensor:
    """WD between two (N, C, h, w) feature maps under an image-sized (N, 1, H, W) log2 σ map."""
    height, width = log2_sigma.shape[-2:]
    sigma = F.interpolate(log2_sigma, size=a.shape[-2:], mode="bilinear", antialias=True)
    # σ counts image pixels: a map 2^k times smaller sees it 2^k times smaller.
    ratio = (math.log2(height / a.shape[-2]) + math.log2(width / a.shape[-1])) / 2
    sigma = F.relu(sigma - ratio)
    total = (F.relu(1 - sigma.abs()) * (a - b).square()).mean()
    first_a, second_a, first_b, second_b = a, a.square(), b, b.square()
    for level in range(1, LEVELS + 1):
        if level > 1:
            sigma = _lowpass(sigma, stride=2)
        mean_a, mean_b = _lowpass(first_a), _lowpass(first_b)
        square_a, square_b = _lowpass(second_a), _lowpass(second_b)
        std_a = (square_a - mean_a.square()).clamp_min(VARIANCE_FLOOR).sqrt()
        std_b = (square_b - mean_b.square()).clamp_min(VARIANCE_FLOOR).sqrt()
        distance = (mean_a - mean_b).square() + (std_a - std_b).square()
        total = total + (F.relu(1 - (sigma - level).abs()) * distance).mean()
        first_a, second_a = mean_a[..., ::2, ::2], square_a[..., ::2, ::2]
        first_b, second_b = mean_b[..., ::2, ::2], square_b[..., ::2, ::2]
    return total


def wasserstein_distortion(
    x: torch.Tensor, y: torch.Tensor, log2_sigma: float | torch.Tensor
) -> torch.Tensor:
    """WD between (N, 3, H, W) images in [0, 1]; ``log2_sigma`` a constant or an (N, 1, H, W)
    map. Symmetric; the features of ``y`` (a fit's target) are computed once per fit."""
    vgg = average_pooled_vgg(x.device, x.dtype)
    if not torch.is_tensor(log2_sigma):
        log2_sigma = torch.full((x.shape[0], 1, *x.shape[-2:]), float(log2_sigma))
    log2_sigma = log2_sigma.to(x)
    target = target_features(y, vgg, lambda image: feature_maps(image, vgg))
    maps = zip(feature_maps(x, vgg), target, strict=True)
    return sum(map_distortion(a, b, log2_sigma) for a, b in maps)

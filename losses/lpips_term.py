"""LPIPS v0.1 as a training term: ``lpips.LPIPS.forward``'s arithmetic, with the target's
normalised features computed once per fit (``losses.target_features``) instead of every step, a
third of the term's cost."""

import lpips
import torch

from losses.target_features import target_features


def _normalised_features(model: lpips.LPIPS, image: torch.Tensor) -> list[torch.Tensor]:
    return [lpips.normalize_tensor(out) for out in model.net(model.scaling_layer(image))]


def lpips_to_target(model: lpips.LPIPS, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``model(x, y)`` (N, 1, 1, 1) for images in [-1, 1], ``y`` the fit's target."""
    target = target_features(y, model, lambda image: _normalised_features(model, image))
    total = 0
    for lin, a, b in zip(model.lins, _normalised_features(model, x), target, strict=True):
        total = total + lpips.spatial_average(lin((a - b) ** 2), keepdim=True)
    return total

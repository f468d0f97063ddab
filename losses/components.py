"""Distortion components: each maps (reconstruction, target, value_range) to a scalar tensor.

Inputs are (N, C, H, W) float tensors already in the pixel range a convention chose (see
``conventions.py``); ``value_range`` = (low, high) of that range. Point-wise components work on the
values as given (so their magnitude depends on the range, as in the reference code); the SSIM family
maps the range to [0, 1] first, because SSIM's stabilising constants are not shift-invariant.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from pytorch_msssim import ms_ssim, ssim

from losses import networks, wasserstein_balle
from losses.networks import KNOWN_NETWORKS
from losses.wasserstein import wasserstein_distortion

# The paper's SSIM window (pytorch_msssim defaults): Gaussian, 11 taps, σ 1.5, K = (0.01, 0.03).
SSIM_WIN_SIZE = 11
# pytorch_msssim's 5-scale MS-SSIM needs min(H, W) > (win_size - 1) * 2**4.
MS_SSIM_MIN_SIDE = (SSIM_WIN_SIZE - 1) * 16 + 1

ValueRange = tuple[float, float]
DistortionComponent = Callable[[torch.Tensor, torch.Tensor, ValueRange], torch.Tensor]


@dataclass(frozen=True)
class Component:
    name: str
    compute: DistortionComponent
    # Compares structure or statistics rather than pixels (SSIM, perceptual features): such terms
    # are computed per polyphase sub-image under NIF's convention, and plots draw them dotted.
    structural: bool = False
    # Smallest short side of an image the term can be computed on (None: any).
    min_side: int | None = None
    # The pretrained networks it reads, by the names `inr-study fetch weights --networks` takes:
    # what a machine must hold to train with it (a lent GPU is sent only those).
    networks: tuple[str, ...] = ()

    def problem(self, short_side: int) -> str | None:
        """Why the term cannot be computed on an image with this short side here, or None."""
        if self.min_side is not None and short_side < self.min_side:
            return f"needs a short side of at least {self.min_side} px, got {short_side}"
        reason = next(filter(None, map(networks.unavailable, self.networks)), None)
        return None if reason is None else f"cannot be computed on this machine: {reason}"


_COMPONENTS: dict[str, Component] = {}


def register_component(
    name: str,
    *,
    structural: bool = False,
    min_side: int | None = None,
    networks: tuple[str, ...] = (),
) -> Callable[[DistortionComponent], DistortionComponent]:
    """Decorator that makes a component available to loss specs under ``name``."""

    # A lone string would read as its letters.
    unknown = [networks] if isinstance(networks, str) else set(networks) - set(KNOWN_NETWORKS)
    if unknown:
        raise ValueError(
            f"loss component {name!r}: networks must be a tuple of names among "
            f"{', '.join(KNOWN_NETWORKS)}; got {sorted(unknown)[0]!r}"
        )

    def decorator(fn: DistortionComponent) -> DistortionComponent:
        if name in _COMPONENTS:
            raise ValueError(f"loss component {name!r} is already registered")
        _COMPONENTS[name] = Component(name, fn, structural, min_side, tuple(networks))
        return fn

    return decorator


def available_components() -> list[str]:
    return sorted(_COMPONENTS)


def component_info(name: str) -> Component:
    try:
        return _COMPONENTS[name]
    except KeyError:
        raise KeyError(
            f"unknown loss component {name!r}; "
            f"valid components: {', '.join(available_components())}"
        ) from None


@register_component("l1")
def l1(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    return (x - y).abs().mean()


@register_component("mse")
def mse(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    return (x - y).square().mean()


@register_component("logcosh")
def logcosh(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    # log(cosh(d)) = d + softplus(-2d) - ln 2: no overflow of cosh for large |d|.
    d = x - y
    return (d + F.softplus(-2.0 * d) - math.log(2.0)).mean()


def _to_unit_range(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange):
    # NIF maps [-1, 1] to [0, 255] before SSIM; [0, 1] with data_range 1 gives the same value.
    low, high = value_range
    if (low, high) == (0.0, 1.0):
        return x, y
    return (x - low) / (high - low), (y - low) / (high - low)


@register_component("ssim", structural=True, min_side=SSIM_WIN_SIZE)
def dssim(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    x, y = _to_unit_range(x, y, value_range)
    return 1.0 - ssim(x, y, data_range=1.0, win_size=SSIM_WIN_SIZE, size_average=True)


@register_component("ms_ssim", structural=True, min_side=MS_SSIM_MIN_SIDE)
def dms_ssim(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    short_side = min(x.shape[-2:])
    if short_side < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"the ms_ssim loss needs images with a short side of at least {MS_SSIM_MIN_SIDE} px "
            f"(5 scales, window {SSIM_WIN_SIZE}); got {tuple(x.shape[-2:])}. Use 'ssim' instead."
        )
    x, y = _to_unit_range(x, y, value_range)
    return 1.0 - ms_ssim(x, y, data_range=1.0, win_size=SSIM_WIN_SIZE, size_average=True)


def _lpips(net: str) -> DistortionComponent:
    def lpips_distance(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
        from losses.lpips_term import lpips_to_target  # imports lpips (and torchvision): lazily

        x, y = _to_unit_range(x, y, value_range)
        model = networks.lpips_network(net, x.device)
        return lpips_to_target(model, x * 2.0 - 1.0, y * 2.0 - 1.0).mean()  # LPIPS reads [-1, 1]

    return lpips_distance


# LPIPS v0.1 as the metric computes it (AlexNet), and on VGG-16 features, the variant usually
# trained against (its gradients carry fewer checkerboard artefacts). The smallest sides are
# where the backbones' last pooling still has an input.
register_component("lpips", structural=True, min_side=31, networks=("lpips-alex",))(_lpips("alex"))
register_component("lpips_vgg", structural=True, min_side=16, networks=("lpips-vgg",))(
    _lpips("vgg")
)


@register_component(
    "wasserstein",
    structural=True,
    # relu4_3 sits 3 poolings down: 32 px leave it 4 px for the statistics' pyramid.
    min_side=32,
    networks=("vgg16-relu4_3",),
)
def wasserstein(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    return wasserstein_distortion(*_to_unit_range(x, y, value_range))


@register_component(
    "wd",
    structural=True,
    min_side=wasserstein_balle.MIN_SIDE,
    networks=(wasserstein_balle.NETWORK,),
)
def wd(x: torch.Tensor, y: torch.Tensor, value_range: ValueRange) -> torch.Tensor:
    """Ballé et al.'s Wasserstein distortion (``losses.wasserstein_balle``), log2 σ = 3."""
    x, y = _to_unit_range(x, y, value_range)
    return wasserstein_balle.wasserstein_distortion(x, y, wasserstein_balle.LOG2_SIGMA)

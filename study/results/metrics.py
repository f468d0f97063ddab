"""Evaluation metrics on decoded 8-bit RGB images, as the paper's scripts compute them.

All functions take (H, W, 3) uint8 arrays (original first). PSNR is over all three channels;
MS-SSIM uses 5 scales and window 11 with data range 255 and needs a short side of at least
``MS_SSIM_MIN_SIDE`` px: smaller images get ``None`` (missing), with one warning per process.
LPIPS is AlexNet v0.1 on [-1, 1] inputs; when its ImageNet backbone weights cannot be loaded
(offline machine, no cached copy) it is ``None`` (missing), with one warning per process. WD is
Ballé et al.'s Wasserstein distortion (``losses.wasserstein_balle``) at a constant log2 σ = 3,
missing in the same way without VGG-16's weights or below a 64-px short side.
"""

import logging
import math
from collections.abc import Iterable, Mapping

import numpy as np
import torch
from pytorch_msssim import ms_ssim, ssim

from losses import networks
from losses.components import MS_SSIM_MIN_SIDE, SSIM_WIN_SIZE
from study.results.statistics import exact_mean

log = logging.getLogger(__name__)

_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def _to_tensor(rgb: np.ndarray) -> torch.Tensor:
    # float32: SSIM values agree with float64 to ~1e-6 and run about 6x faster on CPU.
    return torch.from_numpy(rgb.astype(np.float32)).permute(2, 0, 1)[None]


def _check_pair(original: np.ndarray, decoded: np.ndarray) -> None:
    for array in (original, decoded):
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(
                f"metrics need (H, W, 3) uint8 images, got {array.dtype} {array.shape}"
            )
    if original.shape != decoded.shape:
        raise ValueError(f"image sizes differ: {original.shape} vs {decoded.shape}")


def psnr(original: np.ndarray, decoded: np.ndarray) -> float:
    """20·log10(255/√MSE) over all channels; +inf for identical images."""
    _check_pair(original, decoded)
    mse = np.mean((original.astype(np.float64) - decoded.astype(np.float64)) ** 2)
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim_rgb(original: np.ndarray, decoded: np.ndarray) -> float:
    _check_pair(original, decoded)
    value = ssim(_to_tensor(original), _to_tensor(decoded), data_range=255, win_size=SSIM_WIN_SIZE)
    return float(value)


def ms_ssim_rgb(original: np.ndarray, decoded: np.ndarray) -> float | None:
    """5-scale MS-SSIM, or None when the image is too small for 5 scales."""
    _check_pair(original, decoded)
    if min(original.shape[:2]) < MS_SSIM_MIN_SIDE:
        _warn_once(
            "ms_ssim_size",
            f"MS-SSIM needs a short side of at least {MS_SSIM_MIN_SIDE} px (5 scales, window "
            f"{SSIM_WIN_SIZE}); images of {original.shape[1]}x{original.shape[0]} get MS-SSIM "
            "recorded as missing.",
        )
        return None
    value = ms_ssim(
        _to_tensor(original), _to_tensor(decoded), data_range=255, win_size=SSIM_WIN_SIZE
    )
    return float(value)


def ms_ssim_db(value: float | None) -> float | None:
    """−10·log10(1 − MS-SSIM); +inf for a perfect score."""
    if value is None:
        return None
    return math.inf if value >= 1.0 else -10.0 * math.log10(1.0 - value)


def lpips_unavailable() -> str | None:
    """Why LPIPS cannot be computed in this process, or None when it can."""
    return networks.lpips_unavailable("alex")


def warn_missing(key: str, label: str, reason: str) -> None:
    """One warning per process that a metric cannot be computed here, and why."""
    _warn_once(key, f"{label} is recorded as missing: {reason}")


def lpips_distance(original: np.ndarray, decoded: np.ndarray, model=None) -> float | None:
    """LPIPS (lower is better), or None when the AlexNet weights cannot be loaded."""
    _check_pair(original, decoded)
    if model is None:
        reason = lpips_unavailable()
        if reason is not None:
            warn_missing("lpips", "LPIPS", reason)
            return None
        model = networks.lpips_network("alex")
    device = next(model.parameters()).device

    def prepare(rgb: np.ndarray) -> torch.Tensor:
        return (_to_tensor(rgb) / 127.5 - 1.0).to(device)

    with torch.no_grad():
        return float(model(prepare(original), prepare(decoded)).item())


def wd_distance(original: np.ndarray, decoded: np.ndarray) -> float | None:
    """Ballé et al.'s Wasserstein distortion (lower is better), or None when it cannot be
    computed here."""
    from losses import wasserstein_balle

    _check_pair(original, decoded)
    if min(original.shape[:2]) < wasserstein_balle.MIN_SIDE:
        _warn_once("wd_size", f"WD needs a short side of {wasserstein_balle.MIN_SIDE} px or more")
        return None
    reason = wasserstein_balle.unavailable()
    if reason is not None:
        warn_missing("wd", "WD", reason)
        return None
    with torch.no_grad():
        value = wasserstein_balle.wasserstein_distortion(
            _to_tensor(decoded) / 255.0, _to_tensor(original) / 255.0, wasserstein_balle.LOG2_SIGMA
        )
    return float(value)


def mean_of_images(values: Iterable[float | None]) -> float | None:
    """Dataset value = mean of per-image values (so MS-SSIM dB is the mean of per-image dBs).

    Missing if any image lacks the value: a mean over a subset would not be comparable.
    """
    values = list(values)
    if not values or any(v is None for v in values):
        return None
    return exact_mean(values)


def aggregate(rows: Iterable[Mapping[str, float | None]], keys: Iterable[str]) -> dict:
    rows = list(rows)
    return {key: mean_of_images(row.get(key) for row in rows) for key in keys}

"""Loading images as 8-bit RGB with explicit, documented conversion rules.

Rules (also in the README):
- RGB 8-bit: used as is.
- Grayscale (L, 1, P without alpha): replicated to 3 channels, logged as a notice.
- RGBA / LA / palette with transparency: an error, unless ``drop_alpha=True`` (alpha is discarded,
  not composited, so the colour channels are coded exactly as stored).
- 16-bit (RGB or gray): the upper 8 bits are kept (v >> 8), with a warning.
- CMYK, YCbCr, LAB, HSV: converted to RGB by Pillow, with a warning.
- Smaller than MIN_SIDE px on a side, unreadable, or not an image: an ``ImageLoadError`` that names
  the file.
"""

import logging
from pathlib import Path

import numpy as np
import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow so .jxl files open too)
from PIL import Image, UnidentifiedImageError

from study.errors import InputError

log = logging.getLogger(__name__)

MIN_SIDE = 16
_GRAY_MODES = {"L", "1", "P"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_GRAY_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_CONVERTIBLE_MODES = {"CMYK", "YCbCr", "LAB", "HSV"}


class ImageLoadError(InputError):
    """An input image that cannot be used; the message names the file and the problem."""


def load_rgb(path: str | Path, *, drop_alpha: bool = False) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 array following the module's rules."""
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(f"{path}: no such file")
    try:
        with Image.open(path) as image:
            sixteen_bit_rgb = _is_sixteen_bit_rgb(image)  # the tile list is gone after load()
            image.load()
            array = _to_rgb8(image, path, drop_alpha, sixteen_bit_rgb)
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image file Pillow can read") from None
    except (OSError, SyntaxError) as error:
        raise ImageLoadError(f"{path}: unreadable or truncated image ({error})") from None
    height, width = array.shape[:2]
    if min(height, width) < MIN_SIDE:
        raise ImageLoadError(
            f"{path}: image is {width}x{height}, smaller than {MIN_SIDE} px on a side"
        )
    return array


def _is_sixteen_bit_rgb(image: Image.Image) -> bool:
    # Pillow reads 16-bit RGB PNG/TIFF as mode "RGB" (keeping the high byte); only the decoder's
    # raw mode shows the original depth.
    return image.mode == "RGB" and any(";16" in str(tile.args) for tile in (image.tile or []))


def _to_rgb8(image: Image.Image, path: Path, drop_alpha: bool, sixteen_bit_rgb: bool) -> np.ndarray:
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        mode = "PA"
    if mode in _ALPHA_MODES:
        if not drop_alpha:
            raise ImageLoadError(
                f"{path}: image has an alpha channel (mode {mode}); codecs here code RGB only. "
                "Pass drop_alpha=True (CLI: --drop-alpha) to discard the alpha channel."
            )
        log.warning("%s: alpha channel discarded (mode %s)", path, mode)
        return np.asarray(image.convert("RGBA"))[..., :3].copy()
    if mode in _SIXTEEN_BIT_GRAY_MODES:
        log.warning("%s: 16-bit grayscale converted to 8-bit (upper 8 bits kept)", path)
        gray = np.clip(np.asarray(image, dtype=np.int64), 0, 65535) >> 8
        return np.repeat(gray.astype(np.uint8)[..., None], 3, axis=2)
    if mode in _GRAY_MODES:
        log.info("%s: grayscale image (mode %s) replicated to 3 RGB channels", path, mode)
        return np.asarray(image.convert("RGB"))
    if mode == "RGB":
        if sixteen_bit_rgb:
            log.warning("%s: 16-bit RGB converted to 8-bit (upper 8 bits kept)", path)
        return np.asarray(image)
    if mode in _CONVERTIBLE_MODES:
        log.warning("%s: %s image converted to RGB by Pillow", path, mode)
        return np.asarray(image.convert("RGB"))
    raise ImageLoadError(f"{path}: unsupported pixel format (Pillow mode {mode})")


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG, creating parent folders."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")

"""Loading images as 8-bit RGB with explicit, documented conversion rules.

Rules (also in the README):
- RGB 8-bit: used as is.
- Grayscale (L, 1, P without alpha): replicated to 3 channels, logged as a notice.
- RGBA / LA / palette with transparency: an error, unless ``drop_alpha=True`` (alpha is discarded,
  not composited, so the colour channels are coded exactly as stored).
- 16-bit (RGB or gray): the upper 8 bits are kept (v >> 8), with a warning.
- CMYK, YCbCr, LAB, HSV: converted to RGB by Pillow, with a warning.
- An EXIF orientation is applied (the image is coded as displayed), logged as a notice.
- More than ``max_pixels()`` pixels (default 2^26, about 8192x8192; the INR_STUDY_MAX_PIXELS
  variable changes it): an error, decided from the header before any pixel is decoded. Pillow's own
  decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) is set to the same cap.
- Several frames (animated GIF/PNG/WebP, multi-page TIFF): an error; MPO files (camera JPEGs with a
  preview or a second stereo view) are read as their first, primary image.
- Smaller than MIN_SIDE px on a side, unreadable, a directory, or not an image: an
  ``ImageLoadError`` that names the file.
"""

import errno
import hashlib
import logging
import os
import stat
import struct
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pillow_jxl  # noqa: F401  (registers JPEG XL with Pillow so .jxl files open too)
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from inr_models import limits
from inr_models.base import CodecError
from study.errors import InputError

log = logging.getLogger(__name__)

MIN_SIDE = 16
_GRAY_MODES = {"L", "1", "P"}
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_SIXTEEN_BIT_GRAY_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}
_CONVERTIBLE_MODES = {"CMYK", "YCbCr", "LAB", "HSV"}
_SUPPORTED_MODES = (
    {"RGB"} | _GRAY_MODES | _ALPHA_MODES | _SIXTEEN_BIT_GRAY_MODES | _CONVERTIBLE_MODES
)
_ORIENTATIONS = {
    2: "flipped left-right",
    3: "rotated 180°",
    4: "flipped top-bottom",
    5: "flipped along its main diagonal",
    6: "rotated 90° clockwise",
    7: "flipped along its anti-diagonal",
    8: "rotated 90° counter-clockwise",
}
# How Pillow reports a corrupt file depends on the format and on where the data breaks (found by
# fuzzing PNG, JPEG, GIF, TIFF, WebP and PPM files).
_CORRUPT_FILE_ERRORS = (
    OSError,
    SyntaxError,
    EOFError,
    IndexError,
    TypeError,
    ValueError,
    struct.error,
)
# Pillow's limit is a process-wide setting; it is lifted only while a header is read.
_pillow_limit_lock = threading.Lock()


class ImageLoadError(InputError):
    """An input image that cannot be used; the message names the file and the problem."""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding pixels."""

    width: int  # as stored, before any EXIF orientation
    height: int
    mode: str  # Pillow's mode, e.g. "RGB", "L", "RGBA"


def max_pixels() -> int:
    """The largest image (width x height) this module loads: the decoders' own cap
    (INR_STUDY_MAX_PIXELS or 2^26), so whatever loads can be coded and decoded."""
    try:
        return limits.max_pixels()
    except CodecError as error:
        raise InputError(str(error)) from None


def why_unreadable(path: Path, error: OSError) -> str:
    """Why ``path`` cannot be opened, in words, from the OSError that opening it raised."""
    if error.errno == errno.ENOENT:
        return f"broken symlink to {os.readlink(path)}" if path.is_symlink() else "no such file"
    if error.errno == errno.ELOOP:
        return "symlink loop"
    if error.errno == errno.EISDIR:
        return "is a directory"
    return f"cannot read ({error.strerror})"


def read_header(path: str | Path, *, drop_alpha: bool = False) -> ImageHeader:
    """Size and mode of ``path`` from its header alone, with the errors ``load_rgb`` would raise
    for what a header shows (file, pixel cap, frames, size, alpha, pixel format)."""
    path = Path(path)
    with _open_image(path) as image:
        _check_header(image, path, drop_alpha)
        return ImageHeader(image.width, image.height, image.mode)


def load_rgb(path: str | Path, *, drop_alpha: bool = False) -> np.ndarray:
    """Read ``path`` as an (H, W, 3) uint8 array following the module's rules."""
    path = Path(path)
    with _open_image(path) as image:
        _check_header(image, path, drop_alpha)
        with _pillow_errors(path):
            sixteen_bit_rgb = _is_sixteen_bit_rgb(image)  # the tile list is gone after load()
            image.load()
            _check_mode(image, path, drop_alpha)  # a few formats settle their mode on loading
            _apply_orientation(image, path)
            return _to_rgb8(image, path, sixteen_bit_rgb)


@contextmanager
def _open_image(path: Path) -> Iterator[Image.Image]:
    """The image with only its header read, refused if over the pixel cap."""
    cap = max_pixels()
    with _open_file(path) as file:
        # Pillow's bomb check runs inside Image.open and would refuse a huge header before its
        # size is known here; the cap replaces it while the header is read, then governs decoding
        # (TIFF tiles and GIF frames can claim more pixels than the header).
        with _pillow_errors(path), _pillow_limit_lock:
            Image.MAX_IMAGE_PIXELS = None
            try:
                image = Image.open(file)
            finally:
                Image.MAX_IMAGE_PIXELS = cap
        with image:
            width, height = image.size
            if width * height > cap:
                raise ImageLoadError(
                    f"{path}: image is {width}x{height} ({width * height:,} pixels), over the "
                    f"cap of {cap:,} pixels; set {limits.MAX_PIXELS_ENV} to a larger number to "
                    "load it"
                )
            yield image


def _open_file(path: Path) -> BinaryIO:
    try:
        kind = path.stat().st_mode
        if stat.S_ISDIR(kind):
            raise ImageLoadError(f"{path}: is a directory, not an image file")
        if not stat.S_ISREG(kind):  # a pipe or a device would block or never end
            raise ImageLoadError(f"{path}: not a regular file")
        return path.open("rb")
    except OSError as error:
        raise ImageLoadError(f"{path}: {why_unreadable(path, error)}") from None


@contextmanager
def _pillow_errors(path: Path) -> Iterator[None]:
    """Pillow's failures on a bad file, as an ImageLoadError that names it."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        raise ImageLoadError(f"{path}: not an image file Pillow can read") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageLoadError(
            f"{path}: decoding it needs more than the cap of {max_pixels():,} pixels ({error}); "
            f"set {limits.MAX_PIXELS_ENV} to a larger number to load it"
        ) from None
    except _CORRUPT_FILE_ERRORS as error:
        raise ImageLoadError(f"{path}: unreadable or truncated image ({error})") from None


def _check_header(image: Image.Image, path: Path, drop_alpha: bool) -> None:
    with _pillow_errors(path):
        # An MPO's first image is the primary one; the others are previews or a stereo view.
        frames = 1 if image.format == "MPO" else getattr(image, "n_frames", 1)
    if frames > 1:
        raise ImageLoadError(
            f"{path}: has {frames} frames; inr-study codes still images: extract the frame you want"
        )
    if min(image.size) < MIN_SIDE:
        raise ImageLoadError(
            f"{path}: image is {image.width}x{image.height}, smaller than {MIN_SIDE} px on a side"
        )
    _check_mode(image, path, drop_alpha)


def _effective_mode(image: Image.Image) -> str:
    return "PA" if image.mode == "P" and "transparency" in image.info else image.mode


def _check_mode(image: Image.Image, path: Path, drop_alpha: bool) -> None:
    mode = _effective_mode(image)
    if mode not in _SUPPORTED_MODES:
        raise ImageLoadError(f"{path}: unsupported pixel format (Pillow mode {mode})")
    if mode in _ALPHA_MODES and not drop_alpha:
        raise ImageLoadError(
            f"{path}: image has an alpha channel (mode {mode}); codecs here code RGB only. "
            "Pass drop_alpha=True (CLI: --drop-alpha) to discard the alpha channel."
        )


def _apply_orientation(image: Image.Image, path: Path) -> None:
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    if orientation in _ORIENTATIONS:
        ImageOps.exif_transpose(image, in_place=True)
        log.info(
            "%s: %s as its EXIF orientation (%d) says, to code the image as displayed",
            path,
            _ORIENTATIONS[orientation],
            orientation,
        )


def _is_sixteen_bit_rgb(image: Image.Image) -> bool:
    # Pillow reads 16-bit RGB PNG/TIFF as mode "RGB" (keeping the high byte); only the decoder's
    # raw mode shows the original depth.
    return image.mode == "RGB" and any(";16" in str(tile.args) for tile in (image.tile or []))


def _to_rgb8(image: Image.Image, path: Path, sixteen_bit_rgb: bool) -> np.ndarray:
    """The pixels as RGB; ``_check_mode`` has refused the modes not handled here."""
    mode = _effective_mode(image)
    if mode in _ALPHA_MODES:
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
    log.warning("%s: %s image converted to RGB by Pillow", path, mode)
    return np.asarray(image.convert("RGB"))


def image_digest(pixels: np.ndarray) -> str:
    """Short digest of a prepared image's pixels: what a study records as a trial's input."""
    return hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest()[:16]


def save_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an (H, W, 3) uint8 array as PNG, creating parent folders."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an (H, W, 3) uint8 array, got {rgb.dtype} {rgb.shape}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path, format="PNG")

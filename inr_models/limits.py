"""The decoders' shared cap on image size, read from the environment at each decode.

Every INR decoder refuses, before it allocates anything, a header whose image has more pixels than
``max_pixels()``: 2^26 (e.g. 8192x8192) by default, or the value of ``INR_STUDY_MAX_PIXELS``. It is
read at decode time, so a process can lower it (to bound memory) or raise it without restarting.
Each codec's bitstream module documents its own field limits and its cap on decoding work.
"""

import os

from inr_models.base import CodecError

MAX_PIXELS_ENV = "INR_STUDY_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 2**26
# Multiplies every codec's cap on decoding work (default 1): for larger files on a fast machine.
WORK_SCALE_ENV = "INR_STUDY_DECODE_WORK_SCALE"


def _positive(name: str, default: float, kind: type, what: str) -> float:
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        value = 0
    if not value > 0:
        raise CodecError(f"{name}={text!r}: expected a positive {what}")
    return value


def max_pixels() -> int:
    return _positive(MAX_PIXELS_ENV, DEFAULT_MAX_PIXELS, int, "whole number of pixels")


def max_work(default: int) -> float:
    """A codec's cap on decoding work, scaled by ``INR_STUDY_DECODE_WORK_SCALE``."""
    return default * _positive(WORK_SCALE_ENV, 1.0, float, "number")


def check_image_size(height: int, width: int, min_side: int, max_side: int) -> None:
    """CodecError naming the size unless each side is in [min_side, max_side] and the pixel count
    within ``max_pixels()``."""
    if not (min_side <= height <= max_side and min_side <= width <= max_side):
        raise CodecError(
            f"corrupted header: image size {width}x{height} outside [{min_side}, {max_side}] "
            "per side"
        )
    cap = max_pixels()
    if height * width > cap:
        raise CodecError(
            f"corrupted header: image size {width}x{height} exceeds the cap of {cap} pixels "
            f"(set {MAX_PIXELS_ENV} to raise it)"
        )

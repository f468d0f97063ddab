"""Classical baselines through Pillow: JPEG (libjpeg-turbo), WebP, AVIF (libavif), JPEG XL.

Encoder settings are the libraries' defaults apart from quality, as in CompressAI's Pillow
benchmarks (JPEG 4:2:0, no Huffman optimisation), so our curves are comparable to theirs.
"""

import io
from typing import ClassVar

import numpy as np
import pillow_jxl  # noqa: F401  (registers the JPEG XL plugin with Pillow)
from PIL import Image, UnidentifiedImageError

from inr_models.base import Codec, CodecError, Encoded, RateAxis, check_rgb_image
from inr_models.registry import register_codec


def quality_axis(low: int, high: int) -> RateAxis:
    """An encoder's integer quality setting in [low, high] (higher: more bytes)."""
    return RateAxis(
        name="quality",
        config_key="qualities",
        label="quality",
        kind=int,
        default=75,
        low=low,
        high=high,
        help="encoder quality setting (higher: more bytes)",
    )


class PillowCodec(Codec):
    """A Pillow format at an integer quality setting (higher = better, more bytes)."""

    pillow_format: ClassVar[str]

    def __init__(self, quality: int):
        try:
            self.quality = self.rate_axis.check(quality)
        except ValueError as error:
            raise ValueError(f"{self.name}: {error}") from None

    def settings(self) -> dict[str, int]:
        return {"quality": self.quality}

    def encode(self, image: np.ndarray) -> Encoded:
        check_rgb_image(image)
        buffer = io.BytesIO()
        Image.fromarray(image, "RGB").save(buffer, format=self.pillow_format, quality=self.quality)
        return Encoded(buffer.getvalue(), {"quality": self.quality})

    def decode(self, data: bytes) -> np.ndarray:
        try:
            with Image.open(io.BytesIO(data)) as decoded:
                found = decoded.format
                decoded.load()
                rgb = np.asarray(decoded.convert("RGB"))
        # pillow-jxl reports a damaged stream as RuntimeError, the others as OSError & co.
        except (UnidentifiedImageError, OSError, SyntaxError, RuntimeError) as error:
            raise CodecError(f"{self.name}: cannot decode bitstream ({error})") from None
        if found != self.pillow_format:
            raise CodecError(
                f"{self.name}: expected a {self.pillow_format} bitstream, "
                f"got {found or 'another format'}"
            )
        return rgb


@register_codec("jpeg")
class Jpeg(PillowCodec):
    pillow_format = "JPEG"
    # libjpeg above 95 wastes bytes for nothing, per Pillow's docs.
    rate_axis = quality_axis(1, 95)
    default_sweep = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


@register_codec("webp")
class WebP(PillowCodec):
    pillow_format = "WEBP"
    rate_axis = quality_axis(0, 100)
    default_sweep = (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)


@register_codec("avif")
class Avif(PillowCodec):
    pillow_format = "AVIF"
    rate_axis = quality_axis(0, 100)
    default_sweep = (10, 20, 30, 40, 50, 60, 70, 80, 90)


@register_codec("jxl")
class JpegXl(PillowCodec):
    pillow_format = "JXL"
    # 100 switches pillow-jxl to lossless.
    rate_axis = quality_axis(0, 99)
    default_sweep = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95)

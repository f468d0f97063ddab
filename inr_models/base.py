"""The one interface every codec implements, INR or classical."""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np


class CodecError(ValueError):
    """A bitstream that cannot be decoded (truncated, corrupted, foreign) or an unusable input."""


class DivergedError(RuntimeError):
    """Fitting a network produced a non-finite loss."""


@dataclass
class Encoded:
    data: bytes
    # Codec-specific figures (quality, iterations, estimated bpp, MAC/pixel, seconds, ...).
    stats: dict[str, float | int | str] = field(default_factory=dict)
    # What the decoder will output, when the encoder computes it (INR codecs do, bit-exactly).
    reconstruction: np.ndarray | None = None

    def bpp(self, height: int, width: int) -> float:
        """Rate from the real file: 8 · bytes / pixels."""
        return 8.0 * len(self.data) / (height * width)


class Codec(ABC):
    """Encode an RGB image to bytes, decode bytes back to an RGB image.

    A codec instance carries its settings (quality, loss, λ, preset, ...); ``decode`` needs nothing
    but the bytes. Images are (H, W, 3) uint8 arrays.
    """

    name: ClassVar[str]
    # The setting that moves a codec along its rate axis: "lmbda", "configuration" or "quality".
    rate_parameter: ClassVar[str]

    @abstractmethod
    def encode(self, image: np.ndarray) -> Encoded: ...

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray: ...

    def settings(self) -> dict[str, float | int | str]:
        """The settings that distinguish this instance, for result tables and run parameters."""
        return {}


def check_rgb_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise CodecError(f"expected a uint8 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise CodecError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")

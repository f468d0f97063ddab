"""The one interface every codec implements, INR or classical."""

import argparse
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

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


RateValue = float | int | str
# Where a file's bits go, as ``Codec.rate_parts`` names them: the container and codec header, the
# coded network weights (also per module, as ``network_bits_<module>``), and the latents; each
# with its label for people.
RATE_PARTS = {"header_bits": "header", "network_bits": "network", "latent_bits": "latents"}
# A fitting codec's training budget, with labels: iterations of the model the file is written from
# (its warm-up rounds included) and iterations spent on the warm-up of every candidate (the kept
# one's rounds included: the two overlap). A comparison of codecs states them.
BUDGET_FIGURES = {
    "final_model_iterations": "final-model iterations",
    "warmup_iterations": "warm-up iterations",
}
# The wall time of one encode (an INR codec's fit) and of one decode, under these keys in a codec's
# stats and in trial records: the codecs, the trials and the metric table share them.
ENCODE_SECONDS = "encode_seconds"
DECODE_SECONDS = "decode_seconds"
# Figures a codec that fits a network reports in ``Encoded.stats`` for the result tables: its
# training-time estimate of the rate, its cost, and its budget. A codec leaves out what it lacks
# (NIF estimates no rate); the tables leave that cell empty.
FIT_FIGURES = ("bpp_estimate", "mac_per_pixel", "network_parameters", *BUDGET_FIGURES)


@dataclass(frozen=True, kw_only=True)
class RateAxis:
    """The one setting that moves a codec along its rate axis, as the codec declares it.

    The study reads everything about a rate setting from here: config validation, trial specs,
    MLflow parameters, search spaces, reports, the ``encode`` command line and the dashboards.
    """

    name: str  # keyword of the codec's constructor, MLflow parameter, command-line option
    config_key: str  # the list of grid values in a study config, e.g. "lmbdas"
    label: str  # for people: "λ", "width", "quality"
    kind: type[RateValue]  # float, int or str
    default: RateValue
    help: str
    choices: tuple[RateValue, ...] | None = None  # the valid values of a discrete axis
    low: float | None = None  # closed valid range of a numeric axis (None: unbounded)
    high: float | None = None
    search_range: tuple[float, float] | None = None  # default range a search samples
    log: bool = False  # searched on a log scale
    # Whether files grow with the setting (quality, width) or shrink (λ); discrete axes list
    # their choices in that order.
    rate_increases: bool = True
    flag: str | None = None  # command-line option; default --<name>

    @property
    def option(self) -> str:
        return self.flag or f"--{self.name}"

    def check(self, value: Any) -> RateValue:
        """``value`` as this axis's type; ValueError saying what is valid otherwise."""
        if self.kind is str and not isinstance(value, str):
            raise ValueError(
                f"{self.config_key} are names; quote them in YAML, e.g. ['{self.default}'] "
                f"(got {value!r})"
            )
        if self.kind is int and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{self.label} must be an integer, got {value!r}")
        if self.kind is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{self.label} must be a number, got {value!r}")
            value = float(value)
        if self.choices is not None and value not in self.choices:
            valid = ", ".join(map(str, self.choices))
            raise ValueError(f"unknown {self.config_key} [{value!r}]; valid: {valid}")
        if self.kind is not str:
            if not math.isfinite(value):
                raise ValueError(f"every {self.label} must be finite, got {value}")
            low = -math.inf if self.low is None else self.low
            high = math.inf if self.high is None else self.high
            if not low <= value <= high:
                raise ValueError(f"{self.label} {value} outside the valid range [{low}, {high}]")
        return value

    def parse(self, text: str) -> RateValue:
        """A value as written in an MLflow parameter or on the command line."""
        return self.check(self.kind(text))

    def describe(self, value: RateValue) -> str:
        return f"{self.label} {value:g}" if isinstance(value, float) else f"{self.label} {value}"


class Codec(ABC):
    """Encode an RGB image to bytes, decode bytes back to an RGB image.

    A codec instance carries its settings (quality, loss, λ, preset, ...); ``decode`` needs nothing
    but the bytes. Images are (H, W, 3) uint8 arrays.

    A codec class declares what the study needs to know about it; nothing outside its package
    names the codec or its settings.
    """

    name: ClassVar[str]
    rate_axis: ClassVar[RateAxis]
    # Fits a network per image, so it takes a loss, a preset, a seed and a device.
    fits_network: ClassVar[bool] = False
    # The loss its reference implementation trains with: the anchor of BD-rate tables.
    published_loss: ClassVar[str | None] = None
    # Id written into our container (inr_models.container); None for foreign formats.
    file_id: ClassVar[int | None] = None
    # Layout of this codec's header and payload inside the container; raised whenever a change
    # makes files of the previous layout decode wrongly.
    format_version: ClassVar[int] = 1
    # The rate settings ``inr-study baselines`` sweeps when given none (classical codecs).
    default_sweep: ClassVar[tuple[RateValue, ...]] = ()

    @classmethod
    def presets(cls) -> tuple[str, ...]:
        """Named settings bundles (training schedules); the first is the default."""
        return ()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The codec's own command-line options (the rate setting, by default)."""
        axis = cls.rate_axis
        parser.add_argument(
            axis.option,
            dest=axis.name,
            type=axis.kind,
            choices=axis.choices,
            default=axis.default,
            help=f"{axis.help} (default: {axis.default})",
        )

    @classmethod
    def settings_from_arguments(cls, args: argparse.Namespace) -> dict[str, Any]:
        """Constructor keywords from the options ``add_arguments`` declared."""
        return {cls.rate_axis.name: getattr(args, cls.rate_axis.name)}

    @abstractmethod
    def encode(self, image: np.ndarray) -> Encoded: ...

    def rate_parts(self, data: bytes) -> dict[str, int]:
        """How the bits of file ``data`` divide (``RATE_PARTS``, and the network's per module),
        read from the file itself, so a file made anywhere is broken down alike; codecs that
        fit a network say, others give {}. Raises ``CodecError`` for a file this codec cannot
        read."""
        return {}

    @classmethod
    def encode_together(cls, jobs: list[tuple["Codec", np.ndarray]]) -> list[Encoded | Exception]:
        """Each (codec, image) as ``codec.encode(image)`` gives it, or the exception it raised;
        codecs that fit networks override this to fit them as one batch (``fit_batch`` in their
        stats then says how many shared it)."""
        results: list[Encoded | Exception] = []
        for codec, image in jobs:
            try:
                results.append(codec.encode(image))
            except Exception as error:  # the caller records a failed job; the others go on
                results.append(error)
        return results

    @abstractmethod
    def decode(self, data: bytes) -> np.ndarray: ...

    def settings(self) -> dict[str, float | int | str]:
        """The settings that distinguish this instance, for result tables and run parameters."""
        return {}

    def image_problems(self, height: int, width: int) -> list[str]:
        """Why this instance cannot code an image of this size here (empty when it can): the
        study asks before any trial starts."""
        return []


def check_rgb_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise CodecError(f"expected a uint8 numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise CodecError(f"expected an (H, W, 3) RGB image, got shape {image.shape}")

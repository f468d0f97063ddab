"""The worked example of README "Extending": one module outside the packages that adds a codec
with a new kind of rate parameter, a loss family with α, and a metric. Listing it under
``plugins:`` in a study config is all it takes for the three to flow through the study.
"""

import zlib
from dataclasses import dataclass

import numpy as np

from inr_models.base import CodecError, Encoded, RateAxis, check_rgb_image
from inr_models.container import ByteReader, ByteWriter, pack, unpack
from inr_models.fitted import FittedCodec
from inr_models.registry import register_codec
from losses import LossFamily, LossTerm, register_loss_family
from study.results.table import Metric, register_metric


@dataclass(frozen=True)
class Schedule:
    name: str
    total_iterations: int = 1


@register_codec("posterize")
class Posterize(FittedCodec):
    """Keeps ``levels`` grey levels per channel, then deflates: its rate is set by an integer on
    a log scale, a kind of rate parameter no built-in codec has."""

    rate_axis = RateAxis(
        name="levels",
        config_key="levels_list",
        label="levels",
        kind=int,
        default=16,
        low=2,
        high=256,
        search_range=(2, 64),
        log=True,
        help="grey levels kept per channel",
    )
    published_loss = "mse"
    file_id = 200

    @classmethod
    def presets(cls) -> tuple[str, ...]:
        return ("single",)

    def __init__(
        self,
        levels: int = 16,
        loss: str = "mse",
        preset: str = "single",
        device: str = "cpu",
        seed: int = 0,
        convention: str = "plain",
        progress: bool = False,
        on_validation=None,
    ):
        super().__init__(
            loss=loss,
            convention=convention,
            preset=Schedule(preset),
            device=device,
            seed=seed,
            progress=progress,
            on_validation=on_validation,
        )
        self.levels = self.rate_axis.check(levels)

    def settings(self) -> dict:
        return {**super().settings(), "levels": self.levels}

    def encode(self, image: np.ndarray) -> Encoded:
        check_rgb_image(image)
        step = 256 / self.levels
        indices = np.floor(image / step).astype(np.uint8)
        header = ByteWriter().u16(image.shape[0]).u16(image.shape[1]).u16(self.levels).getvalue()
        data = pack(self, header, zlib.compress(indices.tobytes(), 9))
        return Encoded(data, {"iterations": 1}, self._pixels(indices, self.levels))

    def decode(self, data: bytes) -> np.ndarray:
        header, payload = unpack(data, self)
        reader = ByteReader(header)
        height, width, levels = reader.u16(), reader.u16(), reader.u16()
        raw = zlib.decompress(payload)
        if len(raw) != height * width * 3:
            raise CodecError("corrupted posterize payload")
        return self._pixels(np.frombuffer(raw, np.uint8).reshape(height, width, 3), levels)

    @staticmethod
    def _pixels(indices: np.ndarray, levels: int) -> np.ndarray:
        step = 256 / levels
        return np.clip((indices + 0.5) * step, 0, 255).astype(np.uint8)


register_loss_family(
    LossFamily(
        name="mse_l1",
        label="(1 − α)·MSE + α·L1",
        terms=lambda alpha: (LossTerm("mse", 1.0 - alpha), LossTerm("l1", alpha)),
        alpha_default=0.5,
        alpha_range=(0.1, 0.9),
    )
)


def _max_error(original: np.ndarray, decoded: np.ndarray, _done: dict) -> float:
    return float(np.abs(original.astype(int) - decoded.astype(int)).max())


register_metric(
    Metric(
        key="max_error",
        compressai_key="max-error-rgb",
        label="max error",
        unit="8-bit levels",
        higher_is_better=False,
        compute=_max_error,
        bd_rate=True,
        search_penalty=10.0,
        plotted=True,
    )
)

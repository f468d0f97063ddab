"""What every INR codec shares: a loss, a preset, a device, a seed and progress reporting."""

from collections.abc import Callable
from typing import ClassVar

import torch
from tqdm import tqdm

from inr_models.base import Codec
from losses import build_loss, get_convention


class FittedCodec(Codec):
    """A codec that fits a network to each image; ``preset`` must have ``name`` and
    ``total_iterations``."""

    fits_network = True
    # Presets by name, the first the default; ``label`` names the codec in messages.
    preset_table: ClassVar[dict] = {}
    label: ClassVar[str] = ""

    @classmethod
    def presets(cls) -> tuple[str, ...]:
        return tuple(cls.preset_table)

    @classmethod
    def get_preset(cls, name: str):
        try:
            return cls.preset_table[name]
        except KeyError:
            valid = ", ".join(sorted(cls.preset_table))
            raise KeyError(f"unknown {cls.label} preset {name!r}; valid presets: {valid}") from None

    def __init__(
        self,
        *,
        loss: str,
        convention: str,
        preset,
        device: str,
        seed: int,
        progress: bool,
        on_validation: Callable[[dict], None] | None,
    ):
        self.loss = build_loss(loss, get_convention(convention))
        self.preset = preset
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"{self.name}: device {device!r} requested but CUDA is not available")
        self.device, self.seed, self.progress = torch.device(device), int(seed), progress
        # Called with each validation record (phase, iteration, figures): live logs.
        self.on_validation = on_validation or (lambda record: None)

    def image_problems(self, height: int, width: int) -> list[str]:
        return self.loss.problems(height, width)

    def settings(self) -> dict:
        return {
            "loss": self.loss.name,
            "loss_family": self.loss.family,
            "loss_spec": self.loss.spec,
            "alpha": self.loss.alpha,
            "convention": self.loss.convention.name,
            "preset": self.preset.name,
            "seed": self.seed,
            "device": str(self.device),
        }

    def progress_bar(self) -> tqdm:
        total = self.preset.total_iterations
        return tqdm(total=total, desc=self.name, unit="it", disable=not self.progress, leave=False)

"""What every INR codec shares: a loss, a preset, a device, a seed and progress reporting."""

import time
from collections.abc import Callable
from typing import ClassVar

import torch
from tqdm import tqdm

from inr_models.base import Codec
from losses import build_loss, get_convention

# The fitting steps timed for a fit's pace: the clock starts after the first few, which pay
# one-off costs (allocations, first kernel launches).
PACE_SKIP, PACE_STEPS = 2, 10


class FittedCodec(Codec):
    """A codec that fits a network to each image; ``preset`` must have ``name`` and
    ``total_iterations``."""

    fits_network = True
    # Presets by name, the first the default; ``label`` names the codec in messages.
    preset_table: ClassVar[dict] = {}
    label: ClassVar[str] = ""
    # The preset ``inr-study encode`` uses unless told: the codec's shortest real recipe (test
    # presets such as ``debug`` do not count), minutes rather than hours on a laptop; None when
    # that is the first preset.
    quick_preset: ClassVar[str | None] = None
    # Called once per fit, after its first steps, with the seconds per step and the preset's
    # step count: how ``inr-study encode`` says how long a fit will take. The caller sets it.
    on_pace: Callable[[float, int], None] | None = None

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

    def progress_bar(self) -> "_Steps":
        """The fit's step counter (``update`` once per step): a progress bar and the pace."""
        total = self.preset.total_iterations
        bar = tqdm(total=total, desc=self.name, unit="it", disable=not self.progress, leave=False)
        return _Steps(bar, total, self.device, self.on_pace)


class _Steps:
    def __init__(self, bar: tqdm, total: int, device: torch.device, on_pace):
        self.bar, self.total, self.device, self.on_pace = bar, total, device, on_pace
        self.count, self.start = 0, 0.0

    def __enter__(self) -> "_Steps":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)

    def update(self) -> None:
        self.bar.update()
        self.count += 1
        if self.on_pace is None or self.count not in (PACE_SKIP, PACE_SKIP + PACE_STEPS):
            return
        if self.device.type == "cuda":  # steps are queued there: time them finished
            torch.cuda.synchronize(self.device)
        if self.count == PACE_SKIP:
            self.start = time.perf_counter()
        else:
            self.on_pace((time.perf_counter() - self.start) / PACE_STEPS, self.total)

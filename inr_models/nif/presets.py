"""NIF widths and training schedules as dataclasses (reference-codecs.md §5).

``paper`` is what the study ran: 10 fitting steps × 150 iterations with warm restarts and restart
perturbations, then 5 × 40 iterations of quantisation-aware training. ``debug`` keeps the structure
with a few iterations, for tests.
"""

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Widths:
    hidden: tuple[int, ...]
    modulator_hidden: tuple[int, ...]
    frequencies: int = 16  # positional-encoding frequencies of the main network
    modulator_frequencies: int = 4


# The published ladder, in order of size (so of rate: about one byte per weight in the file);
# "0_31", "280", "450" are the loss study's configurations. "0_31" is larger than "120" for
# all its name: 17,034 weights against 14,992 (NIF's own results list 120 first too).
WIDTHS = {
    "120": Widths((120, 40, 28, 16), (16, 8)),
    "0_31": Widths((120, 50, 28, 16), (24, 16, 8)),
    "200": Widths((200, 64, 40, 20), (64, 16, 8)),
    "280": Widths((280, 100, 48, 16), (64, 16, 8)),
    "360": Widths((360, 150, 70, 32), (64, 16, 8)),
    "450": Widths((450, 220, 85, 32), (64, 16, 8)),
    "680": Widths((680, 260, 65, 30), (64, 16, 8)),
}


@dataclass(frozen=True, kw_only=True)
class Perturbation:
    """Restart perturbation between steps: amount and range interpolate from start to end
    along progress^smoothing."""

    amount_start: float
    amount_end: float
    amount_smoothing: float
    range_start: float
    range_end: float
    range_smoothing: float


@dataclass(frozen=True, kw_only=True)
class Stage:
    steps: int
    iterations: int  # per step; one iteration = one AdamW step on each polyphase sub-image
    learning_rate: float
    weight_decay: float
    warmup_iterations: int
    min_learning_rate: float
    peak_decay: float  # the peak learning rate is multiplied by this at each restart
    perturbation: Perturbation


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    fitting: Stage
    quantization: Stage  # quantisation-aware training

    @property
    def total_iterations(self) -> int:
        return sum(s.steps * s.iterations for s in (self.fitting, self.quantization))


PAPER = Preset(
    name="paper",
    fitting=Stage(
        steps=10,
        iterations=150,
        learning_rate=1e-3,
        weight_decay=1e-4,
        warmup_iterations=20,
        min_learning_rate=6e-4,
        peak_decay=0.99,
        perturbation=Perturbation(
            amount_start=0.125,
            amount_end=0.7,
            amount_smoothing=0.05,
            range_start=0.9,
            range_end=0.2,
            range_smoothing=0.2,
        ),
    ),
    quantization=Stage(
        steps=5,
        iterations=40,
        learning_rate=5e-5,
        # The reference sets no weight decay here, so AdamW's default (0.01) applies.
        weight_decay=1e-2,
        warmup_iterations=5,
        min_learning_rate=2e-5,
        peak_decay=1.0,
        perturbation=Perturbation(
            amount_start=0.005,
            amount_end=0.005,
            amount_smoothing=1,
            range_start=0,
            range_end=0.005,
            range_smoothing=1,
        ),
    ),
)

DEBUG = replace(
    PAPER,
    name="debug",
    fitting=replace(PAPER.fitting, steps=2, iterations=12, warmup_iterations=4),
    quantization=replace(PAPER.quantization, steps=2, iterations=4, warmup_iterations=2),
)

PRESETS = {p.name: p for p in (PAPER, DEBUG)}


def get_widths(name: str) -> Widths:
    try:
        return WIDTHS[name]
    except KeyError:
        valid = ", ".join(WIDTHS)
        raise KeyError(
            f"unknown NIF configuration {name!r}; valid configurations: {valid}"
        ) from None

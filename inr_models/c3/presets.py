"""The C3-style architecture and its training presets.

Facts from C3's Kodak configuration (``configs/kodak.py`` of google-deepmind/c3_neural_compression)
unless said otherwise. Where bit-exact decoding needs it, Cool-Chic 3.x is followed instead: the
ARM is COOL-CHIC's integer ReLU network (C3's uses GELU) with a residual hidden layer, and network
weights take power-of-two steps searched per module (C3 shares one grid of decimal steps).
"""

from dataclasses import dataclass, replace

from inr_models.coolchic.layers import SynthesisLayer
from inr_models.coolchic.presets import Architecture

ARCHITECTURE = Architecture(
    n_grids=7,  # downsampling exponents 0..6
    arm_rowcol=3,  # C3's (3, 3) context: the 24 causal positions of a 7x7 window
    arm_hidden=(18, 18),
    synthesis=(
        SynthesisLayer(out_channels=18, kernel_size=1, residual=False, relu=False, gelu=True),
        SynthesisLayer(out_channels=18, kernel_size=1, residual=False, relu=False, gelu=True),
        SynthesisLayer(out_channels=3, kernel_size=1, residual=False, relu=False),
        SynthesisLayer(out_channels=3, kernel_size=3, residual=True, relu=False, gelu=True),
        SynthesisLayer(out_channels=3, kernel_size=3, residual=True, relu=False),
    ),
    upsampling="bilinear",
    arm_fraction_bits=8,
    arm_rounding_offset=0.5,
    synthesis_init="fan_in",
    quantization_order=("synthesis", "arm"),
    rounds_evaluation_output=True,  # C3 evaluates the 8-bit image
    gain_floor_one=False,
    learned_gains=False,  # gains 2^i, fixed
    latent_step=0.4,
    arm_log_scale_bias=8.0,  # C3's shift_log_scale
    noise_gradient=1.0,
    ste_gradient=1.0,
)


@dataclass(frozen=True, kw_only=True)
class Preset:
    name: str
    # Main phase: soft rounding with Kumaraswamy noise, Adam at a cosine-decayed learning rate.
    soft_round_iterations: int
    learning_rate: float  # decays to 0 over the phase
    temperature: tuple[float, float]  # soft-rounding temperature, first and last (linear)
    kumaraswamy: tuple[float, float]  # noise shape a, first and last (linear); 1 is uniform
    # Fine-tuning: rounding in the forward pass, soft rounding's gradient at a tiny temperature;
    # after ``ste_patience`` iterations without a better loss, the learning rate is multiplied by
    # ``ste_decay`` and model and optimiser go back to the best state; it ends below
    # ``ste_min_learning_rate`` or after ``ste_iterations``.
    ste_iterations: int
    ste_learning_rate: float
    ste_temperature: float
    ste_patience: int
    ste_decay: float
    ste_min_learning_rate: float
    gradient_clip: float  # global norm
    validate_every: int
    exhaustive_quantization: bool = True

    @property
    def total_iterations(self) -> int:
        return self.soft_round_iterations + self.ste_iterations


PAPER = Preset(
    name="paper",
    soft_round_iterations=100_000,
    learning_rate=1e-2,
    temperature=(0.3, 0.1),
    kumaraswamy=(2.0, 1.0),
    ste_iterations=10_000,
    ste_learning_rate=1e-4,
    ste_temperature=1e-4,
    ste_patience=20,
    ste_decay=0.8,
    ste_min_learning_rate=1e-8,
    gradient_clip=0.1,
    validate_every=1000,
)
# About COOL-CHIC v2's paper budget and Cool-Chic 3.x's "fast_10k": for studies that search.
MEDIUM = replace(PAPER, name="medium", soft_round_iterations=10_000, ste_iterations=1000,
                 validate_every=500)  # fmt: skip
# At most the iterations of COOL-CHIC v2's ``short``: budget-matched comparisons.
SHORT = replace(PAPER, name="short", soft_round_iterations=2700, ste_iterations=300,
                validate_every=100)  # fmt: skip
DEBUG = replace(
    PAPER,
    name="debug",
    soft_round_iterations=30,
    ste_iterations=10,
    ste_patience=3,
    validate_every=10,
    exhaustive_quantization=False,
)
PRESETS = {p.name: p for p in (PAPER, MEDIUM, SHORT, DEBUG)}

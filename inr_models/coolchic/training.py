"""Fitting a COOL-CHIC model to one image: warm-up among candidates, then the preset's phases.

J = D + λ·R, D any loss from ``losses`` (on [0, 1] images), R the latent rate in bits per pixel
from the ARM. Validation (every ``validate_every`` iterations and at the end of each phase)
evaluates J with actually rounded latents, and with the integer ARM wherever it is the one that
trains or codes (after the network's quantisation).
"""

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from inr_models.base import DivergedError
from inr_models.coolchic.exact import arm_rounding
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.presets import Architecture, Phase, Preset
from inr_models.coolchic.quantization import QuantizedModule, greedy_quantize
from inr_models.coolchic.quantizers import Quantizer, QuantizerMode


@dataclass
class FitResult:
    model: CoolChic
    network: dict[str, QuantizedModule]
    iterations: int = 0
    validation_history: list[dict] = field(default_factory=list)


class Fitter:
    def __init__(
        self,
        architecture: Architecture,
        preset: Preset,
        target: Tensor,
        distortion: Callable[[Tensor, Tensor], Tensor],
        lmbda: float,
        on_iteration: Callable[[], None] = lambda: None,
        on_validation: Callable[[dict], None] = lambda record: None,
    ):
        self.architecture, self.preset = architecture, preset
        self.target, self.distortion, self.lmbda = target, distortion, lmbda
        self.pixels = target.shape[-2] * target.shape[-1]
        self.on_iteration, self.on_validation = on_iteration, on_validation
        self.iterations = 0
        self.history: list[dict] = []

    def objective(
        self, model: CoolChic, mode: QuantizerMode | Quantizer, integer_arm: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        rounding = arm_rounding(self.architecture) if integer_arm else None
        reconstruction, rate_bits = model(mode, rounding)
        d = self.distortion(reconstruction, self.target)
        return d + self.lmbda * rate_bits / self.pixels, d, rate_bits

    @torch.no_grad()
    def validate(self, model: CoolChic, phase_name: str, integer_arm: bool = False) -> float:
        model.eval()
        loss, d, rate_bits = self.objective(model, "round", integer_arm)
        model.train()
        value = float(loss)
        if not math.isfinite(value):
            raise DivergedError(f"non-finite loss ({value}) in {phase_name}")
        record = {
            "phase": phase_name,
            "iteration": self.iterations,
            "loss": value,
            "distortion": float(d),
            "bpp_estimate": float(rate_bits) / self.pixels,
        }
        self.history.append(record)
        self.on_validation(record)
        return value

    def train_phase(self, model: CoolChic, phase: Phase, phase_name: str) -> float:
        """Run one phase; returns the J of the state it leaves (best or last, per the preset)."""
        trained = model.parameters_of(phase.trained)
        trained_ids = {id(p) for p in trained}
        saved_flags = {p: p.requires_grad for p in model.parameters()}
        clip_all = self.preset.gradient_clip_scope == "all"
        for parameter in model.parameters():
            kept = clip_all or id(parameter) in trained_ids
            parameter.requires_grad_(saved_flags[parameter] and kept)
        trainable = [p for p in trained if p.requires_grad]
        clipped = [p for p in model.parameters() if p.requires_grad] if clip_all else trainable
        optimizer = torch.optim.Adam(trainable, lr=phase.learning_rate)
        best_loss, best_state, last_loss = math.inf, None, math.inf
        model.train()
        for step in range(phase.iterations):
            loss, _, _ = self.objective(model, phase.quantizer, phase.integer_arm)
            self.step(model, optimizer, loss, clipped)
            if (step + 1) % self.preset.validate_every == 0 or step == phase.iterations - 1:
                last_loss = self.validate(model, phase_name, phase.integer_arm)
                if self.preset.keep == "best" and last_loss < best_loss:
                    best_loss, best_state = last_loss, copy.deepcopy(model.state_dict())
        for parameter, flag in saved_flags.items():
            parameter.requires_grad_(flag)
        if self.preset.keep == "best" and best_state is not None:
            model.load_state_dict(best_state)
            return best_loss
        return last_loss

    def step(self, model: CoolChic, optimizer, loss: Tensor, clipped) -> None:
        """One optimiser step on ``loss``, gradients of ``clipped`` clipped to the preset's norm."""
        model.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(clipped, self.preset.gradient_clip)
        optimizer.step()
        self.iterations += 1
        self.on_iteration()

    def warm_up(self, height: int, width: int) -> CoolChic:
        preset = self.preset
        phase = Phase(
            iterations=preset.warmup_iterations,
            learning_rate=preset.warmup_learning_rate,
            trained="all",
            quantizer="noise",
        )
        candidates = [
            CoolChic(self.architecture, height, width).to(self.target.device)
            for _ in range(preset.warmup_candidates[0])
        ]
        for round_index, _ in enumerate(preset.warmup_candidates):
            scored = [
                (self.train_phase(c, phase, f"warm-up {round_index + 1}"), i, c)
                for i, c in enumerate(candidates)
            ]
            survivors = (preset.warmup_candidates[round_index + 1 :] or (1,))[0]
            candidates = [c for _, _, c in sorted(scored, key=lambda s: (s[0], s[1]))[:survivors]]
        return candidates[0]

    def fit(self) -> FitResult:
        height, width = self.target.shape[-2:]
        model = self.warm_up(height, width)
        network = {}  # Preset guarantees one phase quantises the network
        for index, phase in enumerate(self.preset.phases):
            self.train_phase(model, phase, f"phase {index}")
            if phase.quantize_network_after:
                network = self.quantize_network(model, f"phase {index} quantized")
        return FitResult(model.eval(), network, self.iterations, self.history)

    def quantize_network(self, model: CoolChic, label: str) -> dict[str, QuantizedModule]:
        """The greedy search of the network's steps. Later phases train latents only (``Preset``
        ensures it); the network keeps its gradients there, so that a phase clipping "all"
        counts them in the norm, as v2's fork does in its last phase."""
        network = greedy_quantize(
            model,
            self.target,
            self.distortion,
            self.lmbda,
            exhaustive=self.preset.exhaustive_quantization,
        )
        self.validate(model, label, integer_arm=True)
        return network

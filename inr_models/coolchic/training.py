"""Fitting a COOL-CHIC model to one image: warm-up among candidates, then the preset's phases.

J = D + λ·R, D any loss from ``losses`` (on [0, 1] images), R the latent rate in bits per pixel
from the ARM. Validation (every ``validate_every`` iterations and at the end of each phase)
evaluates J with actually rounded latents, and with the integer ARM wherever it is the one that
trains or codes (after the network's quantisation).
"""

import copy
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from inr_models.base import DivergedError
from inr_models.coolchic.exact import arm_rounding
from inr_models.coolchic.model import CoolChic, forward_many
from inr_models.coolchic.presets import Architecture, Phase, Preset
from inr_models.coolchic.quantization import QuantizedModule, greedy_quantize
from inr_models.coolchic.quantizers import Quantizer, QuantizerMode


@dataclass
class Forward:
    """A training step's forward pass that a fit asks its driver for: J of ``model`` under
    ``mode``. The driver computes it (with other fits' requests, in one batch), back-propagates
    it, and sends J back; the fit then clips and steps. A fit's recipe is written once, as a
    generator of these requests, and runs alone (``run_alone``) or with others
    (``run_together``) with the same schedule, early stopping and warm-up choices."""

    fitter: "Fitter"
    model: CoolChic
    mode: QuantizerMode | Quantizer
    integer_arm: bool = False


# What a fit's recipe is: requests out, J in, its result at the end.
Steps = Generator[Forward, Tensor, object]


@dataclass
class FitResult:
    model: CoolChic
    network: dict[str, QuantizedModule]
    iterations: int = 0
    validation_history: list[dict] = field(default_factory=list)
    # Of ``iterations``: those spent training warm-up candidates (the kept one's included), and
    # those the kept model trained (its warm-up rounds included): a budget per final model.
    warmup_iterations: int = 0
    final_model_iterations: int = 0


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
        generator: torch.Generator | None = None,
    ):
        self.architecture, self.preset = architecture, preset
        self.target, self.distortion, self.lmbda = target, distortion, lmbda
        # The fit's training noise; None: torch's default generator (a fit alone).
        self.generator = generator
        self.pixels = target.shape[-2] * target.shape[-1]
        self.on_iteration, self.on_validation = on_iteration, on_validation
        self.iterations = 0
        self.history: list[dict] = []

    def objective(
        self, model: CoolChic, mode: QuantizerMode | Quantizer, integer_arm: bool = False
    ) -> tuple[Tensor, Tensor, Tensor]:
        rounding = arm_rounding(self.architecture) if integer_arm else None
        reconstruction, rate_bits = model(mode, rounding, self.generator)
        return (*self.loss_of(reconstruction, rate_bits), rate_bits)

    def loss_of(self, reconstruction: Tensor, rate_bits: Tensor) -> tuple[Tensor, Tensor]:
        """(J, D) of a reconstruction and its latent bits."""
        d = self.distortion(reconstruction, self.target)
        return d + self.lmbda * rate_bits / self.pixels, d

    def fit(self) -> FitResult:
        return run_alone(self.fit_steps())

    def train_phase(self, model: CoolChic, phase: Phase, phase_name: str) -> float:
        """Run one phase; returns the J of the state it leaves (best or last, per the preset)."""
        return run_alone(self.phase_steps(model, phase, phase_name))

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

    def phase_steps(self, model: CoolChic, phase: Phase, phase_name: str) -> Steps:
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
            yield Forward(self, model, phase.quantizer, phase.integer_arm)
            self.step(optimizer, clipped)
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

    def step(self, optimizer, clipped) -> None:
        """One optimiser step on the gradients the driver left, those of ``clipped`` clipped to
        the preset's norm."""
        nn.utils.clip_grad_norm_(clipped, self.preset.gradient_clip)
        optimizer.step()
        self.iterations += 1
        self.on_iteration()

    def warm_up(self, height: int, width: int) -> Steps:
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
        # A loss may warm up on another (Cool-Chic 5's Wasserstein tuning warms up on MSE).
        trained_with = self.distortion
        self.distortion = getattr(trained_with, "warm_up_loss", trained_with)
        try:
            for round_index, _ in enumerate(preset.warmup_candidates):
                scored = []
                for i, candidate in enumerate(candidates):
                    name = f"warm-up {round_index + 1}"
                    loss = yield from self.phase_steps(candidate, phase, name)
                    scored.append((loss, i, candidate))
                survivors = (preset.warmup_candidates[round_index + 1 :] or (1,))[0]
                ranked = sorted(scored, key=lambda s: (s[0], s[1]))
                candidates = [c for _, _, c in ranked[:survivors]]
        finally:
            self.distortion = trained_with
        return candidates[0]

    def fit_steps(self) -> Steps:
        """The whole fit; returns its ``FitResult``."""
        height, width = self.target.shape[-2:]
        model = yield from self.warm_up(height, width)
        network = {}  # Preset guarantees one phase quantises the network
        for index, phase in enumerate(self.preset.phases):
            yield from self.phase_steps(model, phase, f"phase {index}")
            if phase.quantize_network_after:
                network = self.quantize_network(model, f"phase {index} quantized")
        preset = self.preset
        return FitResult(model.eval(), network, self.iterations, self.history,
                         preset.warmup_total, preset.final_model_iterations)  # fmt: skip

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


def run_alone(steps: Steps):
    """A fit's recipe (or part of it) on its own; returns what it returns, raises what it
    raises."""
    result = run_together([steps])[0]
    if isinstance(result, Exception):
        raise result
    return result


def run_together(recipes: list[Steps]) -> list:
    """B fits' recipes in lockstep: each round, every fit still running asks for one forward
    pass, and the passes run as one batch; a fit that stops early (C3's) leaves the batch.
    Returns each recipe's result, in order, or the exception a failed one raised."""
    results: list = [None] * len(recipes)
    waiting: dict[int, Forward] = {}

    def advance(index: int, answer: Tensor | None) -> None:
        try:
            waiting[index] = recipes[index].send(answer)
        except StopIteration as done:
            results[index] = done.value
            waiting.pop(index, None)
        except Exception as error:  # this fit failed (diverged): the others go on
            results[index] = error
            waiting.pop(index, None)

    for index in range(len(recipes)):
        advance(index, None)
    while waiting:
        order = list(waiting)
        for index, loss in zip(order, _answer([waiting[i] for i in order]), strict=True):
            advance(index, loss.detach())
    return results


def _answer(requests: list[Forward]) -> list[Tensor]:
    """J of each request, back-propagated into each fit's own parameters (gradients of one fit
    never mix with another's: the sum's gradient is 1 for every J). Requests on the float ARM
    run as batches of one size and architecture; the integer ARM's (v2's last phase) fit by fit."""
    for request in requests:
        request.model.zero_grad(set_to_none=True)
    losses: list[Tensor | None] = [None] * len(requests)
    batches: dict[tuple, list[int]] = {}
    for index, request in enumerate(requests):
        if request.integer_arm:
            losses[index] = request.fitter.objective(request.model, request.mode, True)[0]
        else:
            model = request.model
            key = (
                id(request.fitter.architecture),
                model.height,
                model.width,
                str(model.log2_gains.device),
            )
            batches.setdefault(key, []).append(index)
    for indices in batches.values():
        batch = [requests[i] for i in indices]
        outputs = forward_many(
            [r.model for r in batch], [r.mode for r in batch], [r.fitter.generator for r in batch]
        )
        for index, request, output in zip(indices, batch, outputs, strict=True):
            losses[index] = request.fitter.loss_of(*output)[0]
    torch.autograd.backward(losses)
    return losses

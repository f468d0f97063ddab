"""C3's training recipe on a COOL-CHIC model: one initialisation (no warm-up candidates), a
soft-rounding phase, a straight-through fine-tuning phase that keeps its best state, then the
network's quantisation (COOL-CHIC's greedy search over power-of-two steps)."""

import copy
import math

import torch

from inr_models.c3.presets import Preset
from inr_models.c3.quantizers import SoftRoundNoise, StraightThroughSoftRound
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.training import FitResult, Fitter, Forward, Steps


def _linear(first: float, last: float, progress: float) -> float:
    return first + (last - first) * progress


class C3Fitter(Fitter):
    preset: Preset

    def fit_steps(self) -> Steps:
        height, width = self.target.shape[-2:]
        model = CoolChic(self.architecture, height, width).to(self.target.device)
        optimizer = torch.optim.Adam(model.parameters(), lr=self.preset.learning_rate)
        yield from self.soft_round_phase(model, optimizer)
        yield from self.straight_through_phase(model, optimizer)
        network = self.quantize_network(model, "quantized")
        # One model, no warm-up: every iteration is the final model's (early stop included).
        return FitResult(model.eval(), network, self.iterations, self.history, 0, self.iterations)

    def soft_round_phase(self, model: CoolChic, optimizer) -> Steps:
        preset, steps = self.preset, self.preset.soft_round_iterations
        model.train()
        for step in range(steps):
            cosine = 0.5 * (1 + math.cos(math.pi * step / steps))  # decays to 0
            _set_learning_rate(optimizer, preset.learning_rate * cosine)
            quantizer = SoftRoundNoise(
                _linear(*preset.temperature, step / max(steps - 1, 1)),
                _linear(*preset.kumaraswamy, step / steps),
            )
            yield Forward(self, model, quantizer)
            self.step(optimizer, model.parameters())
            if (step + 1) % preset.validate_every == 0 or step == steps - 1:
                self.validate(model, "soft rounding")

    def straight_through_phase(self, model: CoolChic, optimizer) -> Steps:
        """C3's fine-tuning, Adam's state carried over; the best state is the one whose loss was
        measured (C3 stores the state after that step's update instead)."""
        preset = self.preset
        learning_rate = preset.ste_learning_rate
        quantizer = StraightThroughSoftRound(preset.ste_temperature)
        best_loss = self.validate(model, "straight-through start")  # rounded, 8-bit output
        best = _snapshot(model, optimizer)
        model.train()
        stale = 0
        _set_learning_rate(optimizer, learning_rate)
        for step in range(preset.ste_iterations):
            value = float((yield Forward(self, model, quantizer)))
            if value < best_loss:
                best_loss, best, stale = value, _snapshot(model, optimizer), 0
            else:
                stale += 1
            if stale >= preset.ste_patience:
                learning_rate *= preset.ste_decay
                stale = 0
                _restore(model, optimizer, best)  # the snapshot's learning rate comes back too
                _set_learning_rate(optimizer, learning_rate)
                if learning_rate < preset.ste_min_learning_rate:
                    break
                continue
            self.step(optimizer, model.parameters())
            if (step + 1) % preset.validate_every == 0:
                self.validate(model, "straight-through")
        model.load_state_dict(best[0])
        self.validate(model, "straight-through best")


def _set_learning_rate(optimizer, learning_rate: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = learning_rate


def _snapshot(model: CoolChic, optimizer) -> tuple[dict, dict]:
    return copy.deepcopy(model.state_dict()), copy.deepcopy(optimizer.state_dict())


def _restore(model: CoolChic, optimizer, snapshot: tuple[dict, dict]) -> None:
    model.load_state_dict(snapshot[0])
    # A copy: the optimiser adopts the snapshot's moment tensors and updates them in place.
    optimizer.load_state_dict(copy.deepcopy(snapshot[1]))

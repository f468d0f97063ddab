"""Fitting NIF to one image as the reference runs it (reference-codecs.md §5).

The image and the coordinate grid are split into their 4 polyphase half-resolution sub-images; one
iteration is one AdamW step per sub-image. Fitting runs ``steps`` × ``iterations`` with a warm
restart of the learning rate at each step and a random perturbation of the weights between steps;
the state with the best PSNR is kept. Quantisation-aware training then repeats this with
fake-quantised weights in the forward pass (straight-through: gradients update the float weights).
"""

import copy
import math
from collections.abc import Callable

import torch
from torch import Tensor

from inr_models.base import DivergedError
from inr_models.nif.model import Nif
from inr_models.nif.presets import Perturbation, Preset, Stage
from inr_models.nif.quantization import fake_quantize

POLYPHASE = ((0, 0), (0, 1), (1, 0), (1, 1))


def polyphase(t: Tensor) -> list[Tensor]:
    """The 4 sub-images t[..., i::2, j::2] of a (..., H, W) tensor (channels-last grids too)."""
    return [t[..., i::2, j::2] for i, j in POLYPHASE]


def learning_rate(stage: Stage, cycle_iteration: int, cycle: int) -> float:
    """Linear warm-up from the floor to the (decayed) peak, then linear decay back to the floor."""
    peak = stage.learning_rate * stage.peak_decay**cycle
    if cycle_iteration < stage.warmup_iterations:
        position = cycle_iteration / max(stage.warmup_iterations - 1, 1)
    else:
        position = 1.0 - cycle_iteration / stage.iterations
    return stage.min_learning_rate + (peak - stage.min_learning_rate) * position


@torch.no_grad()
def perturb(model: Nif, perturbation: Perturbation, progress: float, generator: torch.Generator):
    """Add sparse uniform noise to every weight matrix but the first layers.

    Noise U(±mean|w|·range) is kept with probability ``amount`` and scaled by 1/amount
    (dropout's scaling, as the reference applies it).
    """
    p = perturbation
    amount = p.amount_start + (p.amount_end - p.amount_start) * progress**p.amount_smoothing
    spread = p.range_start + (p.range_end - p.range_start) * progress**p.range_smoothing
    for stack in (model.main, model.modulator):
        for layer in stack[1:]:
            weight = layer.weight
            variation = float(weight.abs().mean()) * spread
            noise = (torch.rand(weight.shape, generator=generator) * 2 - 1) * variation
            keep = torch.rand(weight.shape, generator=generator) < amount
            weight += (noise * keep / amount).to(weight.device, weight.dtype)


class NifFitter:
    def __init__(
        self,
        model: Nif,
        preset: Preset,
        grid: Tensor,
        target: Tensor,
        distortion: Callable[[Tensor, Tensor], Tensor],
        generator: torch.Generator,
        on_iteration: Callable[[], None] = lambda: None,
        on_validation: Callable[[dict], None] = lambda record: None,
    ):
        """``grid``: (H, W, 2) coordinates; ``target``: (3, H, W) in [-1, 1]; ``distortion`` takes
        [0, 1] images and applies NIF's convention per sub-image."""
        self.model, self.preset, self.distortion = model, preset, distortion
        self.targets = polyphase(target)
        self.inputs = [
            model.encode_inputs(g.movedim(0, -1)) for g in polyphase(grid.movedim(-1, 0))
        ]
        self.generator = generator
        self.on_iteration, self.on_validation = on_iteration, on_validation
        self.iterations = 0
        self.history: list[dict] = []

    def run_iteration(self, optimizer, quantized: bool) -> tuple[float, dict | None]:
        """One AdamW step per sub-image; PSNR of the outputs seen during the iteration.

        With ``quantized``, each forward uses fake-quantised weights and the gradient updates the
        float weights; the float state before the last step is returned for bookkeeping.
        """
        squared_error, pixels, snapshot = 0.0, 0, None
        for inputs, target in zip(self.inputs, self.targets, strict=True):
            optimizer.zero_grad(set_to_none=True)
            if quantized:
                snapshot = copy.deepcopy(self.model.state_dict())
                with torch.no_grad():
                    for parameter in self.model.parameters():
                        parameter.copy_(fake_quantize(parameter))
            output = self.model(inputs).movedim(-1, 0)
            loss = self.distortion((output + 1) / 2, (target + 1) / 2)
            if not torch.isfinite(loss):
                raise DivergedError(f"non-finite NIF loss at iteration {self.iterations}")
            loss.backward()
            if quantized:
                self.model.load_state_dict(snapshot)
            optimizer.step()
            squared_error += float(((output.detach() - target) / 2).square().sum())
            pixels += target.numel()
        self.iterations += 1
        self.on_iteration()
        return -10 * math.log10(max(squared_error / pixels, 1e-20)), snapshot

    def run_stage(self, stage: Stage, quantized: bool, name: str) -> float:
        """``stage.steps`` warm restarts; leaves the best state in the model, returns its PSNR."""
        optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=stage.learning_rate, weight_decay=stage.weight_decay
        )
        best_psnr, best_state = -math.inf, None
        for step in range(stage.steps):
            step_psnr, step_state = -math.inf, None
            for iteration in range(stage.iterations):
                for group in optimizer.param_groups:
                    group["lr"] = learning_rate(stage, iteration, step)
                psnr, snapshot = self.run_iteration(optimizer, quantized)
                if psnr > step_psnr:
                    # QAT keeps the float weights whose quantised forward scored; fitting keeps
                    # the state after the iteration's steps, as the reference does.
                    step_psnr = psnr
                    step_state = snapshot if quantized else copy.deepcopy(self.model.state_dict())
            record = {
                "phase": f"{name} step {step + 1}",
                "iteration": self.iterations,
                "psnr": step_psnr,
            }
            self.history.append(record)
            self.on_validation(record)
            if step_psnr > best_psnr:
                best_psnr, best_state = step_psnr, step_state
            # Fitting continues from the step's best state, QAT from the best so far (as run).
            self.model.load_state_dict(best_state if quantized else step_state)
            if step < stage.steps - 1:
                perturb(self.model, stage.perturbation, (step + 1) / stage.steps, self.generator)
        self.model.load_state_dict(best_state)
        return best_psnr

    def fit(self) -> Nif:
        self.model.train()
        self.run_stage(self.preset.fitting, quantized=False, name="fitting")
        self.best_quantized_psnr = self.run_stage(
            self.preset.quantization, quantized=True, name="quantisation-aware training"
        )
        return self.model.eval()

"""What batching fits buys a launch-bound GPU, counted on any machine: operator calls per fit
per training step, for B fits trained together (``training.run_together``), at Kodak size.

A single COOL-CHIC fit on a GPU is launch-bound (benchmarks/README.md: v1 and v2 take the same
0.0122 s per iteration on an H200 although their networks differ several-fold in cost), so the
number of kernels each fit's step launches bounds its speed there. Each PyTorch operator call
here that is not a view launches at least one kernel on a GPU; the count is taken on the GPU's
code path (columns in one chunk, fixed upsampling kernels on all planes at once, Adam and the
gradient clip over each fit's tensors at once), on the CPU, the operators intercepted. Also
prints this CPU's seconds per iteration per fit.

    python benchmarks/batched_fits.py [--batches 1,2,4,16] [--image FILE]
"""

import argparse
import functools
import itertools
import statistics
import time

import torch
from images import add_image_arguments, image_path
from torch.utils._python_dispatch import TorchDispatchMode

from inr_models import get_codec_class
from inr_models.coolchic import fused, layers
from inr_models.coolchic.model import CoolChic
from inr_models.coolchic.presets import PRESETS, Phase
from inr_models.coolchic.training import Fitter, run_together
from losses import COOLCHIC, build_loss
from study.data.imageio import load_rgb

CODECS = ("coolchic-v1", "coolchic-v2", "c3")


# Operators that launch nothing on a GPU: views (metadata only) and reading a CPU scalar (Adam
# keeps its step counts on the CPU).
NO_KERNEL = {
    "slice", "select", "view", "_unsafe_view", "alias", "detach", "expand", "t", "transpose",
    "unsqueeze", "squeeze", "permute", "as_strided", "unbind", "split", "chunk", "narrow",
    "_local_scalar_dense", "split_with_sizes", "reshape", "unfold",
}  # fmt: skip


class OperatorCount(TorchDispatchMode):
    """Counts the operator calls that launch a kernel on a GPU."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func.overloadpacket.__name__ not in NO_KERNEL:
            self.calls += 1
        return func(*args, **(kwargs or {}))


def lockstep(codec: str, target: torch.Tensor, batch: int, rounds: int, on_round) -> None:
    """``rounds`` training steps of ``batch`` fits of ``codec``'s architecture in lockstep, on
    ``target``'s device: the main phase's step (uniform noise, every parameter trained; C3's
    soft rounding costs a few more elementwise kernels). ``on_round()`` after each round."""
    architecture = get_codec_class(codec).architecture
    loss = build_loss("mse", COOLCHIC)
    phase = Phase(iterations=rounds, learning_rate=1e-3, trained="all", quantizer="noise")
    recipes = []
    for seed in range(batch):
        torch.manual_seed(seed)
        fitter = Fitter(architecture, PRESETS[1]["paper"], target, loss, 4e-3)
        model = CoolChic(architecture, *target.shape[-2:]).to(target.device)
        recipes.append(_ticking(fitter.phase_steps(model, phase, "measured"), on_round, seed == 0))
    run_together(recipes)


def _ticking(steps, on_round, first: bool):
    request = next(steps)
    while True:
        loss = yield request
        if first:
            on_round()
        try:
            request = steps.send(loss)
        except StopIteration:
            return


def operators_per_fit_step(codec: str, target: torch.Tensor, batch: int) -> float:
    """Kernel-launching operator calls per fit per step, on the GPU's code path, after a first
    round."""
    counter, counts = OperatorCount(), []
    chunk, batched, adam = fused.CHUNK_COLUMNS, layers.batched_kernels, torch.optim.Adam
    clip = torch.nn.utils.clip_grad_norm_
    fused.CHUNK_COLUMNS = 1 << 30  # a GPU takes all columns at once
    layers.batched_kernels = lambda x: True  # and all fits' convolutions as one
    # On a GPU, Adam and the gradient clip update all of a fit's tensors per kernel (foreach).
    torch.optim.Adam = functools.partial(adam, foreach=True)
    torch.nn.utils.clip_grad_norm_ = functools.partial(clip, foreach=True)
    try:
        with counter:
            lockstep(codec, target, batch, 3, lambda: counts.append(counter.calls))
    finally:
        fused.CHUNK_COLUMNS, layers.batched_kernels, torch.optim.Adam = chunk, batched, adam
        torch.nn.utils.clip_grad_norm_ = clip
    return (counts[2] - counts[1]) / batch


def seconds_per_fit_step(codec: str, target: torch.Tensor, batch: int, rounds: int) -> float:
    ticks: list[float] = []
    lockstep(codec, target, batch, rounds + 2, lambda: ticks.append(time.perf_counter()))
    return statistics.median(b - a for a, b in itertools.pairwise(ticks[1:])) / batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_image_arguments(parser)
    parser.add_argument("--batches", default="1,2,4,16")
    parser.add_argument("--rounds", type=int, default=3, help="timed steps (CPU seconds)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    image = load_rgb(image_path(args))
    target = torch.from_numpy(image / 255.0).float().permute(2, 0, 1)[None]
    batches = [int(b) for b in args.batches.split(",")]
    print(f"{image.shape[1]}x{image.shape[0]}, {args.threads} thread(s)")
    print("codec        B   operators/fit/step   CPU s/fit/step")
    for codec in CODECS:
        for batch in batches:
            operators = operators_per_fit_step(codec, target, batch)
            seconds = (
                seconds_per_fit_step(codec, target, batch, args.rounds) if batch <= 4 else None
            )
            shown = "—" if seconds is None else f"{seconds:.3f}"
            print(f"{codec:12} {batch:2}   {operators:18.1f}   {shown:>14}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seconds per training iteration of the paper's own code and of ours, side by side.

COOL-CHIC v1, COOL-CHIC v2 and NIF 0_31 on one full-size image, CPU, a fixed torch thread count.
Every measurement is a fresh subprocess; rounds interleave the two sides (paper then ours, then
ours then paper, ...) so that load drifts on a shared machine hit both alike. Prints the median
seconds per iteration of each side and the ratio ours/paper; asserts nothing. Compare with
reference-codecs.md §7.

The paper's forks are not part of this repository. Prepare them once into a scratch folder (git
archive of the mirrors, the small patches that today's torch needs, einops 0.6.0 and constriction
0.3.0 pip-installed into that folder's site-packages, never into the project's venv):

    python benchmarks/paper_side_by_side.py --prepare /tmp/paper-code --mirrors COOLCHIC_GIT NIF_GIT
    python benchmarks/paper_side_by_side.py --paper-code /tmp/paper-code --json side_by_side.json

Each side runs its own training loop unchanged (the fork's ``train`` / ``one_training_phase`` /
``train_model``, our ``Fitter.train_phase`` / ``NifFitter.run_stage``) for warm-up + N
iterations; a global optimizer-step hook stamps the end of every iteration's last optimizer step,
so one interval is exactly one loop body. The fork settings are the paper's: v1 λ 4e-3 MSE main
phase (Adam 1e-2, clip 10); v2 paper architecture, λ 1e-3 MSE, "faster" phase 0 (Adam 1e-2, clip
0.1); NIF 0_31 with LogCosh + 0.01·SSIM, one iteration = 4 AdamW steps. Each fork also gets its
entry script's process settings (seeds, TorchScript flags, v2's flush-denormal), with the thread
count replaced by ``--threads``. Modules the forks import but the timed code never needs (fvcore's
FLOP counter, scikit-image) get sys.modules stand-ins when missing. NIF runs without its
TensorBoard writer (with one, its modulator logs a scalar per forward).

``--decode`` adds decode seconds (median of 3): the forks decode the kodim01 bitstreams their
branches ship (v1 λ 4e-3, v2 λ 1e-3; v2's decoder also writes the PNG) and a NIF file that the
fork's own quantise/compress functions write from untrained weights; ours decode a file from a
short debug-preset encode, as coolchic_speed.py and nif_speed.py do.
"""

import argparse
import contextlib
import itertools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from images import add_image_arguments, image_path
from timing import median_seconds

# folder -> (mirror index, branch, paths to extract)
FORKS = {
    "coolchic-v1": (
        0,
        "1.0-adaptations",
        ["src", "results/kodak/bitstreams/kodim01-lambda004.bin"],
    ),
    "coolchic-v2": (
        0,
        "2.0-adaptations",
        ["src", "results/kodak/bitstreams/kodim01-lmbda-0001.bin"],
    ),
    "nif": (1, "main", [".", ":(exclude)results", ":(exclude)test_images"]),
}
# Needed by the forks, absent from the project's venv (or, for constriction, too new for v2).
FORK_PACKAGES = ("einops==0.6.0", "constriction==0.3.0")
# (file, exact old text, new text): torch 2.x removed the schedulers' verbose/print_lr.
PATCHES = {
    "coolchic-v1": [
        (
            "src/model_management/trainer.py",
            "patience=PATIENCE, verbose=True)",
            "patience=PATIENCE)",
        ),
    ],
    "nif": [
        (
            "phases/scheduler.py",
            "super(CustomScheduler, self).__init__(optimizer, last_epoch, verbose)",
            "super().__init__(optimizer, last_epoch)",
        ),
        ("phases/scheduler.py", "                self.print_lr(self.verbose, i, lr, epoch)\n", ""),
    ],
}
CODECS = ("coolchic-v1", "coolchic-v2", "nif")
SIDES = ("paper", "ours")
LAMBDA = {"coolchic-v1": 4e-3, "coolchic-v2": 1e-3}
NIF_CONFIG = "configurations/nif/kodak_losses/logcosh_ssim/0_31.yaml"
NIF_WIDTHS = "0_31"
V2_SYNTHESIS = ["40-1-linear-relu", "3-1-linear-relu", "3-3-residual-relu", "3-3-residual-none"]


def prepare(folder: Path, mirrors: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    revisions = {}
    for name, (mirror, branch, paths) in FORKS.items():
        target = folder / name
        if target.exists():
            raise SystemExit(f"{target} exists: remove it to prepare again")
        target.mkdir()
        git = ["git", f"--git-dir={mirrors[mirror]}"]
        archive = subprocess.run(
            [*git, "archive", branch, "--", *paths], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
        for relative, old, new in PATCHES.get(name, []):
            path = target / relative
            text = path.read_text()
            if text.count(old) != 1:
                raise SystemExit(f"patch for {path}: expected text found {text.count(old)} times")
            path.write_text(text.replace(old, new))
        revision = subprocess.run(
            [*git, "rev-parse", branch], check=True, capture_output=True, text=True
        ).stdout.strip()
        revisions[name] = f"{branch} {revision}"
        print(f"{target}: {branch} {revision}")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target",
         str(folder / "site-packages"), *FORK_PACKAGES],
        check=True,
    )  # fmt: skip
    (folder / "revisions.json").write_text(json.dumps(revisions, indent=2) + "\n")


@contextlib.contextmanager
def step_clock():
    """Collect a perf_counter stamp after every optimizer step of any optimizer."""
    from torch.optim.optimizer import register_optimizer_step_post_hook

    stamps: list[float] = []
    handle = register_optimizer_step_post_hook(
        lambda optimizer, args, kwargs: stamps.append(time.perf_counter())
    )
    try:
        yield stamps
    finally:
        handle.remove()


def iteration_seconds(stamps: list[float], steps: int, warmup: int, iterations: int) -> list:
    """Intervals between the last optimizer steps of consecutive iterations, after the warm-up."""
    if len(stamps) != steps * (warmup + iterations):
        expected = steps * (warmup + iterations)
        raise RuntimeError(f"{len(stamps)} optimizer steps, expected {expected}")
    ends = stamps[steps - 1 :: steps]
    # ends[k] closes iteration k + 1, so the interval after it is iteration k + 2.
    return [b - a for a, b in itertools.pairwise(ends)][warmup - 1 :]


class NoFlops:
    """Stands in for fvcore's FlopCountAnalysis: v2 counts FLOPs once per model, for its logs."""

    def __init__(self, *args):
        pass

    def unsupported_ops_warnings(self, enabled: bool) -> None:
        pass

    def total(self) -> float:
        return math.nan


def stub_absent_modules() -> None:
    """Empty stand-ins for packages the forks import but the timed code never uses."""
    import importlib.util
    import types

    if importlib.util.find_spec("fvcore") is None:
        counter = types.ModuleType("fvcore.nn")
        counter.FlopCountAnalysis = NoFlops
        counter.flop_count_table = lambda flops: "(FLOPs not counted: fvcore is stubbed)"
        sys.modules["fvcore"], sys.modules["fvcore.nn"] = types.ModuleType("fvcore"), counter
    if importlib.util.find_spec("skimage") is None:
        # NIF imports it at the top of training.py and infer.py; only its PNG writes call it.
        images = types.ModuleType("skimage")
        images.io = types.ModuleType("skimage.io")
        sys.modules["skimage"], sys.modules["skimage.io"] = images, images.io


def enter_fork(paper_code: Path, codec: str) -> None:
    """Make the fork importable as its scripts see it: its code first on sys.path, cwd its root."""
    root = paper_code / codec
    sys.path[:0] = [str(root / "src" if codec.startswith("coolchic") else root)]
    sys.path.insert(1, str(paper_code / "site-packages"))
    os.chdir(root)
    stub_absent_modules()


def load_tensor_image(path: str):
    from PIL import Image
    from torchvision.transforms.functional import to_tensor

    return to_tensor(Image.open(path)).unsqueeze(0)


def paper_coolchic_v1(image: str, warmup: int, iterations: int, decode: bool) -> dict:
    """Run in the fork's folder: the imports below are its modules (see enter_fork)."""
    import encode  # the fork's src/encode.py: set_reproducibility reads CC_SEED
    import torch
    from bitstream.decode import decode as decode_bitstream
    from model_management.trainer import train
    from models.cool_chic import CoolChicEncoder, to_device

    from losses import build_loss

    encode.set_reproducibility()
    # encode.py's TorchScript settings (its comment reports +25 % speed)
    torch._C._jit_set_profiling_executor(False)
    torch._C._jit_set_texpr_fuser_enabled(False)
    torch._C._jit_set_profiling_mode(False)
    if decode:
        path = "results/kodak/bitstreams/kodim01-lambda004.bin"
        return {"decode_seconds": median_seconds(lambda: decode_bitstream(path, device="cpu"))}
    img = load_tensor_image(image)
    model = to_device(
        CoolChicEncoder(
            img.size()[-2:],
            layers_synthesis=[12, 12],
            layers_arm=[12, 12],
            n_ctx_rowcol=2,
            latent_n_grids=7,
        ),
        "cpu",
    )
    with step_clock() as stamps:
        train(
            model,
            img,
            lmbda=LAMBDA["coolchic-v1"],
            start_lr=1e-2,
            dist_fn=build_loss("mse:1.0"),
            n_itr=warmup + iterations,
        )
    return {"seconds": iteration_seconds(stamps, 1, warmup, iterations)}


def paper_coolchic_v2(image: str, warmup: int, iterations: int, decode: bool) -> dict:
    """Run in the fork's folder: the imports below are its modules (see enter_fork)."""
    import dataclasses

    import encode  # the fork's src/encode.py: set_reproducibility reads CC_SEED
    import torch
    from bitstream.decode import decode as decode_bitstream
    from model_management.presets import AVAILABLE_PRESET
    from model_management.trainer import one_training_phase
    from models.cool_chic import CoolChicEncoder, CoolChicParameter, to_device

    torch._C._jit_set_profiling_executor(False)
    torch._C._jit_set_texpr_fuser_enabled(False)
    torch._C._jit_set_profiling_mode(False)
    torch.set_flush_denormal(True)  # encode.py and decode.py do this on CPU
    if decode:
        path = "results/kodak/bitstreams/kodim01-lmbda-0001.bin"
        with tempfile.TemporaryDirectory() as scratch:
            output = f"{scratch}/decoded.png"
            return {"decode_seconds": median_seconds(lambda: decode_bitstream(path, output, "cpu"))}
    img = load_tensor_image(image)
    encode.set_reproducibility()
    parameters = CoolChicParameter(
        lmbda=LAMBDA["coolchic-v2"],
        dist="mse:1.0",
        img=img,
        img_type="rgb444",
        layers_synthesis=V2_SYNTHESIS,
        layers_arm=[24, 24],
        n_ctx_rowcol=3,
        latent_n_grids=7,
        upsampling_kernel_size=8,
        ste_derivative=0.01,
    )
    preset = AVAILABLE_PRESET["faster"](start_lr=1e-2, dist="mse:1.0")
    phase = dataclasses.replace(preset.all_phases[0], max_itr=warmup + iterations)
    model = to_device(CoolChicEncoder(parameters), "cpu")
    with step_clock() as stamps:
        one_training_phase(model, phase)
    return {"seconds": iteration_seconds(stamps, 1, warmup, iterations)}


def paper_nif(image: str, warmup: int, iterations: int, decode: bool) -> dict:
    """Run in the fork's folder: the imports below are its modules (see enter_fork)."""
    import torch
    from compress import compress_state_dict
    from decompress import decompress_state_dict
    from infer import infer
    from input_encoding import generate_grid
    from models.nif import NIF
    from phases.fitting import batch_grid, batch_image
    from phases.qat import generate_quantization_config, simulate_quantization
    from phases.training import TrainingContext, train_model
    from PIL import Image
    from serialization import deserialize_state_dict, serialize_state_dict
    from torchvision.transforms import Compose, Normalize, Resize, ToTensor
    from utils import load_configuration, pad_for_patching

    # fit.py's process settings (its 4 threads are replaced by --threads)
    torch.random.manual_seed(1337)
    torch.autograd.set_detect_anomaly(False)
    device = torch.device("cpu")
    config = load_configuration(NIF_CONFIG)
    # fit.py's image loading and model construction
    picture = Image.open(image)
    height, width = picture.size[1], picture.size[0]
    transform = Compose(
        [Resize((height, width)), ToTensor(), Normalize(torch.Tensor([0.5]), torch.Tensor([0.5]))]
    )
    image_tensor = transform(picture).to(device)
    grid = generate_grid(config, width, height, device)
    params = config["model"]
    params["input_features"] = grid.size(-1)
    model = NIF(**params, device=device, writer=None).to(device)
    model.initialize_weights()
    if decode:
        _, quantization = simulate_quantization(
            model, generate_quantization_config(model, config["quantization"])
        )
        state = {
            **model.state_dict(),
            "quantization_config": quantization,
            "__meta": {"width": width, "height": height},
        }
        with tempfile.TemporaryDirectory() as scratch:
            path = f"{scratch}/compressed.bin"
            serialize_state_dict(compress_state_dict(state), path)

            def decode_file():
                # decode.py without its scikit-image PNG write
                infer(NIF_CONFIG, decompress_state_dict(deserialize_state_dict(path), device))

            return {"decode_seconds": median_seconds(decode_file)}
    # fit_with_config's set-up, then one call of its per-step loop
    patching = config["fitting"]["tuning"]["patching"]
    context = TrainingContext()
    context.grid_patches = batch_grid(grid, patching).unbind(0)
    context.image_patches = batch_image(image_tensor, patching).unbind(0)
    context.padded_image = pad_for_patching(image_tensor, patching)
    tuning = {**config["fitting"]["tuning"], "iterations": warmup + iterations}
    with step_clock() as stamps:
        train_model(context, model, tuning, verbose=True, writer=None, overwrite_state=True)
    return {"seconds": iteration_seconds(stamps, 4, warmup, iterations)}


def ours(codec: str, image: str, warmup: int, iterations: int, decode: bool, seed: int) -> dict:
    from dataclasses import replace

    import numpy as np
    import torch
    from timing import median_decode_seconds

    from inr_models import create_codec
    from study.data.imageio import load_rgb

    torch.manual_seed(seed)
    pixels = load_rgb(image)
    if decode:
        options = (
            {"configuration": NIF_WIDTHS}
            if codec == "nif"
            else {"loss": "mse", "lmbda": LAMBDA[codec]}
        )
        data = create_codec(codec, preset="debug", device="cpu", **options).encode(pixels).data
        return {"decode_seconds": median_decode_seconds(codec, data)}
    if codec == "nif":
        from inr_models.nif.model import Nif, coordinate_grid
        from inr_models.nif.presets import PAPER, get_widths
        from inr_models.nif.training import NifFitter
        from losses import NIF, build_loss

        target = torch.from_numpy(pixels.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
        model = Nif(get_widths(NIF_WIDTHS)).train()
        fitter = NifFitter(
            model,
            PAPER,
            coordinate_grid(*pixels.shape[:2]),
            target,
            build_loss("lc_ssim", NIF).per_sub_image(),
            torch.Generator().manual_seed(seed),
        )
        stage = replace(PAPER.fitting, steps=1, iterations=warmup + iterations)
        with step_clock() as stamps:
            fitter.run_stage(stage, quantized=False, name="timed")
        return {"seconds": iteration_seconds(stamps, 4, warmup, iterations)}
    from inr_models.coolchic.model import CoolChic
    from inr_models.coolchic.presets import ARCHITECTURES, PRESETS
    from inr_models.coolchic.training import Fitter
    from losses import COOLCHIC, build_loss

    version = int(codec[-1])
    preset = PRESETS[version]["paper"]
    target = torch.from_numpy(pixels / 255.0).float().permute(2, 0, 1)[None]
    loss = build_loss("mse", COOLCHIC)
    fitter = Fitter(ARCHITECTURES[version], preset, target, loss, LAMBDA[codec])
    model = CoolChic(ARCHITECTURES[version], *pixels.shape[:2])
    phase = replace(preset.phases[0], iterations=warmup + iterations)
    with step_clock() as stamps:
        fitter.train_phase(model, phase, "timed")
    return {"seconds": iteration_seconds(stamps, 1, warmup, iterations)}


PAPER_RUNS = {"coolchic-v1": paper_coolchic_v1, "coolchic-v2": paper_coolchic_v2, "nif": paper_nif}


def worker(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(args.threads)
    side, codec = args.worker.split(":")
    # The forks print progress: keep stdout for the result line.
    with contextlib.redirect_stdout(sys.stderr):
        if side == "ours":
            result = ours(codec, args.image, args.warmup, args.iterations, args.decode, args.seed)
        else:
            enter_fork(args.paper_code, codec)
            run = PAPER_RUNS[codec]
            result = run(args.image, args.warmup, args.iterations, args.decode)
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return result


def run_worker(args: argparse.Namespace, side: str, codec: str, decode: bool) -> dict:
    command = [
        sys.executable, str(Path(__file__).resolve()), "--worker", f"{side}:{codec}",
        "--paper-code", str(args.paper_code), "--image", str(args.image),
        "--threads", str(args.threads), "--warmup", str(args.warmup),
        "--iterations", str(args.iterations), "--seed", str(args.seed),
        *(["--decode"] if decode else []),
    ]  # fmt: skip
    # CPU only (the NIF fork picks CUDA when it sees it); the COOL-CHIC forks read CC_SEED.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "CC_SEED": str(args.seed)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"{side} {codec} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prepare", type=Path, metavar="DIR", help="extract and patch the forks")
    parser.add_argument(
        "--mirrors",
        nargs=2,
        metavar=("COOLCHIC_GIT", "NIF_GIT"),
        help="bare mirrors (git clone --mirror) of INRAnalysis-ICIP24/cool-chic and /nif",
    )
    parser.add_argument("--paper-code", type=Path, metavar="DIR", help="a --prepare'd folder")
    add_image_arguments(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3, help="untimed iterations per process")
    parser.add_argument("--iterations", type=int, default=10, help="timed iterations per process")
    parser.add_argument("--rounds", type=int, default=3, help="processes per side and codec")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--decode", action="store_true", help="also time decoding")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, metavar="OUT")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.prepare:
        if args.mirrors is None:
            parser.error("--prepare needs --mirrors COOLCHIC_GIT NIF_GIT: the paper's two forks")
        prepare(args.prepare.resolve(), args.mirrors)
        return 0
    if args.paper_code is None:
        parser.error("--paper-code DIR is required (make one with --prepare DIR)")
    if args.warmup < 1:
        parser.error("--warmup must be at least 1: the first iteration has no interval before it")
    args.paper_code = args.paper_code.resolve()
    args.image = image_path(args).resolve()
    if args.worker:
        print(json.dumps(worker(args)))
        return 0

    import torch

    codecs = args.codecs.split(",")
    times = {(side, c): [] for side in SIDES for c in codecs}
    round_medians = {key: [] for key in times}
    rss = {key: 0.0 for key in times}
    for round_index in range(args.rounds):
        order = SIDES if round_index % 2 == 0 else SIDES[::-1]
        for codec, side in itertools.product(codecs, order):
            result = run_worker(args, side, codec, decode=False)
            times[side, codec] += result["seconds"]
            round_medians[side, codec].append(statistics.median(result["seconds"]))
            rss[side, codec] = max(rss[side, codec], result["peak_rss_gb"])
            print(f"round {round_index + 1}/{args.rounds} {side:>5} {codec:<12} "
                  f"{round_medians[side, codec][-1]:.3f} s/it", file=sys.stderr)  # fmt: skip
    decode = {
        (side, c): run_worker(args, side, c, decode=True)["decode_seconds"]
        for c in codecs
        for side in (SIDES if args.decode else ())
    }

    print(f"\n{args.image.name}, CPU, {args.threads} threads, torch {torch.__version__}, "
          f"{args.rounds} rounds x {args.iterations} timed iterations per side "
          f"(after {args.warmup} warm-up)")  # fmt: skip
    header = f"{'codec':<12} {'paper s/it':>10} {'ours s/it':>10} {'ours/paper':>10}"
    print(header + (f" {'paper dec s':>11} {'ours dec s':>10}" if args.decode else ""))
    results = {}
    for codec in codecs:
        sides = {
            side: {
                "seconds_per_iteration": statistics.median(times[side, codec]),
                "round_medians": round_medians[side, codec],
                "peak_rss_gb": rss[side, codec],
                **({"decode_seconds": decode[side, codec]} if args.decode else {}),
            }
            for side in SIDES
        }
        paper, our = (sides[side]["seconds_per_iteration"] for side in SIDES)
        results[codec] = {**sides, "ratio_ours_over_paper": our / paper}
        line = f"{codec:<12} {paper:>10.3f} {our:>10.3f} {our / paper:>10.2f}"
        if args.decode:
            line += f" {decode['paper', codec]:>11.2f} {decode['ours', codec]:>10.2f}"
        print(line)
    if args.json:
        revisions = args.paper_code / "revisions.json"
        summary = {
            "image": args.image.name,
            "threads": args.threads,
            "torch": torch.__version__,
            "warmup": args.warmup,
            "iterations": args.iterations,
            "rounds": args.rounds,
            "paper_code": json.loads(revisions.read_text()) if revisions.exists() else None,
            "results": results,
        }
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

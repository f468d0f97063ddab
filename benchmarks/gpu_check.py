"""The GPU check: one prepared run for a lent GPU machine, in one call, leaving files behind.

    python benchmarks/gpu_check.py --kodak DIR --out DIR [--minutes 8] [--rehearse]

It needs no Ray and no MLflow (too big to carry): trials go through the plain trial function,
``study.engine.trial.run_trial``. Steps, in this order, each written as JSON to --out as soon as it
is done; the last step runs paper-preset trials until the time budget is spent:

1. ``environment.json``: torch and CUDA versions, the device, its memory, which pretrained
   networks (LPIPS, VGG-16) load there.
2. ``correctness.json``: COOL-CHIC v1 and v2, C3 and NIF encoded on the device (debug preset, a
   crop); each file decoded on the CPU, where the decoders run by design (exact integer
   arithmetic, the same bits on any machine). v1/v2/C3 must equal the encoder's reconstruction
   bit for bit; NIF's largest difference (8-bit levels) is reported.
3. ``speed.json``: seconds per training iteration of each codec's main phase at full Kodak size
   (``benchmarks/coolchic_speed.py`` and ``nif_speed.py``'s measurements).
4. ``packing.json``: 1, 4, 8 and 16 trials at once on the one device, each its own process: wall
   time, trials per hour, the device memory each trial peaked at, and whether every packed trial
   (all the same seeded trial) wrote the file the trial alone writes.
   ``batching.json``: per COOL-CHIC-structured codec at full Kodak size, B = 1, 4, 8, 16 fits
   trained as one batch (``encode_together``'s lockstep, the main phase's step), and K processes
   of B fits each: seconds per iteration per fit, the paper preset's trials per hour, device
   memory per fit; the best (K, B) per codec and the paper design's GPU-hours from it.
5. ``trials/``: full-size paper-preset trials — COOL-CHIC v1 MSE and LogCosh+SSIM at λ 4e-3 on
   kodim01, kodim08, kodim24, then NIF 0_31, then COOL-CHIC v2 MSE on kodim01 — each file and
   summary (LPIPS in it where the AlexNet weights were carried; ``trials.json`` lists them), for
   decoding back home (``inr-study decode``) to check the bpp and PSNR claimed.

``--rehearse`` runs every step small on whatever device there is (the CPU here: 64-px crops,
debug presets, 1 and 2 trials at once), to prove the script before spending device time.
"""

import argparse
import hashlib
import json
import multiprocessing
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from inr_models import create_codec
from losses import networks
from study.data.datasets import crop
from study.data.imageio import load_rgb, save_png
from study.engine.trial import TrialSpec, run_trial

HERE = Path(__file__).parent
PAPER_TRIALS = [
    *(("coolchic-v1", loss, 4e-3, image)
      for loss in ("mse", "lc_ssim(0.01)") for image in ("kodim01", "kodim08", "kodim24")),
    *(("nif", "lc_ssim(0.01)", "0_31", image) for image in ("kodim01", "kodim08", "kodim24")),
    ("coolchic-v2", "mse", 4e-3, "kodim01"),
]  # fmt: skip
INR_CODECS = {"coolchic-v1": 4e-3, "coolchic-v2": 4e-3, "nif": "0_31", "c3": 4e-3}


class Budget:
    def __init__(self, minutes: float):
        self.deadline = time.monotonic() + 60 * minutes

    def left(self) -> float:
        return self.deadline - time.monotonic()


def step(out: Path, name: str, work) -> None:
    """Run one step and write what it gives, or its traceback: one failing step must not cost
    the others their device time."""
    try:
        content = work()
    except Exception:
        content = {"error": traceback.format_exc()}
    (out / name).write_text(json.dumps(content, indent=2, default=float) + "\n")
    print(f"wrote {name}" + (" (error)" if "error" in content else ""), flush=True)


def environment(device: str) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
    }
    if device == "cuda":
        properties = torch.cuda.get_device_properties(0)
        info.update(name=properties.name, memory_gib=properties.total_memory / 2**30)
    # The carried weights (benchmarks/README.md): null where a network loads, else why not.
    info["pretrained_unavailable"] = {
        "lpips_alex": networks.lpips_unavailable("alex"),
        "lpips_vgg": networks.lpips_unavailable("vgg"),
        "vgg16_relu4_3": networks.vgg16_unavailable(),
    }
    return info


def correctness(image: np.ndarray, device: str) -> list[dict]:
    results = []
    for name, rate in INR_CODECS.items():
        spec = TrialSpec(name, "check", rate, "debug", "mse", seed=0)
        encoder = create_codec(name, **spec.codec_settings(device))
        encoded = encoder.encode(image)
        row = {"codec": name, "encoded_on": device, "bytes": len(encoded.data)}
        decoded = create_codec(name).decode(encoded.data)  # decoders run on the CPU
        difference = np.abs(decoded.astype(int) - encoded.reconstruction.astype(int))
        row["decoded_on_cpu_identical"] = bool(not difference.any())
        row["decoded_on_cpu_max_difference"] = int(difference.max())
        results.append(row)
    return results


def speed(image_path: Path, device: str, iterations: int) -> list[dict]:
    sys.path.insert(0, str(HERE))
    import coolchic_speed
    import nif_speed

    rows = [
        coolchic_speed.measure(name, str(image_path), 2, iterations, device)
        for name in ("coolchic-v1", "coolchic-v2")
    ]
    return [*rows, nif_speed.measure("0_31", str(image_path), 2, iterations, device)]


class Workers:
    """One set of worker processes for the packing and batching steps. Spawning a process that
    imports torch and opens CUDA costs seconds of device time; each row used to spawn its own.
    Every row's jobs start together, one per worker: a barrier holds each job until all have
    begun, so an idle worker can never take a second job while the row runs."""

    def __init__(self, count: int, device: str):
        context = multiprocessing.get_context("spawn")  # CUDA needs fresh processes
        self._manager = context.Manager()
        self._pool = context.Pool(count, initializer=_open_device, initargs=(device,))
        self.count = count

    def together(self, function, jobs: list) -> list:
        if len(jobs) > self.count:
            raise ValueError(f"{len(jobs)} jobs at once need {len(jobs)} workers, not {self.count}")
        barrier = self._manager.Barrier(len(jobs))
        return self._pool.map(_after_barrier, [(barrier, function, job) for job in jobs], 1)

    def close(self) -> None:
        self._pool.terminate()
        self._manager.shutdown()


_WORKER_ERROR: str | None = None
BARRIER_SECONDS = 300  # every worker is idle when a row starts: only a dead one makes it wait


def _open_device(device: str) -> None:
    """A worker's start. A failure here is kept and raised by its first job: raised here, the
    pool would respawn the worker forever and the step would never end."""
    global _WORKER_ERROR
    torch.set_num_threads(1)
    try:
        if device == "cuda":  # the context's one-off cost paid before any row is timed
            torch.zeros(1, device=device)
    except Exception:
        _WORKER_ERROR = traceback.format_exc()


def _after_barrier(args):
    barrier, function, job = args
    barrier.wait(BARRIER_SECONDS)
    if _WORKER_ERROR is not None:
        raise RuntimeError(f"this worker could not open the device:\n{_WORKER_ERROR}")
    try:
        return function(job)
    finally:
        # Memory cached by this row would otherwise stay held while later rows run.
        torch.cuda.empty_cache()


def _packed_trial(args) -> dict:
    image, device = args
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    # Every packed trial is the same seeded trial: sharing the device must not change its file.
    spec = TrialSpec("coolchic-v1", "packed", 4e-3, "debug", "mse", seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        outcome = run_trial(spec, image, Path(scratch), device=device, with_optional_metrics=False)
        data = outcome.files["bitstream"].read_bytes()
    return {
        "seconds": outcome.metrics["trial_seconds"],
        "memory_mb": outcome.metrics["peak_memory_mb"],
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def packing(workers: Workers, image: np.ndarray, device: str, levels: list[int]) -> dict:
    # One untimed trial on every worker first: lazy imports and first kernel launches would
    # otherwise count against the first row only.
    workers.together(_packed_trial, [(image, device)] * workers.count)
    rows = []
    for count in levels:
        start = time.perf_counter()
        trials = workers.together(_packed_trial, [(image, device)] * count)
        wall = time.perf_counter() - start
        rows.append(
            {
                "concurrent": count,
                "wall_s": wall,
                "trials_per_hour": 3600 * count / wall,
                "mean_trial_s": float(np.mean([t["seconds"] for t in trials])),
                "memory_mb_per_trial": max(t["memory_mb"] for t in trials),
                "files": sorted({t["sha256"] for t in trials}),
            }
        )
    files = {f for row in rows for f in row["files"]}
    return {"levels": rows, "packed_files_equal_the_single_trial": len(files) == 1}


# The paper's design at full size (issue 27): trials per codec, and the preset they run.
PAPER_DESIGN = {"coolchic-v1": 480, "coolchic-v2": 480, "nif": 360}
BATCHED_CODECS = ("coolchic-v1", "coolchic-v2", "c3")


def _batched_step_seconds(args) -> dict:
    """Seconds per lockstep round of ``batch`` fits of ``codec`` on ``image`` (see
    ``batched_fits.lockstep``), and the device memory they peaked at."""
    sys.path.insert(0, str(HERE))
    import batched_fits

    codec, image, batch, iterations, device = args
    target = torch.from_numpy(image / 255.0).float().permute(2, 0, 1)[None].to(device)
    ticks: list[float] = []

    def tick() -> None:
        if device == "cuda":  # kernels are queued there: time them finished
            torch.cuda.synchronize()
        ticks.append(time.perf_counter())

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    batched_fits.lockstep(codec, target, batch, iterations + 3, tick)
    memory = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    # After the first rounds, which pay one-off costs (allocations, first launches).
    return {"seconds_per_round": float(np.median(np.diff(ticks[2:]))), "memory_mb": memory}


def batching(
    workers: Workers, image: np.ndarray, device: str, batches: list[int], combos, iterations: int
) -> dict:
    """Per codec: one process of B batched fits for each B, then K processes of B fits each."""
    from inr_models import get_codec_class

    rows = []
    for codec in BATCHED_CODECS:
        total = get_codec_class(codec).get_preset("paper").total_iterations
        for processes, batch in [(1, b) for b in batches] + list(combos):
            start = time.perf_counter()
            jobs = [(codec, image, batch, iterations, device)] * processes
            runs = workers.together(_batched_step_seconds, jobs)
            per_fit = max(r["seconds_per_round"] for r in runs) / (batch * processes)
            memory = [r["memory_mb"] for r in runs if r["memory_mb"] is not None]
            rows.append({
                "codec": codec, "processes": processes, "batch": batch,
                "seconds_per_iteration_per_fit": per_fit,
                "paper_trials_per_hour": 3600 / (per_fit * total),
                "memory_mb_per_fit": max(memory) / batch if memory else None,
                "wall_s": time.perf_counter() - start,
            })  # fmt: skip
    best = {}
    for row in rows:
        if (
            row["codec"] not in best
            or row["paper_trials_per_hour"] > best[row["codec"]]["paper_trials_per_hour"]
        ):
            best[row["codec"]] = row
    hours = {codec: count / best[codec]["paper_trials_per_hour"]
             for codec, count in PAPER_DESIGN.items() if codec in best}  # fmt: skip
    return {
        "rows": rows,
        "best": best,
        "paper_design_gpu_hours": hours,
        "note": "NIF is not batched (its trials pack as processes: packing.json); its hours "
        "need the speed step's figure",
    }


def paper_trials(kodak: Path, out: Path, device: str, budget: Budget, rehearse: bool) -> list:
    folder = out / "trials"
    folder.mkdir(exist_ok=True)
    done = []
    for codec, loss, rate, name in PAPER_TRIALS:
        if budget.left() < 60 and done:
            break
        image = load_rgb(kodak / f"{name}.png")
        preset = "debug" if rehearse else "paper"
        image = crop(image, 64) if rehearse else image
        spec = TrialSpec(codec, name, rate, preset, loss, seed=0)
        stem = f"{codec}_{name}_{loss.split('(')[0]}"
        outcome = run_trial(
            spec,
            image,
            Path(tempfile.mkdtemp()),
            bitstream=folder / f"{stem}.inr",
            device=device,  # LPIPS recorded where its AlexNet weights were carried
        )
        summary = outcome.summary() | {"file": f"{stem}.inr"}
        (folder / f"{stem}.json").write_text(json.dumps(summary, indent=2) + "\n")
        done.append(summary)
        print(f"{stem}: {summary['bpp']:.4f} bpp, {summary['psnr']:.2f} dB", flush=True)
    return done


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kodak", type=Path, required=True, help="folder of kodimNN.png")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    parser.add_argument("--minutes", type=float, default=8.0, help="time budget (default 8)")
    parser.add_argument("--rehearse", action="store_true", help="everything small, any device")
    args = parser.parse_args(argv)
    budget = Budget(args.minutes)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    args.out.mkdir(parents=True, exist_ok=True)
    step(args.out, "environment.json", lambda: environment(device))

    full = load_rgb(args.kodak / "kodim01.png")
    small = crop(full, 64 if args.rehearse else 256)
    step(args.out, "correctness.json", lambda: correctness(small, device))

    with tempfile.TemporaryDirectory() as scratch:
        speed_image = Path(scratch) / "speed.png"
        save_png(speed_image, crop(full, 96) if args.rehearse else full)
        iterations = 2 if args.rehearse else 20
        step(args.out, "speed.json", lambda: speed(speed_image, device, iterations))

    levels = [1, 2] if args.rehearse else [1, 4, 8, 16]
    batch_image = crop(full, 64) if args.rehearse else full
    batches = [1, 2] if args.rehearse else [1, 4, 8, 16]
    combos = [(2, 2)] if args.rehearse else [(4, 4), (8, 4), (4, 8)]
    workers = Workers(max(levels + [k for k, _ in combos]), device)
    try:
        step(args.out, "packing.json", lambda: packing(workers, small, device, levels))
        step(
            args.out,
            "batching.json",
            lambda: batching(workers, batch_image, device, batches, combos, iterations),
        )
    finally:
        workers.close()
    step(
        args.out,
        "trials.json",
        lambda: paper_trials(args.kodak, args.out, device, budget, args.rehearse),
    )
    print(f"done, {budget.left():.0f} s of the budget left")
    return 0


if __name__ == "__main__":
    sys.exit(main())

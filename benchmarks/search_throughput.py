"""Search throughput: one 4-image search sample, its fits one after another versus side by side.

    python benchmarks/search_throughput.py [--crop 256] [--preset debug]

One pareto-mode task of COOL-CHIC v1 on 4 Kodak crops, two samples one after the other (α and λ
drawn by the seed), run by the study engine on local Ray with 2 CPUs: a sample's 4 fits are
separate Ray tasks of 1 CPU each, so two run at a time. The second sample is timed, from its
first fit's start to its last fit's end (MLflow run times): by then Ray's workers have imported
the codecs, as they have for all but the first samples of a real search. The serial reference fits
the same 4 trials one after another in this process (one torch thread, after a warm-up fit).
"""

import argparse
import tempfile
import time
from pathlib import Path

import torch

from study.config import parse_config
from study.engine.plan import load_images
from study.engine.runner import Study
from study.engine.tracking import RunStore
from study.engine.trial import TrialSpec, run_trial


def config(folder: str, crop: int, preset: str):
    return parse_config(
        {
            "name": "throughput",
            "storage": folder,
            "images": {"dataset": "kodak", "subset": 4, "crop": crop},
            "codecs": [{"name": "coolchic-v1", "preset": preset}],
            "losses": ["lc_ssim"],
            "search": {"mode": "pareto", "trials": 2, "concurrent_samples": 1, "metric": "psnr"},
            "optional_metrics": False,
        }
    )


def engine(crop: int, preset: str) -> tuple[float, list[dict]]:
    """The second sample's span with 2 concurrent fits, and its trials (as records)."""
    with tempfile.TemporaryDirectory(prefix="inr-study-bench-") as folder:
        result = Study(config(folder, crop, preset)).run(local_cpus=2)
        store = RunStore(result.tracking_uri, result.experiment)
        runs = sorted(store.finished_runs(), key=lambda r: r.info.start_time)[4:]
        keys = {r.data.tags["inr_study.trial_key"] for r in runs}
        records = [r for r in store.records() if r["trial_key"] in keys]
    span = (max(r.info.end_time for r in runs) - min(r.info.start_time for r in runs)) / 1000
    return span, records


def serial(crop: int, preset: str, records: list[dict]) -> float:
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="inr-study-bench-") as folder:
        images = load_images(config(folder, crop, preset))
        specs = [
            TrialSpec(
                codec=r["codec"],
                image=r["image"],
                rate=r["rate"],
                preset=r["preset"],
                loss=r["loss"],
                seed=r["seed"],
            )
            for r in records
        ]
        run_trial(
            specs[0], images[specs[0].image], Path(folder), with_optional_metrics=False
        )  # warm-up
        start = time.perf_counter()
        for spec in specs:
            run_trial(
                spec, images[spec.image], Path(folder) / spec.image, with_optional_metrics=False
            )
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crop", type=int, default=256)
    parser.add_argument("--preset", default="debug")
    args = parser.parse_args()
    parallel, records = engine(args.crop, args.preset)
    one_by_one = serial(args.crop, args.preset, records)
    print(f"\nCOOL-CHIC v1 {args.preset}, 4 × {args.crop}-px crops, one search sample:")
    print(f"  fits one after another, in one process: {one_by_one:6.1f} s")
    print(f"  study engine, 2 concurrent fits:        {parallel:6.1f} s")
    print(f"  ratio: {parallel / one_by_one:.2f}")


if __name__ == "__main__":
    main()

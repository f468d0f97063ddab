"""Search throughput: wall time of one 4-image search sample with 1 and with 2 concurrent fits.

    python benchmarks/search_throughput.py [--crop 128] [--preset debug]

One pareto-mode task of COOL-CHIC v1 (one sample: α and λ fixed by the seed), on 4 Kodak crops:
the sample's 4 fits are separate Ray tasks, so with 2 CPUs for local Ray they run two at a time,
with 1 CPU one after another. Each run is a fresh study folder (fresh Ray, fresh stores); "sample"
is from the first fit's start to the last fit's end (MLflow run times), "study" includes Ray's
start and the bookkeeping.
"""

import argparse
import tempfile
import time

from study.config import parse_config
from study.engine.runner import Study
from study.engine.tracking import RunStore


def measure(crop: int, preset: str, cpus: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="inr-study-bench-") as folder:
        config = parse_config(
            {
                "name": "throughput",
                "storage": folder,
                "images": {"dataset": "kodak", "subset": 4, "crop": crop},
                "codecs": [{"name": "coolchic-v1", "preset": preset}],
                "losses": ["lc_ssim"],
                "search": {"mode": "pareto", "trials": 1, "metric": "psnr"},
                "lpips": False,
            }
        )
        start = time.perf_counter()
        result = Study(config).run(local_cpus=cpus)
        total = time.perf_counter() - start
        runs = RunStore(result.tracking_uri, result.experiment).finished_runs()
    fits = [r.data.metrics["trial_seconds"] for r in runs]
    span = (max(r.info.end_time for r in runs) - min(r.info.start_time for r in runs)) / 1000
    return {
        "cpus": cpus,
        "total_s": total,
        "sample_s": span,
        "fits": len(fits),
        "fit_s": sum(fits) / len(fits),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--preset", default="debug")
    args = parser.parse_args()
    rows = [measure(args.crop, args.preset, cpus) for cpus in (1, 2)]
    print(f"\nCOOL-CHIC v1 {args.preset}, 4 × {args.crop}-px crops, one search sample:")
    print("local CPUs  fits  mean fit (s)  sample (s)  study (s)")
    for r in rows:
        print(
            f"{r['cpus']:>10}  {r['fits']:>4}  {r['fit_s']:>12.2f}  {r['sample_s']:>10.1f}  "
            f"{r['total_s']:>9.1f}"
        )
    ratio = rows[1]["sample_s"] / rows[0]["sample_s"]
    print(f"the sample with 2 concurrent fits takes {ratio:.2f}× its serial time")


if __name__ == "__main__":
    main()

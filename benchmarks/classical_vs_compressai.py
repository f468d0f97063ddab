"""Mean PSNR of our JPEG and WebP at 0.5 and 1.0 bpp on Kodak vs CompressAI's published curves.

Runs a dense quality sweep (5..95 step 5) on all 24 images, averages per quality (mean of per-image
bpp and PSNR, CompressAI's convention), interpolates PSNR at each rate linearly in log(bpp), and
does the same on CompressAI's jpeg.json / webp.json. Prints a table; asserts nothing.

    python benchmarks/classical_vs_compressai.py --kodak-mirror ../shared/kodak \
        --reference ../shared/reference/InterDigitalInc_CompressAI/results/image/kodak
"""

import argparse
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from study.data.datasets import ImageOptions, kodak
from study.engine.baselines import BaselineJob, run_baselines
from study.results.rd import interpolate_at_bpp

RATES = (0.5, 1.0)
QUALITIES = tuple(range(5, 100, 5))


def our_curve(codec: str, mirror: str | None, workers: int) -> tuple[list[float], list[float]]:
    jobs = [
        BaselineJob(codec, record, QUALITIES, (), ImageOptions(), with_optional_metrics=False)
        for record in kodak(mirror=mirror)
    ]
    by_quality = defaultdict(list)
    for row in run_baselines(jobs, workers):
        by_quality[row["rate"]].append((row["bpp"], row["psnr"]))
    points = [np.mean(v, axis=0) for _, v in sorted(by_quality.items())]
    return [p[0] for p in points], [p[1] for p in points]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kodak-mirror")
    parser.add_argument("--reference", type=Path, required=True)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    print(f"{'codec':<6} {'bpp':>5} {'ours dB':>8} {'CompressAI dB':>14} {'diff':>6}")
    for codec in ("jpeg", "webp"):
        bpp, psnr = our_curve(codec, args.kodak_mirror, args.workers)
        reference = json.loads((args.reference / f"{codec}.json").read_text())["results"]
        for rate in RATES:
            ours = interpolate_at_bpp(bpp, psnr, rate)
            theirs = interpolate_at_bpp(reference["bpp"], reference["psnr-rgb"], rate)
            print(f"{codec:<6} {rate:>5.2f} {ours:>8.2f} {theirs:>14.2f} {ours - theirs:>+6.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Peak resident memory of one trial per INR codec on a full-size Kodak image (CPU).

Each codec runs in its own fresh process: the RSS right after ``import torch`` (the baseline),
after importing the project, and the peak over a whole trial (fit, network quantisation, file,
decode from disk, metrics) through the plain trial function. The debug preset is used: its
iterations are fewer than the paper preset's, not smaller, so it reaches the same peak.

    python benchmarks/trial_memory.py [--image FILE]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

from images import add_image_arguments, image_path

RATES = {"coolchic-v1": 4e-3, "coolchic-v2": 4e-3, "nif": "0_31", "c3": 4e-3}


def _gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def measure(codec: str, image_path: str, threads: int) -> dict:
    import torch

    after_torch = _gb()
    from study.data.imageio import load_rgb
    from study.engine.trial import TrialSpec, run_trial

    after_imports = _gb()
    torch.set_num_threads(threads)
    image = load_rgb(image_path)
    loss = "mse" if codec != "nif" else "lc_ssim(0.01)"
    spec = TrialSpec(codec, Path(image_path).stem, RATES[codec], "debug", loss, seed=0)
    with tempfile.TemporaryDirectory() as scratch:
        run_trial(spec, image, Path(scratch), with_optional_metrics=False)
    return {
        "codec": codec,
        "after_import_torch_gb": after_torch,
        "after_imports_gb": after_imports,
        "trial_peak_gb": _gb(),
        "above_torch_gb": _gb() - after_torch,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_image_arguments(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--codecs", default=",".join(RATES))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.image = str(image_path(args))
    if args.worker:
        print(json.dumps(measure(args.worker, args.image, args.threads)))
        return 0
    header = f"{'import torch':>12} {'imports':>8} {'trial peak':>10} {'above torch':>11}"
    print(f"{'codec':<12} {header}  (GB of RSS)")
    for codec in args.codecs.split(","):
        command = [sys.executable, __file__, "--worker", codec, "--image", args.image,
                   "--threads", str(args.threads)]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        print(f"{codec:<12} {r['after_import_torch_gb']:>12.2f} {r['after_imports_gb']:>8.2f} "
              f"{r['trial_peak_gb']:>10.2f} {r['above_torch_gb']:>11.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed and memory of COOL-CHIC v1 and v2 on a full-size Kodak image (CPU by default).

For each codec, in its own process (so peak RSS is its own): median seconds per training
iteration of the paper's main phase (noise quantiser, all parameters trained, after a few warm-up
steps) and the training's peak RSS, then short real encodes (debug preset) at λ 4e-3 and at the
high rate of λ 1e-4, and the median time to decode each file.
Prints a table; asserts nothing. Compare with reference-codecs.md §7 (the paper's own code on a
2-core CPU: v1 0.230 s/iteration, 1.59 GB; v2 0.953 s/iteration, 1.08 GB).

    python benchmarks/coolchic_speed.py --threads 2
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from images import add_image_arguments, image_path
from timing import median_decode_seconds

CODECS = ("coolchic-v1", "coolchic-v2")
DECODE_LAMBDAS = (4e-3, 1e-4)


def measure(codec_name: str, image_path: str, threads: int, iterations: int, device: str) -> dict:
    import torch

    from inr_models import create_codec
    from inr_models.coolchic.model import CoolChic
    from inr_models.coolchic.presets import ARCHITECTURES, PRESETS
    from inr_models.coolchic.training import Fitter
    from losses import COOLCHIC, build_loss
    from study.data.imageio import load_rgb

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    image = load_rgb(image_path)
    version = int(codec_name[-1])
    preset = PRESETS[version]["paper"]
    target = torch.from_numpy(image / 255.0).float().permute(2, 0, 1)[None].to(device)
    fitter = Fitter(ARCHITECTURES[version], preset, target, build_loss("mse", COOLCHIC), 4e-3)
    model = CoolChic(ARCHITECTURES[version], *image.shape[:2]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=preset.phases[0].learning_rate)
    times = []
    for step in range(iterations + 3):
        start = time.perf_counter()
        loss, _, _ = fitter.objective(model, "noise")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), preset.gradient_clip)
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if step >= 3:  # the first steps include allocator and kernel warm-up
            times.append(time.perf_counter() - start)
    peak_rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    decode_seconds = {}
    for lmbda in DECODE_LAMBDAS:  # a high rate too: decoding time must not grow with it
        codec = create_codec(codec_name, loss="mse", lmbda=lmbda, preset="debug", device=device)
        encoded = codec.encode(image)
        decode_seconds[lmbda] = {
            "bpp": encoded.bpp(*image.shape[:2]),
            "seconds": median_decode_seconds(codec_name, encoded.data, repeats=5),
        }
    return {
        "codec": codec_name,
        "seconds_per_iteration": statistics.median(times),
        "training_peak_rss_gb": peak_rss_gb,
        "decode": decode_seconds,
        "threads": threads,
        "device": device,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_image_arguments(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--codecs", default=",".join(CODECS))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.image = str(image_path(args))
    if args.worker:
        result = measure(args.worker, args.image, args.threads, args.iterations, args.device)
        print(json.dumps(result))
        return 0
    print(f"{'codec':<12} {'s/iteration':>11} {'training RSS GB':>15}  decode s at λ (bpp)  "
          f"({Path(args.image).name}, {args.device}, {args.threads} threads)")  # fmt: skip
    for name in args.codecs.split(","):
        command = [sys.executable, __file__, "--worker", name, "--image", args.image,
                   "--threads", str(args.threads), "--iterations", str(args.iterations),
                   "--device", args.device]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        r = json.loads(output.strip().splitlines()[-1])
        decodes = "  ".join(f"{d['seconds']:.3f} at {lmbda} ({d['bpp']:.2f})"
                            for lmbda, d in r["decode"].items())  # fmt: skip
        print(f"{name:<12} {r['seconds_per_iteration']:>11.3f} {r['training_peak_rss_gb']:>15.2f}  "
              f"{decodes}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

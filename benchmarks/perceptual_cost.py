"""What LPIPS and the perceptual training terms cost on this machine.

- LPIPS (AlexNet, the metric every trial records) and WD (Ballé et al.'s Wasserstein distortion,
  the opt-in metric): loading the network once per process, and one distance on a full-size Kodak
  image (768 × 512) and on a 256-px crop, median of --repeats.
- The training terms: one forward and backward of the loss of each perceptual family on a 256-px
  crop (the CPU studies' size), against MSE's; a fit runs about 2,000 of them (COOL-CHIC v1
  ``paper``), so a fit's extra cost is about 2,000 × (step − MSE's step).

    python benchmarks/perceptual_cost.py [--threads 1] [--repeats 5] [--images kodim01,kodim08]
"""

import argparse
import json
import time

import numpy as np
import torch
from timing import median_seconds

# Loss specs: each perceptual family, and Ballé et al.'s WD as a loss term beside MSE.
LOSSES = ("mse", "ms_ssim", "mse_lpips", "mse_wasserstein", "mse:1+wd:0.01")


def metric_cost(images: dict[str, np.ndarray], repeats: int, load, distance) -> dict:
    """``load()`` once (the network), then ``distance(original, decoded)`` per image and crop."""
    from study.data.datasets import crop

    start = time.perf_counter()
    load()
    loaded = time.perf_counter() - start
    rows = {}
    for name, image in images.items():
        decoded = np.clip(image.astype(int) + 3, 0, 255).astype(np.uint8)
        pairs = {"full_s": (image, decoded), "crop256_s": (crop(image, 256), crop(decoded, 256))}
        rows[name] = {
            size: median_seconds(lambda pair=pair: distance(*pair), repeats, warm=True)
            for size, pair in pairs.items()
        }
    return {"load_s": loaded, "per_image": rows}


def training_terms(image: np.ndarray, repeats: int) -> dict:
    from losses import build_loss
    from study.data.datasets import crop

    target = torch.from_numpy(crop(image, 256)).permute(2, 0, 1)[None].float() / 255
    output = (target + 0.02 * torch.randn_like(target)).clamp(0, 1)
    rows = {}
    for family in LOSSES:
        loss = build_loss(family)

        def step(loss=loss):
            x = output.clone().requires_grad_()
            loss(x, target).backward()

        rows[family] = median_seconds(step, repeats, warm=True)
    return {"step_s": rows, "fit_extra_minutes_at_2000_steps": {
        f: 2000 * (s - rows["mse"]) / 60 for f, s in rows.items()}}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--images", default="kodim01,kodim08")
    parser.add_argument("--kodak-mirror", help="local Kodak folder (or INR_STUDY_KODAK_MIRROR)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from losses import networks, wasserstein_balle
    from study.data.datasets import kodak
    from study.data.imageio import load_rgb
    from study.results.metrics import lpips_distance, wd_distance

    records = kodak(mirror=args.kodak_mirror, only=args.images.split(","), progress=False)
    images = {r.path.stem: load_rgb(r.path) for r in records}
    result = {
        "threads": args.threads,
        "torch": torch.__version__,
        "lpips_alex": metric_cost(
            images, args.repeats, lambda: networks.lpips_network("alex"), lpips_distance
        ),
        "wd": metric_cost(
            images,
            args.repeats,
            lambda: wasserstein_balle.average_pooled_vgg("cpu", torch.float32),
            wd_distance,
        ),
        "training_terms_256px": training_terms(next(iter(images.values())), args.repeats),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

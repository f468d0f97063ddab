"""Classical-codec baselines: quality sweeps and target-bpp encodes over a dataset.

Writes ``per_image.csv`` (one row per codec × image × setting) and, per codec, a CompressAI-format
JSON of dataset means (``<codec>.json`` for the sweep, ``<codec>-target-bpp.json`` for targets).
"""

import argparse
import csv
import logging
import os
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inr_models import get_codec_class
from inr_models.classical import PillowCodec
from study.cliargs import (
    add_dataset_arguments,
    comma_list,
    dataset_from_arguments,
    image_options_from_arguments,
)
from study.datasets import ImageOptions, ImageRecord, load_image
from study.metrics import aggregate, evaluate, lpips_available
from study.rd import compressai_document, write_json

log = logging.getLogger(__name__)

CLASSICAL_CODECS = ("jpeg", "webp", "avif", "jxl")
CSV_COLUMNS = (
    "codec", "image", "mode", "target_bpp", "quality", "bytes", "bpp",
    "psnr", "ssim", "ms_ssim", "ms_ssim_db", "lpips", "encode_s", "decode_s",
)  # fmt: skip
MEAN_KEYS = ("bpp", "psnr", "ssim", "ms_ssim", "ms_ssim_db", "lpips", "encode_s", "decode_s")


@dataclass(frozen=True)
class BaselineJob:
    codec: str
    record: ImageRecord
    qualities: tuple[int, ...]
    target_bpps: tuple[float, ...]
    image_options: ImageOptions
    with_lpips: bool


def _measure(codec: PillowCodec, image: np.ndarray, with_lpips: bool) -> dict:
    start = time.perf_counter()
    encoded = codec.encode(image)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(encoded.data)
    decode_s = time.perf_counter() - start
    height, width = image.shape[:2]
    return {
        "quality": codec.quality,
        "bytes": len(encoded.data),
        "bpp": encoded.bpp(height, width),
        **evaluate(image, decoded, with_lpips).as_dict(),
        "encode_s": encode_s,
        "decode_s": decode_s,
    }


def quality_for_target_bpp(
    codec_cls: type[PillowCodec], image: np.ndarray, target_bpp: float
) -> int | None:
    """Highest quality whose file is at or under ``target_bpp`` (bisection; None if unreachable).

    Assumes size grows with quality, which holds for these encoders up to rare one-step wobbles.
    """
    low, high = codec_cls.quality_range
    height, width = image.shape[:2]
    best = None
    while low <= high:
        quality = (low + high) // 2
        if codec_cls(quality).encode(image).bpp(height, width) <= target_bpp:
            best, low = quality, quality + 1
        else:
            high = quality - 1
    return best


def run_job(job: BaselineJob) -> list[dict]:
    """All encodes of one codec on one image; plain function so it runs in a worker process."""
    image = load_image(job.record, job.image_options)
    codec_cls = get_codec_class(job.codec)
    base = {"codec": job.codec, "image": job.record.name}
    rows = [
        {
            **base,
            "mode": "quality",
            "target_bpp": None,
            **_measure(codec_cls(q), image, job.with_lpips),
        }
        for q in job.qualities
    ]
    for target in job.target_bpps:
        quality = quality_for_target_bpp(codec_cls, image, target)
        if quality is None:
            log.warning(
                "%s on %s: even the lowest quality exceeds %g bpp; no point at this target",
                job.codec, job.record.name, target,
            )  # fmt: skip
            continue
        measured = _measure(codec_cls(quality), image, job.with_lpips)
        rows.append({**base, "mode": "target", "target_bpp": target, **measured})
    return rows


def _worker_init() -> None:
    import torch

    # One thread per worker: the pool already uses the cores, oversubscription only slows it.
    torch.set_num_threads(1)


def run_baselines(jobs: list[BaselineJob], workers: int) -> list[dict]:
    rows = []
    progress = tqdm(total=len(jobs), desc="baselines", unit="job")
    if workers <= 1:
        for job in jobs:
            rows.extend(run_job(job))
            progress.update()
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=_worker_init) as pool:
            for result in pool.map(run_job, jobs):
                rows.extend(result)
                progress.update()
    progress.close()
    return rows


def write_outputs(rows: list[dict], output_dir: Path, dataset_label: str) -> list[Path]:
    output_dir.mkdir(parents=True, exist_ok=True)
    csv_path = output_dir / "per_image.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    written = [csv_path]
    groups = defaultdict(list)
    for row in rows:
        key = row["quality"] if row["mode"] == "quality" else row["target_bpp"]
        groups[row["codec"], row["mode"]].append((key, row))
    for (codec, mode), keyed_rows in sorted(groups.items()):
        by_setting = defaultdict(list)
        for key, row in keyed_rows:
            by_setting[key].append(row)
        images = {row["image"] for _, row in keyed_rows}
        points = []
        for setting, setting_rows in sorted(by_setting.items()):
            if len(setting_rows) != len(images):
                continue  # a target some images could not reach: a mean over a subset misleads
            points.append({**aggregate(setting_rows, MEAN_KEYS), "setting": setting})
        label = "quality" if mode == "quality" else "target_bpp"
        description = (
            f"{codec} via Pillow on {dataset_label} ({len(images)} images); each point is the mean "
            f"of per-image values at one {label} (MS-SSIM dB: mean of per-image dB)."
        )
        document = compressai_document(codec, description, points, extra_keys=("setting",))
        document["results"][label] = document["results"].pop("setting")
        suffix = "" if mode == "quality" else "-target-bpp"
        path = output_dir / f"{codec}{suffix}.json"
        write_json(path, document)
        written.append(path)
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inr-study baselines",
        description="Classical codecs (JPEG, WebP, AVIF, JPEG XL) over a dataset: quality sweeps "
        "and target-bpp encodes, with all metrics.",
    )
    parser.add_argument("--codecs", type=comma_list, default=list(CLASSICAL_CODECS))
    parser.add_argument(
        "--qualities",
        type=lambda s: tuple(int(q) for q in comma_list(s)),
        help="comma-separated quality settings for every codec (default: each codec's own sweep)",
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the quality sweep (only --target-bpp)"
    )
    parser.add_argument(
        "--target-bpp",
        type=lambda s: tuple(float(b) for b in comma_list(s)),
        default=(),
        help="comma-separated bitrates: pick the highest quality at or under each",
    )
    parser.add_argument("--no-lpips", action="store_true", help="do not compute LPIPS")
    parser.add_argument(
        "--workers", type=int, default=min(2, os.cpu_count() or 1), help="parallel processes"
    )
    parser.add_argument("-o", "--output-dir", type=Path, default=Path("results/baselines"))
    add_dataset_arguments(parser)
    return parser


def _sweep(name: str, args: argparse.Namespace) -> tuple[int, ...]:
    if args.no_sweep:
        return ()
    codec_cls = get_codec_class(name)
    qualities = args.qualities or codec_cls.default_sweep
    low, high = codec_cls.quality_range
    outside = [q for q in qualities if not low <= q <= high]
    if outside:
        raise SystemExit(
            f"inr-study baselines: {name} quality must lie in [{low}, {high}]; got {outside}"
        )
    return qualities


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    unknown = [name for name in args.codecs if name not in CLASSICAL_CODECS]
    if unknown:
        raise SystemExit(
            f"inr-study baselines: unknown classical codec {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(CLASSICAL_CODECS)}"
        )
    sweeps = {name: _sweep(name, args) for name in args.codecs}
    records = dataset_from_arguments(args)
    # Decided once here, so worker processes neither retry the weights nor repeat the warning.
    with_lpips = not args.no_lpips and lpips_available()
    options = image_options_from_arguments(args)
    jobs = [
        BaselineJob(name, record, sweeps[name], args.target_bpp, options, with_lpips)
        for name in args.codecs
        for record in records
    ]
    rows = run_baselines(jobs, args.workers)
    label = ", ".join(filter(None, [args.dataset, options.label()]))
    for path in write_outputs(rows, args.output_dir, label):
        print(f"wrote {path}")
    return 0

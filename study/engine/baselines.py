"""Classical-codec baselines: sweeps of each codec's rate setting and target-bpp encodes over a
dataset.

Writes ``per_image.csv`` (one row per codec × image × setting) and, per codec, a CompressAI-format
JSON of dataset means (``<codec>.json`` for the sweep, its settings under the rate axis's name —
``quality`` for the Pillow codecs, as CompressAI's benchmarks write it —, and
``<codec>-target-bpp.json`` for targets). Each codec's rate axis, as it declares it, must be an
integer setting with bounds: the target mode bisects it.
"""

import csv
import logging
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inr_models import get_codec_class
from inr_models.base import DECODE_SECONDS, ENCODE_SECONDS, Codec, RateValue
from study.data.datasets import ImageOptions, ImageRecord, load_image
from study.results.evaluation import evaluate
from study.results.metrics import aggregate
from study.results.rd import compressai_document, write_json
from study.results.table import metric_table

log = logging.getLogger(__name__)

ROW_KEYS = ("codec", "image", "mode", "target_bpp", "rate_parameter", "rate", "bytes")
SWEEP, TARGET = "sweep", "target"  # the rows' modes


def csv_columns() -> list[str]:
    return [*ROW_KEYS, *(m.key for m in metric_table())]


@dataclass(frozen=True)
class BaselineJob:
    codec: str
    record: ImageRecord
    settings: tuple[RateValue, ...]  # of the codec's rate axis
    target_bpps: tuple[float, ...]
    image_options: ImageOptions
    with_optional_metrics: bool


def _measure(
    codec_cls: type[Codec], setting: RateValue, image: np.ndarray, with_optional_metrics: bool
) -> dict:
    axis = codec_cls.rate_axis
    codec = codec_cls(**{axis.name: setting})
    start = time.perf_counter()
    encoded = codec.encode(image)
    encode_s = time.perf_counter() - start
    start = time.perf_counter()
    decoded = codec.decode(encoded.data)
    decode_s = time.perf_counter() - start
    height, width = image.shape[:2]
    return {
        "rate_parameter": axis.name,
        "rate": setting,
        "bytes": len(encoded.data),
        "bpp": encoded.bpp(height, width),
        **evaluate(image, decoded, optional=with_optional_metrics),
        ENCODE_SECONDS: encode_s,
        DECODE_SECONDS: decode_s,
    }


def setting_for_target_bpp(
    codec_cls: type[Codec], image: np.ndarray, target_bpp: float
) -> int | None:
    """The setting of the codec's integer rate axis that spends the most bits while its file
    stays at or under ``target_bpp`` (bisection; None if unreachable).

    Assumes the file size is monotone in the setting (in the direction the axis declares), which
    holds for these encoders up to rare one-step wobbles.
    """
    axis = codec_cls.rate_axis
    low, high = int(axis.low), int(axis.high)
    height, width = image.shape[:2]
    best = None
    while low <= high:
        setting = (low + high) // 2
        encoded = codec_cls(**{axis.name: setting}).encode(image)
        under = encoded.bpp(height, width) <= target_bpp
        if under:
            best = setting
        # Under the target: look where the files are larger; over it: where they are smaller.
        if under == axis.rate_increases:
            low = setting + 1
        else:
            high = setting - 1
    return best


def run_job(job: BaselineJob) -> list[dict]:
    """All encodes of one codec on one image; plain function so it runs in a worker process."""
    image = load_image(job.record, job.image_options)
    codec_cls = get_codec_class(job.codec)
    base = {"codec": job.codec, "image": job.record.name}
    rows = [
        {
            **base,
            "mode": SWEEP,
            "target_bpp": None,
            **_measure(codec_cls, setting, image, job.with_optional_metrics),
        }
        for setting in job.settings
    ]
    for target in job.target_bpps:
        setting = setting_for_target_bpp(codec_cls, image, target)
        if setting is None:
            log.warning(
                "%s on %s: even its smallest file exceeds %g bpp; no point at this target",
                job.codec, job.record.name, target,
            )  # fmt: skip
            continue
        measured = _measure(codec_cls, setting, image, job.with_optional_metrics)
        rows.append({**base, "mode": TARGET, "target_bpp": target, **measured})
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
        writer = csv.DictWriter(f, fieldnames=csv_columns())
        writer.writeheader()
        writer.writerows(rows)
    written = [csv_path]
    groups = defaultdict(list)
    for row in rows:
        key = row["rate"] if row["mode"] == SWEEP else row["target_bpp"]
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
            keys = [m.key for m in metric_table()]
            points.append({**aggregate(setting_rows, keys), "setting": setting})
        label = keyed_rows[0][1]["rate_parameter"] if mode == SWEEP else "target_bpp"
        description = (
            f"{codec} on {dataset_label} ({len(images)} images); each point is the mean of "
            f"per-image values at one {label}."
        )
        document = compressai_document(codec, description, points, extra_keys=("setting",))
        document["results"][label] = document["results"].pop("setting")
        suffix = "" if mode == SWEEP else "-target-bpp"
        path = output_dir / f"{codec}{suffix}.json"
        write_json(path, document)
        written.append(path)
    return written

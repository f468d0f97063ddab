"""Rate-distortion tables: CompressAI-format JSON files and interpolation at a given rate."""

import json
import math
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from study.results.labels import record_label
from study.results.metrics import aggregate
from study.results.portable import log10
from study.results.statistics import exact_mean
from study.results.table import recorded_metrics


def json_safe(value):
    """Non-finite floats become None so files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def rd_file_name(label: str) -> str:
    """The R-D file of curve ``label``, named with [A-Za-z0-9._-] only (no shell quoting): a loss's
    α and a spec's weights follow a hyphen, ``+`` becomes ``_`` (``coolchic-v1__lc_ssim(0.01)``:
    ``coolchic-v1__lc_ssim-0.01.json``; ``c3__l1:0.8+ssim:0.2``: ``c3__l1-0.8_ssim-0.2.json``).

    Earlier reports named the file by the label itself; the name of such a file's stem is the
    name it has now, so readers of report folders take either.
    """
    stem = label.replace("(", "-").replace(")", "").replace(":", "-").replace("+", "_")
    return re.sub(r"[^A-Za-z0-9._-]", "_", stem) + ".json"


def rd_files(folder: Path) -> dict[str, Path]:
    """The R-D files in ``folder`` by the name they have now, whichever name they were written
    under."""
    return {rd_file_name(path.stem): path for path in Path(folder).glob("*.json")}


def compressai_document(
    name: str, description: str, points: Sequence[Mapping[str, float | None]], extra_keys=()
) -> dict:
    """``{name, description, results: {key: [...]}}`` with one entry per R-D point, sorted by bpp.

    A metric missing at any point is left out entirely (CompressAI's plotter expects full lists),
    and the description says so; it also states how each metric with a definition in the metric
    table was computed.
    """
    points = sorted(points, key=lambda p: p["bpp"])
    results, missing = {}, []
    metrics = recorded_metrics(points)
    keys = [(m.key, m.compressai_key) for m in metrics]
    for ours, theirs in [*keys, *((k, k) for k in extra_keys)]:
        values = [p.get(ours) for p in points]
        if any(v is None for v in values):
            missing.append(theirs)
            continue
        results[theirs] = values
    for metric in metrics:
        if metric.definition and metric.compressai_key in results:
            description += f" {metric.definition_sentence()}"
    if missing:
        description += f" Not available: {', '.join(missing)}."
    return json_safe({"name": name, "description": description, "results": results})


def write_json(path: Path, document: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(document), indent=2) + "\n")


def interpolate_at_bpp(bpp: Sequence[float], quality: Sequence[float], target: float) -> float:
    """Quality (higher better) at ``target`` bpp, piecewise linear in log10(bpp) between the
    neighbouring points; of two points at one rate (a classical codec's lowest qualities can
    give the same file size), the better.

    NaN when ``target`` lies outside the curve's range: no extrapolation. Logarithms and order
    are the same on every machine (``portable``; Python's sort, not numpy's SIMD one, whose
    order of equal rates depends on the CPU).
    """
    best: dict[float, float] = {}
    for rate, value in zip(bpp, quality, strict=True):
        best[float(rate)] = max(best.get(float(rate), -math.inf), float(value))
    rates = sorted(best)
    log_target = log10(target)
    logs = [log10(rate) for rate in rates]
    if not logs[0] <= log_target <= logs[-1]:
        return math.nan
    return float(np.interp(log_target, logs, [best[rate] for rate in rates]))


def _curve_points(records: list[dict], images: set[str]) -> list[dict]:
    """Points of one curve: at each rate setting, the mean over images (and seeds) of per-image
    values; with several seeds, also each figure's spread over seeds (``<key>_seed_std``).

    A setting is kept only where every seed covers every image: a mean over a subset of images
    is not comparable."""
    by_setting = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_setting[record["rate"]][record.get("seed", 0)].append(record)
    keys = [m.key for m in recorded_metrics(records)]
    points = []
    for setting, by_seed in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        if any({row["image"] for row in rows} != images for rows in by_seed.values()):
            continue
        per_seed = [aggregate(rows, keys) for rows in by_seed.values()]
        point = {"setting": setting, "seeds": len(per_seed)}
        for key in keys:
            values = [seed_point[key] for seed_point in per_seed]
            point[key] = None if None in values else exact_mean(values)
            if len(per_seed) > 1 and point[key] is not None:
                point[f"{key}_seed_std"] = float(np.std(sorted(values), ddof=1))
        points.append(point)
    return points


def designed_curves(records: list[dict]) -> dict[str, list[dict]]:
    """Per (codec, loss): its records; search fits are left out (not a designed R-D curve)."""
    curves = defaultdict(list)
    for record in records:
        if not record.get("search"):
            curves[record_label(record)].append(record)
    return curves


def complete_images(records: list[dict]) -> set[str]:
    """The images one curve's records hold at every one of its rate settings, with every seed."""
    settings = defaultdict(set)
    for record in records:
        settings[record["image"]].add((record["rate"], record.get("seed", 0)))
    every = set().union(*settings.values())
    return {image for image, found in settings.items() if found == every}


def shared_images(anchor: list[dict], other: list[dict]) -> list[str] | None:
    """The images two curves' records both hold at every rate setting of their own, where they
    are fewer than a curve's own images (None: compare the curves ``rd_points`` gives). A mean
    over other images compares other pixels (a study still growing, codecs run on different
    subsets)."""
    images = complete_images(anchor) & complete_images(other)
    own = [{record["image"] for record in rows} for rows in (anchor, other)]
    return None if own == [images, images] else sorted(images)


def common_images(records: list[dict]) -> list[str] | None:
    """The images every designed curve holds at every one of its rate settings, where some curve
    holds fewer than all the records' images (None: every curve holds them all). A figure of
    curves over different images would set means over different pixels side by side."""
    curves = designed_curves(records).values()
    every = {record["image"] for rows in curves for record in rows}
    common = set.intersection(*map(complete_images, curves)) if curves else every
    return None if common == every else sorted(common)


def curve_over(records: list[dict], images: list[str]) -> list[dict]:
    """One curve's dataset means over these images alone (see ``_curve_points``)."""
    kept = set(images)
    return _curve_points([record for record in records if record["image"] in kept], kept)


def rd_points(records: list[dict]) -> dict[str, list[dict]]:
    """Per (codec, loss): the dataset curve (see ``_curve_points``); search fits are left out."""
    return {
        label: _curve_points(rows, {row["image"] for row in rows})
        for label, rows in designed_curves(records).items()
    }


def per_image_points(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """Per (codec, loss), per image: that image's own curve (seeds averaged)."""
    curves = defaultdict(lambda: defaultdict(list))
    for label, rows in designed_curves(records).items():
        for record in rows:
            curves[label][record["image"]].append(record)
    return {
        label: {image: _curve_points(rows, {image}) for image, rows in by_image.items()}
        for label, by_image in curves.items()
    }

"""Seed-to-seed noise: how far two fits of one configuration, differing only in their seed, lie
apart in BD-rate. That is the floor under which a loss-against-loss BD-rate says nothing.

For every curve (codec, loss) fitted with several seeds, each image's curve of one seed is
compared with the same image's curve of every other seed (BD-rate, as the loss tables compute
it), for every metric of the BD-rate tables. Per seed pair: the mean over images, as a loss
table's "per image" mean would be; the noise floor of a metric is the largest such mean in
magnitude, and the per-image standard deviation says how far one image's BD-rate moves.
"""

import itertools
from collections import defaultdict
from pathlib import Path

import numpy as np

from study.results.bd import bd_rate
from study.results.labels import label_parts
from study.results.rd import per_image_points
from study.results.statistics import exact_mean
from study.results.table import get_metric

INTRO = (
    "Seed-to-seed noise: each image's R-D curve of one seed against the same image's curve of "
    "another seed, same configuration (BD-rate, PCHIP, as the loss tables; negative = the second "
    "seed needs fewer bits). *pairs*: each seed pair's mean over images. *floor*: the largest "
    "pair mean in magnitude, the size a loss-against-loss BD-rate of this study must exceed to "
    "say more than a reseeded fit would. *image sd*: standard deviation of the per-image values "
    "over all pairs; *n*: how many there are (an image counts in a pair where its two curves "
    "overlap enough for a BD-rate)."
)


def _seed_curves(records: list[dict]) -> dict:
    """label -> image -> seed -> that image's curve points of that seed."""
    by_seed = defaultdict(list)
    for record in records:
        by_seed[record.get("seed", 0)].append(record)
    curves = defaultdict(lambda: defaultdict(dict))
    for seed, rows in by_seed.items():
        for label, images in per_image_points(rows).items():
            for image, points in images.items():
                curves[label][image][seed] = points
    return curves


def seed_spread_rows(records: list[dict], metrics: list[str]) -> list[dict]:
    """One row per curve with two seeds or more and metric."""
    rows = []
    for label, images in sorted(_seed_curves(records).items()):
        seeds = sorted({seed for by_seed in images.values() for seed in by_seed})
        if len(seeds) < 2:
            continue
        codec, loss = label_parts(label)
        for metric in metrics:
            pairs, per_image = {}, {}
            for first, second in itertools.combinations(seeds, 2):
                found = [
                    bd_rate(by_seed[first], by_seed[second], metric)
                    for by_seed in images.values()
                    if first in by_seed and second in by_seed
                ]
                found = [c.value for c in found if c is not None and c.value is not None]
                if found:
                    pairs[(first, second)] = exact_mean(found)
                    per_image[(first, second)] = found
            values = [v for found in per_image.values() for v in found]
            if pairs:
                rows.append({
                    "codec": codec, "loss": loss, "metric": metric, "seeds": seeds,
                    "pairs": pairs, "per_image": per_image,
                    "floor": max(abs(v) for v in pairs.values()),
                    "image_sd": float(np.std(sorted(values), ddof=1)) if len(values) > 1 else None,
                    "n": len(values),
                })  # fmt: skip
    return rows


def write_seed_spread(rows: list[dict], out: Path) -> list[Path]:
    path = out / "seed_spread.md"
    lines = [INTRO, "", "| codec | loss | metric | seeds | pairs | floor | image sd | n |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for row in rows:
        pairs = "; ".join(f"{a} vs {b}: {v:+.2f} %" for (a, b), v in row["pairs"].items())
        sd = "n/a" if row["image_sd"] is None else f"{row['image_sd']:.2f} %"
        seeds = ", ".join(map(str, row["seeds"]))
        lines.append(
            f"| {row['codec']} | {row['loss']} | {get_metric(row['metric']).display} | {seeds} "
            f"| {pairs} | {row['floor']:.2f} % | {sd} | {row['n']} |"
        )
    path.write_text("\n".join(lines) + "\n")
    return [path]

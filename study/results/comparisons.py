"""Two R-D curves of one study compared by BD-rate: between their dataset-mean curves and image
by image, with the statistics of the per-image values. The report's tables and the claims'
verdicts both compare curves this way."""

from collections.abc import Iterable, Mapping
from dataclasses import asdict

import numpy as np

from study.results.bd import BdComparison, bd_rate
from study.results.rd import (
    curve_over,
    designed_curves,
    per_image_points,
    rd_points,
    shared_images,
)
from study.results.statistics import summarise
from study.results.table import recorded_metrics


def bd_metrics(rows: Iterable[Mapping]) -> list[str]:
    """The BD-rate metrics that rows (trial records, R-D points) report."""
    return [m.key for m in recorded_metrics(rows) if m.bd_rate]


# (rd_points, per_image_points, records by curve label) of one set of records, search fits left out
Points = tuple[dict, dict, dict]


def compare_curves(points: Points, label: str, anchor_label: str, metrics: list[str]) -> dict:
    """BD-rate of curve ``label`` against ``anchor_label`` per metric: between the dataset-mean
    curves over the images both hold at every rate setting (``bd_rate_<metric>``, with its
    ``_overlap`` and ``_bpp_low`` / ``_bpp_high`` span; ``curve_images`` names those images where
    they are fewer than a curve's own), and image by image — each image's own curves — as a
    ``PairedSummary`` dict (``bd_rate_<metric>_images``, or None) with the median per-image
    overlap; ``_pruned`` names the curves (per image, and the dataset means) that lost dominated
    points."""
    curves, images, by_label = points
    shared = shared_images(by_label[anchor_label], by_label[label])
    if shared is None:
        row, pair = {}, (curves[anchor_label], curves[label])
    else:
        row = {"curve_images": shared}
        pair = (curve_over(by_label[anchor_label], shared), curve_over(by_label[label], shared))
    for metric in metrics:
        curve = bd_rate(*pair, metric, by_range=True)
        row[f"bd_rate_{metric}"] = None if curve is None else curve.value
        row[f"bd_rate_{metric}_overlap"] = None if curve is None else curve.overlap
        row[f"bd_rate_{metric}_bpp_low"] = None if curve is None else curve.bpp_low
        row[f"bd_rate_{metric}_bpp_high"] = None if curve is None else curve.bpp_high
        row[f"bd_rate_{metric}_ranges"] = [] if curve is None else describe_ranges(curve)
        compared = {
            image: bd_rate(images[anchor_label][image], image_points, metric)
            for image, image_points in images[label].items()
            if image in images[anchor_label]
        }
        summary = summarise(None if c is None else c.value for c in compared.values())
        row[f"bd_rate_{metric}_images"] = None if summary is None else asdict(summary)
        overlaps = [c.overlap for c in compared.values() if c is not None]
        row[f"bd_rate_{metric}_images_overlap"] = float(np.median(overlaps)) if overlaps else None
        # Named by image, and the dataset-mean curves (over the images both hold) by that.
        named = [*compared.items(), ("dataset mean", curve)]
        row[f"bd_rate_{metric}_pruned"] = sorted(
            f"{anchor_label if which == 'anchor' else label} {name}"
            for name, c in named
            if c is not None
            for which in c.pruned
        )
    return row


def curve_points(records: list[dict]) -> Points:
    return rd_points(records), per_image_points(records), designed_curves(records)


def describe_ranges(curve: BdComparison) -> list[str]:
    return [
        f"{part.value:+.2f} % at {part.bpp_low:.3g}–{part.bpp_high:.3g} bpp "
        f"({part.share:.0%} of the overlap)"
        for part in curve.ranges
    ]

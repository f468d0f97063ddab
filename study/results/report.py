"""R-D files and BD-rate tables from a study's trial records.

Writes to STUDY_DIR/reports/: one CompressAI-format JSON per (codec, loss) whose points are the mean
of per-image values at one rate setting, a per-image CSV of every finished trial, and BD-rate
tables (``bjontegaard``, PCHIP interpolation, on the overlapping quality range) of each loss
against the loss the codec was published with, of every INR curve against each classical codec
of the study, and of each INR codec against every one registered before it, trained with the same
loss, for every metric the metric table marks for BD-rate; and the quality of each INR rate
setting at equal rate against the published loss and each classical codec (``equal_rate``).
"""

import csv
import math
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import bjontegaard
import numpy as np

from inr_models import fits_network, get_codec_class, registration_order
from losses import parse_loss_spec
from study.results.equal_rate import equal_rate_rows, write_equal_rate
from study.results.metrics import aggregate
from study.results.rd import compressai_document, curve_label, write_json
from study.results.statistics import PairedSummary, summarise
from study.results.table import get_metric, metric_table

RECORD_COLUMNS = (
    "codec", "loss", "loss_family", "alpha", "rate_parameter", "rate", "preset", "image", "seed",
)  # fmt: skip
# Figures that codecs report beside the table's metrics.
CODEC_COLUMNS = ("bpp_estimate", "mac_per_pixel", "network_parameters", "peak_memory_mb")


def bd_metrics() -> list[str]:
    return [m.key for m in metric_table() if m.bd_rate]


def csv_columns() -> list[str]:
    return [*RECORD_COLUMNS, *(m.key for m in metric_table()), *CODEC_COLUMNS, "run_id"]


def _curve_points(records: list[dict], images: set[str]) -> list[dict]:
    """Points of one curve: at each rate setting, the mean over images (and seeds) of per-image
    values; with several seeds, also each figure's spread over seeds (``<key>_seed_std``).

    A setting is kept only where every seed covers every image: a mean over a subset of images
    is not comparable."""
    by_setting = defaultdict(lambda: defaultdict(list))
    for record in records:
        by_setting[record["rate"]][record.get("seed", 0)].append(record)
    keys = [m.key for m in metric_table()]
    points = []
    for setting, by_seed in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
        if any({row["image"] for row in rows} != images for rows in by_seed.values()):
            continue
        per_seed = [aggregate(rows, keys) for rows in by_seed.values()]
        point = {"setting": setting, "seeds": len(per_seed)}
        for key in keys:
            values = [seed_point[key] for seed_point in per_seed]
            point[key] = None if None in values else float(np.mean(values))
            if len(per_seed) > 1 and point[key] is not None:
                point[f"{key}_seed_std"] = float(np.std(values, ddof=1))
        points.append(point)
    return points


def rd_points(records: list[dict]) -> dict[str, list[dict]]:
    """Per (codec, loss): the dataset curve (see ``_curve_points``); search fits are left out."""
    curves = defaultdict(list)
    for record in records:
        if not record.get("search"):  # search samples are not a designed R-D curve
            curves[curve_label(record)].append(record)
    return {
        label: _curve_points(rows, {row["image"] for row in rows}) for label, rows in curves.items()
    }


def per_image_points(records: list[dict]) -> dict[str, dict[str, list[dict]]]:
    """Per (codec, loss), per image: that image's own curve (seeds averaged)."""
    curves = defaultdict(lambda: defaultdict(list))
    for record in records:
        if not record.get("search"):
            curves[curve_label(record)][record["image"]].append(record)
    return {
        label: {image: _curve_points(rows, {image}) for image, rows in by_image.items()}
        for label, by_image in curves.items()
    }


def bd_rate(anchor: list[dict], test: list[dict], metric: str) -> float | None:
    """BD-rate (%) of ``test`` against ``anchor``; None where it cannot be computed (fewer than
    two points, a missing metric, no overlap, or a curve not monotonic in quality)."""
    row = get_metric(metric)

    def curve(points):
        pairs = [(p["bpp"], p.get(metric)) for p in points]
        if len(pairs) < 2 or any(v is None for _, v in pairs):
            return None
        # BD integrates rate over increasing quality.
        return sorted(((r, row.oriented(v)) for r, v in pairs), key=lambda p: p[1])

    a, t = curve(anchor), curve(test)
    if a is None or t is None:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = bjontegaard.bd_rate(
                [r for r, _ in a],
                [v for _, v in a],
                [r for r, _ in t],
                [v for _, v in t],
                method="pchip",
                require_matching_points=False,
                min_overlap=0,
            )
        except ValueError:
            return None
    return None if not math.isfinite(value) else float(value)


def anchor_loss(codec: str) -> str | None:
    """The loss the codec was published with, as trial records name it; None if unknown."""
    try:
        published = get_codec_class(codec).published_loss
    except KeyError:
        return None
    return None if published is None else parse_loss_spec(published).name


def _compared(curves: dict, images: dict, label: str, anchor_label: str) -> dict:
    """BD-rate of curve ``label`` against ``anchor_label`` per metric: between the dataset-mean
    curves (``bd_rate_<metric>``), and image by image — each image's own curves — summarised as
    the mean with a 95 % bootstrap interval and a Wilcoxon signed-rank p-value
    (``bd_rate_<metric>_images``: a ``PairedSummary`` as a dict, or None)."""
    row = {}
    for metric in bd_metrics():
        row[f"bd_rate_{metric}"] = bd_rate(curves[anchor_label], curves[label], metric)
        per_image = [
            bd_rate(images[anchor_label][image], image_points, metric)
            for image, image_points in images[label].items()
            if image in images[anchor_label]
        ]
        summary = summarise(per_image)
        row[f"bd_rate_{metric}_images"] = None if summary is None else asdict(summary)
    return row


Points = tuple[dict, dict]  # (rd_points, per_image_points) of one set of records
# (codec, loss, curve labels) -> the (anchor curve label, anchor name) pairs to compare it with.
Anchors = Callable[[str, str, list[str]], Iterable[tuple[str, str]]]


def _points(records: list[dict]) -> Points:
    return rd_points(records), per_image_points(records)


def _rows(points: Points, anchors: Anchors) -> list[dict]:
    """One row per curve and anchor that ``anchors`` gives it (see ``_compared``)."""
    curves, images = points
    labels, rows = sorted(curves), []
    for label in labels:
        codec, _, loss = label.partition("__")
        for anchor_label, anchor in anchors(codec, loss, labels):
            row = {"codec": codec, "loss": loss, "anchor": anchor}
            rows.append(row | _compared(curves, images, label, anchor_label))
    return rows


def _published_loss(codec: str, loss: str, labels: list[str]):
    """Each loss against its codec's published loss."""
    anchor = anchor_loss(codec)
    if loss and anchor is not None and loss != anchor and f"{codec}__{anchor}" in labels:
        yield f"{codec}__{anchor}", anchor


def _classical(codec: str, loss: str, labels: list[str]):
    """Each INR codec's curve (one per loss) against each classical codec: negative means the INR
    codec needs fewer bits than the classical one."""
    if fits_network(codec):
        for label in labels:
            if not fits_network(label.partition("__")[0]):
                yield label, label


def _registered_before(codec: str, loss: str, labels: list[str]):
    """Each INR codec's curve against the curve, with the same loss, of every INR codec registered
    before it (codecs this process does not know come last)."""
    known = registration_order()

    def age(name: str) -> tuple[int, str]:
        return (known.index(name) if name in known else len(known), name)

    if fits_network(codec):
        for label in labels:
            anchor, _, anchor_loss_name = label.partition("__")
            if fits_network(anchor) and anchor_loss_name == loss and age(anchor) < age(codec):
                yield label, anchor


def bd_rate_rows(records: list[dict]) -> list[dict]:
    return _rows(_points(records), _published_loss)


def classical_rows(records: list[dict]) -> list[dict]:
    return _rows(_points(records), _classical)


def codec_rows(records: list[dict]) -> list[dict]:
    return _rows(_points(records), _registered_before)


def _format(value) -> str:
    return "n/a" if value is None else f"{value:+.2f} %"


def _format_images(summary: dict | None) -> str:
    if summary is None:
        return "n/a"
    return PairedSummary(**summary).describe()


LOSS_TABLE_INTRO = "BD-rate of each loss against the loss the codec was published with"
CLASSICAL_TABLE_INTRO = "BD-rate of each INR codec and loss against each classical codec"
CODEC_TABLE_INTRO = (
    "BD-rate of each INR codec against every INR codec registered before it, both trained with "
    "the same loss"
)


def markdown_table(rows: list[dict], intro: str = LOSS_TABLE_INTRO) -> str:
    metrics = [get_metric(key) for key in bd_metrics()]
    header = " | ".join(
        f"{m.label}{f' {m.unit}' if m.unit else ''}: curve | per image" for m in metrics
    )
    lines = [
        f"{intro} (negative = fewer bits for the same quality), PCHIP on the overlapping "
        "quality range. *curve*: between the dataset-mean curves. *per image*: each image's own "
        "BD-rate, as their mean [95 % bootstrap interval], the two-sided Wilcoxon signed-rank "
        "p-value of the paired per-image values, and how many images had one. n/a = fewer than "
        "two points, metric missing, no overlap or non-monotonic curve.",
        "",
        f"| codec | loss | anchor | {header} |",
        "|---|---|---|" + "---|" * (2 * len(metrics)),
    ]
    for row in rows:
        values = " | ".join(
            f"{_format(row[f'bd_rate_{m.key}'])} | {_format_images(row[f'bd_rate_{m.key}_images'])}"
            for m in metrics
        )
        lines.append(f"| {row['codec']} | {row['loss']} | {row['anchor']} | {values} |")
    return "\n".join(lines) + "\n"


def _flat_csv_row(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif not key.endswith("_images"):
            flat[key] = value
    return flat


def write_reports(records: list[dict], name: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / "per_image.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=csv_columns(), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: (curve_label(r), str(r["rate"]))))
    written.append(csv_path)
    points = _points(records)
    for label, curve in points[0].items():
        if not curve:
            continue
        images = len({r["image"] for r in records if curve_label(r) == label})
        description = (
            f"{label.replace('__', ' trained with ')}, study {name!r}, {images} images; each "
            "point is the mean of per-image values at one rate setting (MS-SSIM dB: mean of "
            "per-image dB)."
        )
        path = out / f"{label}.json"
        extra = ("setting", "seeds", *sorted({k for p in curve for k in p if k.endswith("_std")}))
        write_json(path, compressai_document(label, description, curve, extra_keys=extra))
        written.append(path)
    written += _write_bd_tables(out, "bd_rate", _rows(points, _published_loss), LOSS_TABLE_INTRO)
    for stem, anchors, intro in (
        ("bd_rate_classical", _classical, CLASSICAL_TABLE_INTRO),
        ("bd_rate_codecs", _registered_before, CODEC_TABLE_INTRO),
    ):
        rows = _rows(points, anchors)
        if rows:  # the study has a classical codec, or two INR codecs
            written += _write_bd_tables(out, stem, rows, intro)
    for stem, anchors in (("equal_rate", _published_loss), ("equal_rate_classical", _classical)):
        rows = equal_rate_rows(records, bd_metrics(), anchors)
        if rows:
            written += write_equal_rate(rows, bd_metrics(), out, stem)
    return written


def _write_bd_tables(out: Path, stem: str, rows: list[dict], intro: str) -> list[Path]:
    bd_csv = out / f"{stem}.csv"
    with bd_csv.open("w", newline="") as f:
        columns = ["codec", "loss", "anchor"]
        for metric in bd_metrics():
            columns += [f"bd_rate_{metric}"]
            columns += [
                f"bd_rate_{metric}_images_{k}" for k in ("mean", "low", "high", "p_value", "n")
            ]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(_flat_csv_row(row) for row in rows)
    bd_md = out / f"{stem}.md"
    bd_md.write_text(markdown_table(rows, intro))
    return [bd_csv, bd_md]

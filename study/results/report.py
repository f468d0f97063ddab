"""R-D files and BD-rate tables from a study's trial records.

Writes to STUDY_DIR/reports/: one CompressAI-format JSON per (codec, loss) whose points are the mean
of per-image values at one rate setting, a per-image CSV of every finished trial, and BD-rate
tables (``bjontegaard``, PCHIP interpolation, on the overlapping quality range) of each loss
against the loss the codec was published with, for every metric the metric table marks for BD-rate.
"""

import csv
import math
import warnings
from collections import defaultdict
from pathlib import Path

import bjontegaard

from inr_models import get_codec_class
from losses import parse_loss_spec
from study.results.metrics import aggregate
from study.results.rd import compressai_document, write_json
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


def curve_label(record: dict) -> str:
    loss = record.get("loss")
    return record["codec"] if loss is None else f"{record['codec']}__{loss}"


def rd_points(records: list[dict]) -> dict[str, list[dict]]:
    """Per (codec, loss): mean of per-image values at each rate setting, over all images only."""
    curves = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("search"):
            continue  # search samples are not a designed R-D curve
        curves[curve_label(record)][record["rate"], record.get("seed", 0)].append(record)
    keys = [m.key for m in metric_table()]
    result = {}
    for label, by_setting in curves.items():
        images = {row["image"] for rows in by_setting.values() for row in rows}
        points = []
        for (setting, _seed), rows in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
            if {row["image"] for row in rows} != images:
                continue  # a mean over a subset of images is not comparable
            points.append({**aggregate(rows, keys), "setting": setting})
        result[label] = points
    return result


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


def bd_rate_rows(curves: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for label, points in sorted(curves.items()):
        codec, _, loss = label.partition("__")
        anchor = anchor_loss(codec)
        if not loss or anchor is None or loss == anchor or f"{codec}__{anchor}" not in curves:
            continue
        row = {"codec": codec, "loss": loss, "anchor": anchor}
        for metric in bd_metrics():
            row[f"bd_rate_{metric}"] = bd_rate(curves[f"{codec}__{anchor}"], points, metric)
        rows.append(row)
    return rows


def _format(value) -> str:
    return "n/a" if value is None else f"{value:+.2f} %"


def markdown_table(rows: list[dict]) -> str:
    metrics = [get_metric(key) for key in bd_metrics()]
    header = " | ".join(m.label + (f" {m.unit}" if m.unit else "") for m in metrics)
    lines = [
        "BD-rate of each loss against the loss the codec was published with (negative = fewer "
        "bits for the same quality), PCHIP on the overlapping range of dataset-mean curves; n/a = "
        "fewer than two points, metric missing, no overlap or non-monotonic curve.",
        "",
        f"| codec | loss | anchor | {header} |",
        "|---|---|---|" + "---|" * len(metrics),
    ]
    for row in rows:
        values = " | ".join(_format(row[f"bd_rate_{m.key}"]) for m in metrics)
        lines.append(f"| {row['codec']} | {row['loss']} | {row['anchor']} | {values} |")
    return "\n".join(lines) + "\n"


def write_reports(records: list[dict], name: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / "per_image.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=csv_columns(), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: (curve_label(r), str(r["rate"]))))
    written.append(csv_path)
    curves = rd_points(records)
    for label, points in curves.items():
        if not points:
            continue
        images = len({r["image"] for r in records if curve_label(r) == label})
        description = (
            f"{label.replace('__', ' trained with ')}, study {name!r}, {images} images; each "
            "point is the mean of per-image values at one rate setting (MS-SSIM dB: mean of "
            "per-image dB)."
        )
        path = out / f"{label}.json"
        write_json(path, compressai_document(label, description, points, extra_keys=("setting",)))
        written.append(path)
    rows = bd_rate_rows(curves)
    bd_csv = out / "bd_rate.csv"
    with bd_csv.open("w", newline="") as f:
        columns = ["codec", "loss", "anchor", *(f"bd_rate_{m}" for m in bd_metrics())]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    bd_md = out / "bd_rate.md"
    bd_md.write_text(markdown_table(rows))
    written += [bd_csv, bd_md]
    return written

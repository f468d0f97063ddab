"""Quality at equal rate: each INR trial against each classical codec at that trial's own bpp.

A BD-rate averages over a quality range; a claim such as "better than JPEG at low rates, worse at
high ones" needs each rate setting on its own. For every INR curve, rate setting and classical
codec of a study, each image's INR trial is compared with the classical codec's sweep on the same
image, interpolated at the trial's bpp (piecewise linear in log bpp, never extrapolated), for every
metric the table marks for BD-rate. Over images: the mean difference (INR − classical) with its
95 % bootstrap interval and Wilcoxon p, and on how many images the INR codec is better.
"""

import csv
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from inr_models import fits_network
from study.results.rd import curve_label, interpolate_at_bpp
from study.results.statistics import summarise
from study.results.table import get_metric

INTRO = (
    "Quality of each INR codec and loss against each classical codec at the same rate: per image, "
    "the INR trial's value minus the classical codec's sweep on that image interpolated at the "
    "trial's bpp (linear in log bpp; images whose sweep does not reach that bpp are left out). "
    "*Δ*: mean over images [95 % bootstrap interval], Wilcoxon p; *better*: images where the INR "
    "codec is better (for LPIPS, lower) / images compared."
)


def _by_image(records: list[dict]) -> dict:
    """label -> rate setting -> image -> records (seeds); search fits left out."""
    found = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for record in records:
        if not record.get("search"):
            found[curve_label(record)][record["rate"]][record["image"]].append(record)
    return found


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row.get(key) for row in rows]
    return None if not values or None in values else float(np.mean(values))


def equal_rate_rows(records: list[dict], metrics: list[str]) -> list[dict]:
    curves = _by_image(records)
    classical = [label for label in curves if not fits_network(label.partition("__")[0])]
    rows = []
    for label in sorted(curves):
        codec, _, loss = label.partition("__")
        if not fits_network(codec):
            continue
        for anchor in classical:
            sweeps = {
                image: [r for rows in curves[anchor].values() for r in rows.get(image, [])]
                for image in {i for setting in curves[anchor].values() for i in setting}
            }
            for setting, images in sorted(curves[label].items(), key=lambda kv: str(kv[0])):
                row = {"codec": codec, "loss": loss, "rate": setting, "anchor": anchor}
                row["bpp"] = float(np.mean([_mean(rows, "bpp") for rows in images.values()]))
                for metric in metrics:
                    row[metric] = _compare(images, sweeps, metric)
                rows.append(row)
    return rows


def _compare(images: dict, sweeps: dict, metric: str) -> dict | None:
    oriented = get_metric(metric).oriented
    differences, better = [], 0
    for image, trials in images.items():
        bpp, value = _mean(trials, "bpp"), _mean(trials, metric)
        sweep = [(r["bpp"], r.get(metric)) for r in sweeps.get(image, [])]
        if value is None or len(sweep) < 2 or any(v is None for _, v in sweep):
            continue
        reference = interpolate_at_bpp([b for b, _ in sweep], [v for _, v in sweep], bpp)
        if math.isnan(reference):
            continue
        differences.append(value - reference)
        better += oriented(value) > oriented(reference)
    summary = summarise(differences)
    if summary is None:
        return None
    return {"mean": summary.mean, "low": summary.low, "high": summary.high,
            "p_value": summary.p_value, "better": better, "n": summary.n}  # fmt: skip


def _cell(value: dict | None) -> str:
    if value is None:
        return "n/a | n/a"
    p = "n/a" if value["p_value"] is None else f"{value['p_value']:.3g}"
    digits = 2 if abs(value["mean"]) >= 0.1 else 4
    mean, low, high = (f"{value[k]:+.{digits}f}" for k in ("mean", "low", "high"))
    return f"{mean} [{low}, {high}], p {p} | {value['better']}/{value['n']}"


def write_equal_rate(rows: list[dict], metrics: list[str], out: Path) -> list[Path]:
    md, table = out / "equal_rate_classical.md", out / "equal_rate_classical.csv"
    labels = [get_metric(m) for m in metrics]
    header = " | ".join(f"{m.display}: Δ | better" for m in labels)
    lines = [INTRO, "", f"| codec | loss | rate | mean bpp | anchor | {header} |",
             "|---|---|---|---|---|" + "---|" * (2 * len(metrics))]  # fmt: skip
    for row in rows:
        cells = " | ".join(_cell(row[m]) for m in metrics)
        lines.append(
            f"| {row['codec']} | {row['loss']} | {row['rate']} | {row['bpp']:.3f} | "
            f"{row['anchor']} | {cells} |"
        )
    md.write_text("\n".join(lines) + "\n")
    fields = ("mean", "low", "high", "p_value", "better", "n")
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["codec", "loss", "rate", "bpp", "anchor",
                         *(f"{m}_{k}" for m in metrics for k in fields)])  # fmt: skip
        for row in rows:
            values = [None if row[m] is None else row[m][k] for m in metrics for k in fields]
            writer.writerow([row["codec"], row["loss"], row["rate"], row["bpp"], row["anchor"],
                             *values])  # fmt: skip
    return [table, md]

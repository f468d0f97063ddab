"""Quality at equal rate: each INR trial against an anchor curve at that trial's own bpp.

A BD-rate averages over a quality range; a claim such as "better than JPEG at low rates, worse at
high ones" needs each rate setting on its own, and two curves that barely overlap in quality may
still share rates. For every INR curve, rate setting and anchor (the codec's published loss, or
each classical codec), each image's trial is compared with the anchor's curve on the same image,
interpolated at the trial's bpp (piecewise linear in log bpp, never extrapolated), for every
metric the table marks for BD-rate. Over images: the mean difference (trial − anchor) with its
95 % bootstrap interval and Wilcoxon p, and on how many images the trial is better.
"""

import csv
import math
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path

from inr_models import fits_network
from study.results.labels import label_parts, record_label
from study.results.rd import interpolate_at_bpp
from study.results.statistics import (
    PairedSummary,
    adjust_table,
    exact_mean,
    family_size,
    summarise,
)
from study.results.table import get_metric

INTROS = {
    "equal_rate": "Quality of each loss against the loss the codec was published with",
    "equal_rate_classical": "Quality of each INR codec and loss against each classical codec",
}
METHOD = (
    " at the same rate: per image, the trial's value minus the anchor's curve on that image "
    "interpolated at the trial's bpp (linear in log bpp; images whose anchor curve does not reach "
    "that bpp are left out, and counted: n = N of M, N of the trial's M images compared). *Δ*: "
    "mean over images [95 % percentile-bootstrap interval; 95 % t-interval], Wilcoxon "
    "signed-rank p and its Holm adjustment over the {tests} p-values of this table; *better*: "
    "images where the trial is better (lower, where the column says lower is better) / images "
    "compared."
)


def _by_image(records: list[dict]) -> dict:
    """label -> rate setting -> image -> records (seeds); search fits left out."""
    found = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for record in records:
        if not record.get("search"):
            found[record_label(record)][record["rate"]][record["image"]].append(record)
    return found


def _mean(rows: list[dict], key: str) -> float | None:
    values = [row.get(key) for row in rows]
    return None if not values or None in values else exact_mean(values)


def _sweep(settings: dict, image: str) -> list[list[dict]]:
    """One image's records (its seeds) at each rate setting of a curve."""
    return [by_image[image] for by_image in settings.values() if image in by_image]


def equal_rate_rows(records: list[dict], metrics: list[str], anchors) -> list[dict]:
    """One row per INR curve, rate setting and anchor curve that ``anchors`` (as the BD-rate
    tables choose them: codec, loss, labels -> (anchor label, anchor name)) gives it."""
    curves = _by_image(records)
    labels, rows = sorted(curves), []
    for label in labels:
        codec, loss = label_parts(label)
        if not fits_network(codec):
            continue
        for anchor_label, anchor in anchors(codec, loss, labels):
            sweeps = curves[anchor_label]
            for setting, images in sorted(curves[label].items(), key=lambda kv: str(kv[0])):
                row = {"codec": codec, "loss": loss, "rate": setting, "anchor": anchor}
                row["bpp"] = _mean([{"bpp": _mean(rows, "bpp")} for rows in images.values()], "bpp")
                for metric in metrics:
                    row[metric] = _compare(images, sweeps, metric)
                rows.append(row)
    adjust_table(rows, metrics)
    return rows


def _compare(images: dict, sweeps: dict, metric: str) -> dict | None:
    oriented = get_metric(metric).oriented
    differences, better = [], 0
    for image, trials in images.items():
        bpp, value = _mean(trials, "bpp"), _mean(trials, metric)
        sweep = [(_mean(rows, "bpp"), _mean(rows, metric)) for rows in _sweep(sweeps, image)]
        usable = bpp is not None and value is not None and len(sweep) >= 2
        reference = math.nan
        if usable and None not in {v for p in sweep for v in p}:
            at_bpp = interpolate_at_bpp([b for b, _ in sweep], [oriented(v) for _, v in sweep], bpp)
            reference = oriented(at_bpp)  # back from higher-better
        if math.isnan(reference):  # offered but not compared: the summary's "of"
            differences.append(None)
            continue
        differences.append(value - reference)
        better += oriented(value) > oriented(reference)
    summary = summarise(differences)
    return None if summary is None else asdict(summary) | {"better": better}


def _cell(value: dict | None) -> str:
    if value is None:
        return "n/a | n/a"
    digits = 2 if abs(value["mean"]) >= 0.1 else 4
    summary = PairedSummary(**{k: v for k, v in value.items() if k != "better"})
    return f"{summary.describe(unit='', digits=digits)} | {value['better']}/{value['n']}"


def write_equal_rate(rows: list[dict], metrics: list[str], out: Path, stem: str) -> list[Path]:
    md, table = out / f"{stem}.md", out / f"{stem}.csv"
    labels = [get_metric(m) for m in metrics]
    header = " | ".join(f"{m.display}: Δ | better" for m in labels)
    tests = family_size(rows, metrics)
    lines = [INTROS[stem] + METHOD.format(tests=tests), "",
             f"| codec | loss | rate | mean bpp | anchor | {header} |",
             "|---|---|---|---|---|" + "---|" * (2 * len(metrics))]  # fmt: skip
    for row in rows:
        cells = " | ".join(_cell(row[m]) for m in metrics)
        bpp = "n/a" if row["bpp"] is None else f"{row['bpp']:.3f}"
        where = f"| {row['codec']} | {row['loss']} | {row['rate']} | {bpp} | {row['anchor']} |"
        lines.append(f"{where} {cells} |")
    md.write_text("\n".join(lines) + "\n")
    fields = ("mean", "low", "high", "t_low", "t_high", "p_value", "p_holm", "better", "n",
              "compared")  # fmt: skip
    with table.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["codec", "loss", "rate", "bpp", "anchor",
                         *(f"{m}_{k}" for m in metrics for k in fields)])  # fmt: skip
        for row in rows:
            values = [None if row[m] is None else row[m][k] for m in metrics for k in fields]
            writer.writerow([row["codec"], row["loss"], row["rate"], row["bpp"], row["anchor"],
                             *values])  # fmt: skip
    return [table, md]

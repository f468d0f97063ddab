"""R-D files and BD-rate tables from a study's trial records.

Writes to STUDY_DIR/reports/: one CompressAI-format JSON per (codec, loss) whose points are the mean
of per-image values at one rate setting, a per-image CSV of every finished trial, and BD-rate
tables (``bd``: PCHIP interpolation on the overlapping quality range) of each loss
against the loss the codec was published with, of every INR curve against each classical codec
of the study, and of each INR codec against every one registered before it, trained with the same
loss, for every metric the metric table marks for BD-rate; and the quality of each INR rate
setting at equal rate against the published loss and each classical codec (``equal_rate``);
and the verdict on each of the paper's claims the records can test (``claims_report``).
"""

import csv
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from inr_models import fits_network, get_codec_class, registration_rank
from inr_models.base import FIT_FIGURES, RATE_PARTS
from losses import parse_loss_spec
from study.results.bd import MIN_OVERLAP
from study.results.budgets import budget_markdown, budget_rows, write_budgets
from study.results.claims_report import write_claims
from study.results.comparisons import Points, bd_metrics, compare_curves, curve_points
from study.results.equal_rate import equal_rate_rows, write_equal_rate
from study.results.labels import curve_label, label_parts, record_label
from study.results.rd import (
    complete_images,
    compressai_document,
    curve_over,
    rd_file_name,
    write_json,
)
from study.results.record_text import param_value, rate_value
from study.results.seeds import seed_spread_rows, write_seed_spread
from study.results.statistics import PairedSummary, adjust_table, family_size
from study.results.table import get_metric, metric_table, opt_in_metrics, recorded_metrics

RECORD_COLUMNS = (
    "codec", "loss", "loss_family", "alpha", "rate_parameter", "rate", "preset", "image", "seed",
)  # fmt: skip
# Beside the table's metrics: what the codecs report of their fits, where the file's bits go,
# and the trial's peak memory.
CODEC_COLUMNS = (*FIT_FIGURES, *RATE_PARTS, "peak_memory_mb")


def _table_metrics(rows: list[dict]) -> list[str]:
    """The metrics a BD-rate table's rows were computed for."""
    return [m.key for m in metric_table(opt_in_metrics()) if rows and f"bd_rate_{m.key}" in rows[0]]


def csv_columns(records: Iterable[Mapping]) -> list[str]:
    # The trial key, not the run id: it names the trial in every store, and its published file.
    metrics = [m.key for m in recorded_metrics(records)]
    return [*RECORD_COLUMNS, *metrics, *CODEC_COLUMNS, "trial_key"]


def anchor_loss(codec: str) -> str | None:
    """The loss the codec was published with, as trial records name it; None if unknown."""
    try:
        published = get_codec_class(codec).published_loss
    except KeyError:
        return None
    return None if published is None else parse_loss_spec(published).name


# (codec, loss, curve labels) -> the (anchor curve label, anchor name) pairs to compare it with.
Anchors = Callable[[str, str, list[str]], Iterable[tuple[str, str]]]


def _rows(points: Points, anchors: Anchors) -> list[dict]:
    """One row per curve and anchor that ``anchors`` gives it (see ``compare_curves``)."""
    curves = points[0]
    metrics = bd_metrics(point for curve in curves.values() for point in curve)
    labels, rows = sorted(curves), []
    for label in labels:
        codec, loss = label_parts(label)
        for anchor_label, anchor in anchors(codec, loss, labels):
            row = {"codec": codec, "loss": loss, "anchor": anchor}
            rows.append(row | compare_curves(points, label, anchor_label, metrics))
    adjust_table(rows, [f"bd_rate_{m}_images" for m in metrics])
    return rows


def _published_loss(codec: str, loss: str, labels: list[str]):
    """Each loss against its codec's published loss."""
    anchor = anchor_loss(codec)
    if loss and anchor is not None and loss != anchor and curve_label(codec, anchor) in labels:
        yield curve_label(codec, anchor), anchor


def _classical(codec: str, loss: str, labels: list[str]):
    """Each INR codec's curve (one per loss) against each classical codec: negative means the INR
    codec needs fewer bits than the classical one."""
    if fits_network(codec):
        for label in labels:
            if not fits_network(label_parts(label)[0]):
                yield label, label


def _registered_before(codec: str, loss: str, labels: list[str]):
    """Each INR codec's curve against the curve, with the same loss, of every INR codec registered
    before it (codecs this process does not know come last)."""
    if fits_network(codec):
        for label in labels:
            anchor, anchor_loss_name = label_parts(label)
            if (
                fits_network(anchor)
                and anchor_loss_name == loss
                and registration_rank(anchor) < registration_rank(codec)
            ):
                yield label, anchor


def bd_rate_rows(records: list[dict]) -> list[dict]:
    return _rows(curve_points(records), _published_loss)


def classical_rows(records: list[dict]) -> list[dict]:
    return _rows(curve_points(records), _classical)


def codec_rows(records: list[dict]) -> list[dict]:
    return _rows(curve_points(records), _registered_before)


def compared_images_text(row: dict) -> str:
    """Which images the curves were averaged over, where not all of either curve's."""
    shared = row.get("curve_images")
    if shared is None:
        return ""
    return f"over {', '.join(shared)}" if shared else "no image both hold at every rate setting"


def _format_curve(row: dict, metric: str) -> str:
    shared = compared_images_text(row)
    overlap = row[f"bd_rate_{metric}_overlap"]
    if overlap is None:
        return f"n/a ({shared})" if shared else "n/a"
    value = row[f"bd_rate_{metric}"]
    span = f"{row[f'bd_rate_{metric}_bpp_low']:.3g}–{row[f'bd_rate_{metric}_bpp_high']:.3g} bpp"
    shown = "n/a" if value is None else f"{value:+.2f} %"
    ranges = row[f"bd_rate_{metric}_ranges"]
    split = f"; the curves cross, by rate range: {'; '.join(ranges)}" if ranges else ""
    over = f"; {shared}" if shared else ""
    return f"{shown} (overlap {overlap:.0%}, {span}{split}{over})"


def _format_images(row: dict, metric: str) -> str:
    summary = row[f"bd_rate_{metric}_images"]
    if summary is None:
        return "n/a"
    overlap = row[f"bd_rate_{metric}_images_overlap"]
    return f"{PairedSummary(**summary).describe()}, overlap {overlap:.0%}"


LOSS_TABLE_INTRO = "BD-rate of each loss against the loss the codec was published with"
CLASSICAL_TABLE_INTRO = "BD-rate of each INR codec and loss against each classical codec"
CODEC_TABLE_INTRO = (
    "BD-rate of each INR codec against every INR codec registered before it, both trained with "
    "the same loss"
)


def markdown_table(rows: list[dict], intro: str = LOSS_TABLE_INTRO) -> str:
    metrics = [get_metric(key) for key in _table_metrics(rows)]
    header = " | ".join(
        f"{m.label}{f' {m.unit}' if m.unit else ''}: curve | per image" for m in metrics
    )
    tests = family_size(rows, [f"bd_rate_{m.key}_images" for m in metrics])
    pruned = sorted(
        {curve for row in rows for m in metrics for curve in row[f"bd_rate_{m.key}_pruned"]}
    )
    lines = [
        f"{intro} (negative = fewer bits for the same quality), PCHIP on the quality range both "
        f"curves cover, reported only where that is at least {MIN_OVERLAP:.0%} of their joint "
        "quality range (otherwise n/a: see the equal-rate tables). *curve*: between the "
        "dataset-mean curves, with the overlap and the rates it spans (where the curves cross, "
        "also the BD-rate of each rate range between crossings, from low rates up). *per image*: "
        "each image's own BD-rate, as their mean [95 % percentile-bootstrap interval; 95 % "
        "t-interval], the "
        "two-sided Wilcoxon signed-rank p-value of the paired per-image values and its Holm "
        f"adjustment over the {tests} p-values of this table, how many images had a BD-rate "
        "(of how many were compared), and the median overlap of the images compared (those under "
        f"{MIN_OVERLAP:.0%} included). n/a = fewer than two "
        "points, metric missing, or too little overlap. A point that another point of its curve "
        "beats (as few bits or fewer, quality as good or better) is dropped first"
        + (
            f"; it happened on {len(pruned)} curve{'s' * (len(pruned) != 1)}: {', '.join(pruned)}."
            if pruned
            else "; no curve here had one."
        )
        + (
            " Where two curves hold different images (a study still growing, codecs run on "
            "different subsets), *curve* compares their means over the images both hold at every "
            "rate setting, named in the cell."
            if any("curve_images" in row for row in rows)
            else ""
        ),
        "",
        f"| codec | loss | anchor | {header} |",
        "|---|---|---|" + "---|" * (2 * len(metrics)),
    ]
    for row in rows:
        values = " | ".join(
            f"{_format_curve(row, m.key)} | {_format_images(row, m.key)}" for m in metrics
        )
        lines.append(f"| {row['codec']} | {row['loss']} | {row['anchor']} | {values} |")
    return "\n".join(lines) + "\n"


def _flat_csv_row(row: dict) -> dict:
    flat = {}
    for key, value in row.items():
        if isinstance(value, dict):
            flat.update({f"{key}_{k}": v for k, v in value.items()})
        elif isinstance(value, list):
            flat[key] = "; ".join(value)
        elif not key.endswith("_images"):  # a summary there is none of
            flat[key] = value
    return flat


def read_per_image_csv(path: Path) -> list[dict]:
    """The trial records of a ``per_image.csv`` that ``write_reports`` wrote, typed as the
    tracking store gives them: a published study's tables can be written again from it."""
    records = []
    with Path(path).open(newline="") as f:
        for row in csv.DictReader(f):
            record = {}
            for key, text in row.items():
                if text == "":
                    record[key] = None
                elif key in RECORD_COLUMNS or key in ("run_id", "trial_key", "search"):
                    record[key] = param_value(key, text)
                else:
                    record[key] = float(text)
            record["rate"] = rate_value(record["codec"], record["rate_parameter"], row["rate"])
            record[record["rate_parameter"]] = record["rate"]
            records.append(record)
    return records


def _row_order(record: dict) -> tuple:
    """Curve, rate, image, seed: the same rows in the same order however the records came."""
    return (
        record_label(record),
        str(record["rate"]),
        record["image"],
        record.get("seed") or 0,
        record.get("search") or "",
        record.get("trial_key") or "",
    )


def write_reports(records: list[dict], name: str, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / "per_image.csv"
    with csv_path.open("w", newline="") as f:
        # A search's fits name their task, from which the α tables are computed again.
        searched = ["search"] if any(r.get("search") for r in records) else []
        columns = csv_columns(records) + searched
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=_row_order))
    written.append(csv_path)
    points = curve_points(records)
    for label, curve in points[0].items():
        rows = points[2][label]
        held, complete = {r["image"] for r in rows}, complete_images(rows)
        over = f"{len(held)} images"
        if complete and complete != held:  # a study still growing: the whole curve, fewer images
            curve = curve_over(rows, sorted(complete))
            over = (
                f"{len(complete)} images ({', '.join(sorted(complete))}: those with every rate "
                f"setting, of the {len(held)} it holds)"
            )
        if not curve:
            continue
        codec, loss = label_parts(label)
        description = (
            f"{codec}{f' trained with {loss}' if loss else ''}, study {name!r}, {over}; each "
            "point is the mean of per-image values at one rate setting."
        )
        settings = len({r["rate"] for r in rows})
        if len(curve) < settings:  # no image has every setting yet
            description += (
                f" {settings - len(curve)} of its {settings} rate settings lack one of these "
                "images (or a seed) and are left out."
            )
        path = out / rd_file_name(label)
        (out / f"{label}.json").unlink(missing_ok=True)  # its earlier name: not left beside it
        extra = ("setting", "seeds", *sorted({k for p in curve for k in p if k.endswith("_std")}))
        write_json(path, compressai_document(label, description, curve, extra_keys=extra))
        written.append(path)
    budgets = budget_rows(records)
    budget_table = budget_markdown(budgets) if budgets else ""
    if budgets:
        written += write_budgets(budgets, budget_table, out)
    # A comparison of codecs states what each was given (budgets.md) under its table.
    for stem, anchors, intro, after in (
        ("bd_rate", _published_loss, LOSS_TABLE_INTRO, ""),
        ("bd_rate_classical", _classical, CLASSICAL_TABLE_INTRO, ""),
        ("bd_rate_codecs", _registered_before, CODEC_TABLE_INTRO, budget_table),
    ):
        rows = _rows(points, anchors)
        if rows:  # no empty tables: a loss besides the published one, a classical codec, ...
            written += _write_bd_tables(out, stem, rows, intro, after)
    metrics = bd_metrics(records)
    for stem, anchors in (("equal_rate", _published_loss), ("equal_rate_classical", _classical)):
        rows = equal_rate_rows(records, metrics, anchors)
        if rows:
            written += write_equal_rate(rows, metrics, out, stem)
    rows = seed_spread_rows(records, metrics)
    if rows:  # some configuration was fitted with several seeds
        written += write_seed_spread(rows, out)
    return written + write_claims(records, out)


def _write_bd_tables(
    out: Path, stem: str, rows: list[dict], intro: str, after: str = ""
) -> list[Path]:
    bd_csv = out / f"{stem}.csv"
    summary_fields = (
        "mean",
        "low",
        "high",
        "t_low",
        "t_high",
        "p_value",
        "p_holm",
        "n",
        "compared",
    )
    with bd_csv.open("w", newline="") as f:
        columns = ["codec", "loss", "anchor"]
        if any("curve_images" in row for row in rows):  # only where some curves differ in images
            columns.append("curve_images")
        for metric in _table_metrics(rows):
            prefix = f"bd_rate_{metric}"
            columns += [prefix, f"{prefix}_overlap", f"{prefix}_bpp_low", f"{prefix}_bpp_high"]
            columns.append(f"{prefix}_ranges")
            columns += [f"{prefix}_images_{k}" for k in summary_fields]
            columns += [f"{prefix}_images_overlap", f"{prefix}_pruned"]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(_flat_csv_row(row) for row in rows)
    bd_md = out / f"{stem}.md"
    bd_md.write_text(markdown_table(rows, intro) + (f"\n{after}" if after else ""))
    return [bd_csv, bd_md]

"""``inr-study report STUDY_DIR``: R-D files and BD-rate tables from a study's MLflow runs.

Writes to STUDY_DIR/reports/: one CompressAI-format JSON per (codec, loss) whose points are the mean
of per-image values at one λ / NIF width / quality, a per-image CSV of every finished trial, and
BD-rate tables (``bjontegaard``, PCHIP interpolation, on the overlapping quality range) of each loss
against the codec's original loss, for PSNR, MS-SSIM dB and LPIPS.
"""

import argparse
import csv
import math
import warnings
from collections import defaultdict
from pathlib import Path

import bjontegaard

from study.layout import REPORTS_DIR, load_study_config, tracking_location
from study.metrics import aggregate
from study.rd import compressai_document, write_json
from study.tracking import RunStore

# The loss each codec's reference implementation trains with: the BD-rate anchor.
ORIGINAL_LOSS = {"coolchic-v1": "mse", "coolchic-v2": "mse", "nif": "lc_ssim(0.01)"}
RATE_PARAMS = ("lmbda", "configuration", "quality")
MEAN_KEYS = ("bpp", "psnr", "ssim", "ms_ssim", "ms_ssim_db", "lpips", "encode_s", "decode_s")
BD_METRICS = ("psnr", "ms_ssim_db", "lpips")
CSV_COLUMNS = (
    "codec",
    "loss",
    "alpha",
    *RATE_PARAMS,
    "preset",
    "image",
    "seed",
    "bpp",
    "bpp_estimate",
    "psnr",
    "ssim",
    "ms_ssim",
    "ms_ssim_db",
    "lpips",
    "encode_seconds",
    "decode_seconds",
    "mac_per_pixel",
    "network_parameters",
    "peak_memory_mb",
    "run_id",
)


def study_records(folder: Path) -> tuple[list[dict], str]:
    """Finished trial records of a study folder and its name."""
    config = load_study_config(folder)
    store = RunStore(*tracking_location(folder, config), folder / "mlartifacts")
    return store.records(), config.name


def curve_label(record: dict) -> str:
    loss = record.get("loss")
    return record["codec"] if loss is None else f"{record['codec']}__{loss}"


def rate_setting(record: dict):
    return next(record[k] for k in RATE_PARAMS if record.get(k) is not None)


def rd_points(records: list[dict]) -> dict[str, list[dict]]:
    """Per (codec, loss): mean of per-image values at each rate setting, over all images only."""
    curves = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.get("search"):
            continue  # search samples are not a designed R-D curve
        # CompressAI's time keys are those of the baselines runner: encode_s, decode_s.
        row = {
            **record,
            "encode_s": record.get("encode_seconds"),
            "decode_s": record.get("decode_seconds"),
        }
        curves[curve_label(record)][rate_setting(record), record.get("seed", 0)].append(row)
    result = {}
    for label, by_setting in curves.items():
        images = {row["image"] for rows in by_setting.values() for row in rows}
        points = []
        for (setting, _seed), rows in sorted(by_setting.items(), key=lambda kv: str(kv[0])):
            if {row["image"] for row in rows} != images:
                continue  # a mean over a subset of images is not comparable
            points.append({**aggregate(rows, MEAN_KEYS), "setting": setting})
        result[label] = points
    return result


def bd_rate(anchor: list[dict], test: list[dict], metric: str) -> float | None:
    """BD-rate (%) of ``test`` against ``anchor``; None where it cannot be computed (fewer than
    two points, a missing metric, no overlap, or a curve not monotonic in quality)."""

    def curve(points):
        pairs = [(p["bpp"], p.get(metric)) for p in points]
        if len(pairs) < 2 or any(v is None for _, v in pairs):
            return None
        # LPIPS falls as quality rises: BD integrates rate over increasing quality.
        return sorted(((r, -v if metric == "lpips" else v) for r, v in pairs), key=lambda p: p[1])

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


def bd_rate_rows(curves: dict[str, list[dict]]) -> list[dict]:
    rows = []
    for label, points in sorted(curves.items()):
        codec, _, loss = label.partition("__")
        anchor = ORIGINAL_LOSS.get(codec)
        if not loss or anchor is None or loss == anchor or f"{codec}__{anchor}" not in curves:
            continue
        row = {"codec": codec, "loss": loss, "anchor": anchor}
        for metric in BD_METRICS:
            row[f"bd_rate_{metric}"] = bd_rate(curves[f"{codec}__{anchor}"], points, metric)
        rows.append(row)
    return rows


def _format(value) -> str:
    return "n/a" if value is None else f"{value:+.2f} %"


def markdown_table(rows: list[dict]) -> str:
    lines = [
        "BD-rate of each loss against the codec's original loss (negative = fewer bits for the "
        "same quality), PCHIP on the overlapping range of dataset-mean curves; n/a = fewer than "
        "two points, metric missing, no overlap or non-monotonic curve.",
        "",
        "| codec | loss | anchor | PSNR | MS-SSIM dB | LPIPS |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        values = " | ".join(_format(row[f"bd_rate_{m}"]) for m in BD_METRICS)
        lines.append(f"| {row['codec']} | {row['loss']} | {row['anchor']} | {values} |")
    return "\n".join(lines) + "\n"


def write_reports(folder: Path) -> list[Path]:
    records, name = study_records(folder)
    out = folder / REPORTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    written = []
    csv_path = out / "per_image.csv"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(sorted(records, key=lambda r: (curve_label(r), str(rate_setting(r)))))
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
        columns = ["codec", "loss", "anchor", *(f"bd_rate_{m}" for m in BD_METRICS)]
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    bd_md = out / "bd_rate.md"
    bd_md.write_text(markdown_table(rows))
    written += [bd_csv, bd_md]
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study report", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    args = parser.parse_args(argv)
    written = write_reports(args.folder)
    print((args.folder / REPORTS_DIR / "bd_rate.md").read_text())
    print(f"wrote {len(written)} files to {args.folder / REPORTS_DIR}")
    return 0

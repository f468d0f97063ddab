"""What each INR curve's fits spent: the budget a codec comparison is made at.

A recipe that warms up several candidates and keeps one (COOL-CHIC) spends part of its iterations
on models it throws away; one that trains a single model (C3, NIF) spends them all on the file it
writes. Iterations in all say neither, so a comparison states the kept model's iterations, the
warm-up's and the wall time per fit, each as the median [min–max] over the fits of each codec,
preset and loss (a search's fits included).
"""

import csv
import statistics
from pathlib import Path

from inr_models import fits_network
from inr_models.base import BUDGET_FIGURES, ENCODE_SECONDS

# The wall time of a fit, beside the budget its codec reports.
BUDGET_KEYS = (*BUDGET_FIGURES, ENCODE_SECONDS)


def budget_rows(records: list[dict]) -> list[dict]:
    """One row per INR (codec, preset, loss): fits, then median / min / max of each budget key
    (None where no fit recorded it)."""
    groups: dict[tuple, list[dict]] = {}
    for record in records:
        if fits_network(record["codec"]):
            key = (record["codec"], record.get("preset") or "", record.get("loss") or "")
            groups.setdefault(key, []).append(record)
    rows = []
    for (codec, preset, loss), fits in sorted(groups.items()):
        row = {"codec": codec, "preset": preset, "loss": loss, "fits": len(fits)}
        for key in BUDGET_KEYS:
            values = [r[key] for r in fits if r.get(key) is not None]
            row[f"{key}_median"] = statistics.median(values) if values else None
            row[f"{key}_min"] = min(values, default=None)
            row[f"{key}_max"] = max(values, default=None)
        rows.append(row)
    return rows


def _spread(row: dict, key: str, digits: str) -> str:
    median, low, high = (row[f"{key}_{part}"] for part in ("median", "min", "max"))
    if median is None:
        return "not recorded"
    if low == high:
        return format(median, digits)
    return f"{median:{digits}} [{low:{digits}}–{high:{digits}}]"


def budget_markdown(rows: list[dict]) -> str:
    lines = [
        "Budget per fit, as the median [min–max] over the fits of each codec, preset and loss (a "
        "search's fits included): iterations of the model "
        "the file is written from (its warm-up rounds included), iterations spent on the warm-up "
        "of every candidate (the kept one's rounds included, so the two counts overlap), and wall "
        "time of the fit (encoding included; it depends on the machine, the threads and whatever "
        "else ran beside the fit).",
        "",
        "| codec | preset | loss | fits | "
        + "".join(f"{label} | " for label in BUDGET_FIGURES.values())
        + "wall time per fit (s) |",
        "|---|---|---|---|" + "---|" * (len(BUDGET_FIGURES) + 1),
    ]
    for row in rows:
        budget = "".join(f"{_spread(row, key, ',.0f')} | " for key in BUDGET_FIGURES)
        lines.append(
            f"| {row['codec']} | {row['preset']} | {row['loss']} | {row['fits']} | {budget}"
            f"{_spread(row, ENCODE_SECONDS, '.0f')} |"
        )
    return "\n".join(lines) + "\n"


def write_budgets(rows: list[dict], table: str, out: Path) -> list[Path]:
    """``rows`` as budgets.csv, their ``budget_markdown`` ``table`` as budgets.md."""
    csv_path, md_path = out / "budgets.csv", out / "budgets.md"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    md_path.write_text(table)
    return [csv_path, md_path]

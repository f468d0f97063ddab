"""How much of a grid study's plan its records hold. A study grown a part at a time (shards run
here and on lent GPUs, imported as they finish) is published before it is complete: its reports
then say how many of the planned trials are in, per codec, loss and rate setting, and which
images each setting still lacks."""

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

COVERAGE_FILE = "coverage.md"


def coverage_rows(planned: Sequence, recorded_keys: set[str]) -> list[dict]:
    """One row per codec × loss × rate setting of ``planned`` (the plan's trial specs): trials
    planned (an image and a seed each), trials recorded, and what is missing (the image, with its
    seed where its codec is planned with several: a classical codec has one)."""
    seeds = defaultdict(set)
    for spec in planned:
        seeds[spec.codec].add(spec.seed)
    groups = defaultdict(lambda: {"planned": 0, "recorded": 0, "missing": []})
    for spec in planned:
        group = groups[spec.codec, spec.loss or "", spec.rate_axis.name, spec.rate]
        group["planned"] += 1
        if spec.key in recorded_keys:
            group["recorded"] += 1
        else:
            several = len(seeds[spec.codec]) > 1
            group["missing"].append(f"{spec.image} (seed {spec.seed})" if several else spec.image)
    return [
        {"codec": c, "loss": loss, "axis": axis, "rate": rate, **counts}
        for (c, loss, axis, rate), counts in groups.items()
    ]


def write_coverage(planned: Sequence, recorded_keys: set[str], out: Path) -> list[Path]:
    """``out/coverage.md`` for a study that lacks some planned trials; none (and any earlier one
    removed) for a complete study."""
    path = Path(out) / COVERAGE_FILE
    rows = coverage_rows(planned, recorded_keys)
    recorded = sum(r["recorded"] for r in rows)
    if recorded == len(planned):
        path.unlink(missing_ok=True)
        return []
    lines = [
        f"# Partial study: {recorded} of {len(planned)} planned trials recorded",
        "",
        "The curves and tables of this folder come from the trials recorded so far. Where "
        "curves hold different images, the figure draws every curve over the images all of them "
        "hold at every rate setting (named in its caption), the BD-rate tables' *curve* column "
        "compares each pair over the images both hold (named in the cell), the per-image "
        "BD-rates and their intervals compare each image's own curves, and each curve's R-D "
        "file is its whole curve over the images it holds at every rate setting (named in its "
        "description). Each rate setting: "
        "the trials it has (an image and a seed each), of those planned, and those missing.",
        "",
        "| codec | loss | rate setting | recorded | missing images |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        missing = ", ".join(row["missing"]) or "none"
        setting = f"{row['axis']} {row['rate']}"
        lines.append(
            f"| {row['codec']} | {row['loss'] or '—'} | {setting} | "
            f"{row['recorded']} of {row['planned']} | {missing} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return [path]

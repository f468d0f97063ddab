"""The α tables of a match-mode search (``reports/alpha.md`` and ``alpha.csv``), written from
what ``study.results.alpha`` finds in its fits: per task and α, the best α with its paired
intervals, the families side by side per architecture and rate, the images an α missed the
target on, and the fits a reseeded match made."""

import csv
from pathlib import Path

from inr_models import get_codec_class
from losses import get_family
from study.results.alpha import (
    alpha_rows,
    architecture_rows,
    clearly_better,
    matched_fits,
    off_target,
    reseeded,
    settled,
)
from study.results.table import get_metric

ALPHA_TABLE = "alpha"  # reports/alpha.md and alpha.csv


def write_alpha_tables(
    records: list[dict],
    out: Path,
    metric: str,
    metrics: list[str],
    tolerance: float,
    images: list[str] | None = None,
    grid: dict[str, list[float]] | None = None,
) -> list[Path]:
    """``alpha.md`` and ``alpha.csv`` for a match-mode search's records (on the study's
    ``images`` and α ``grid`` when known); none without matches."""
    matched = matched_fits(records, tolerance)
    rows = alpha_rows(matched, metric, metrics, images, grid)
    if not rows:
        return []
    out.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out / f"{ALPHA_TABLE}.csv", out / f"{ALPHA_TABLE}.md"
    columns = ["task", "codec", "family", "target_bpp", "alpha", "images", "of", "on_target"]
    columns += ["bpp", *metrics, "best", "as_good", "alphas_in", "alphas_planned"]
    for name in ("default", "zero"):
        columns += [f"vs_{name}_alpha", *(f"vs_{name}_{k}" for k in ("mean", "t_low", "t_high"))]
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            as_good = row.get("as_good")
            flat["as_good"] = "none" if as_good == [] else " ".join(f"{a:g}" for a in as_good or [])
            for name in ("default", "zero"):
                summary = row.get(f"vs_{name}")
                for key in ("mean", "t_low", "t_high"):
                    flat[f"vs_{name}_{key}"] = getattr(summary, key, None) if summary else None
            writer.writerow(flat)
    architectures = architecture_rows(rows, matched, metric)
    md_path.write_text(
        _markdown(rows, metric, metrics, tolerance)
        + _architecture_markdown(architectures, metric)
        + _off_target_markdown(off_target(matched, rows), tolerance)
        + _reseeded_markdown(reseeded(matched))
    )
    return [csv_path, md_path]


def _so_far(row: dict) -> str:
    """How many of the planned α a best that is not settled was chosen from; empty otherwise."""
    if settled(row):
        return ""
    return f"so far: {row['alphas_in']} of {row['alphas_planned']} α on target"


def _markdown(rows: list[dict], metric: str, metrics: list[str], tolerance: float) -> str:
    label = get_metric(metric).display
    lines = [
        "# Loss weights at matched rate",
        "",
        f"Each α's fit on every image at the rate setting whose file lands within ±{tolerance:.0%} "
        "of the target (on target; the nearest such, else the nearest of all); means over images. "
        f"**Best**: the α with the best mean {label} among those on target on every image; beside "
        f"it, the mean per-image difference in {label} against the family's default α (with its "
        "source where it was published) and against α = 0 (> 0: the best α is better), with its "
        "95 % t-interval over images (— where that α is the best itself, was not measured, or is "
        "not on target on every image), and the other α on target whose difference from the best "
        "that "
        "interval does not exclude (as good as the best, as far as these images tell; with one "
        "image there is no interval and every α on target counts). Until every α the study "
        "plans for the task is on target on every image, its best is the best so far: it says "
        "how many of them are.",
        "",
        "| task | α | images (on target) | bpp | "
        + " | ".join(get_metric(m).display for m in metrics)
        + " | best: against default α | against α = 0 | as good as the best |",
        "|---|---|---|---|" + "---|" * len(metrics) + "---|---|---|",
    ]
    for row in rows:
        values = " | ".join(_format(row[m], m) for m in metrics)
        against = " | ".join(
            f"{_alpha_text(row[f'vs_{n}_alpha'])}{_source(row, n)}: "
            f"{_difference(row[f'vs_{n}'], metric)}"
            if row.get(f"vs_{n}")
            else "—"
            for n in ("default", "zero")
        )
        name = "—" if row["alpha"] is None else f"{row['alpha']:g}"
        so_far = _so_far(row)
        name = f"**{name}**{f' ({so_far})' if so_far else ''}" if row["best"] else name
        lines.append(
            f"| {row['task']} | {name} | {row['images']} of {row['of']} ({row['on_target']}) | "
            f"{row['bpp']:.3f} | {values} | "
            + (f"{against} | {_as_good(row)} |" if row["best"] else " |  |  |")
        )
    return "\n".join(lines) + "\n"


def _source(row: dict, against: str) -> str:
    """Where the family's default α was published, after that α; empty otherwise."""
    family = get_family(row["family"]) if against == "default" and row["family"] else None
    return f" ({family.alpha_source})" if family is not None and family.alpha_source else ""


def _as_good(best: dict) -> str:
    if best["as_good"] is None:
        return "—"  # no other α on target to compare with
    return ", ".join(f"α {a:g}" for a in best["as_good"]) or "none"


def _architecture_markdown(architectures: list[dict], metric: str) -> str:
    """Per codec and target, each family's best α side by side and the better family."""
    if not architectures:
        return ""
    label = get_metric(metric).display
    families = list(
        dict.fromkeys(
            f for a in architectures for f in [*(r["family"] for r in a["bests"]), *a["unmatched"]]
        )
    )
    names = [get_family(f).label if f else "—" for f in families]
    lines = [
        "",
        "## Per architecture and rate",
        "",
        f"Each loss family's best α on target (with the α as good as it, above; the best so far "
        f"while some planned α are not on target) and its mean "
        f"{label}; where several families have one, the better family's mean per-image "
        f"difference in {label} against each other family's best (> 0: better), with its 95 % "
        "t-interval over images, and whether that interval excludes 0 (better) or not (not "
        'told apart), said "so far" where a best compared is the best so far or a family '
        "measured there has no α on target yet.",
        "",
        "| codec | target | " + " | ".join(names) + " | better |",
        "|---|---|" + "---|" * len(families) + "---|",
    ]
    for group in architectures:
        by_family = {r["family"]: r for r in group["bests"]}
        cells = []
        for family in families:
            row = by_family.get(family)
            if row is None:
                cells.append("no α on target yet" if family in group["unmatched"] else "—")
                continue
            tied = ", ".join(f"{a:g}" for a in row["as_good"] or [])
            notes = [f"as good: {tied}" if tied else "", _so_far(row)]
            note = "; ".join(n for n in notes if n)
            cells.append(
                f"{_alpha_text(row['alpha'])}{f' ({note})' if note else ''}: "
                f"{_format(row[metric], metric)}"
            )
        winner = group["winner"]
        verdicts = []
        for other, summary in group["versus"]:
            told = "better" if clearly_better(summary) else "not told apart"
            verdicts.append(
                f"against {other['family']} {_alpha_text(other['alpha'])}: "
                f"{_difference(summary, metric)} ({told})"
            )
        better = "—"
        if verdicts or group["unmatched"]:
            better = "; ".join([f"{winner['family']} {_alpha_text(winner['alpha'])}", *verdicts])
            if not group["settled"]:
                better = f"so far: {better}"
        lines.append(
            f"| {group['codec']} | {group['target_bpp']:g} bpp | "
            + " | ".join(cells)
            + f" | {better} |"
        )
    return "\n".join(lines) + "\n"


def _off_target_markdown(missed: list[dict], tolerance: float) -> str:
    """The images each α missed the target on, with the fits nearest it on either side."""
    return _section(
        "Off target",
        f"Each image on which an α's closest fit lands outside ±{tolerance:.0%} of the target, "
        "with the fits nearest the target above and below it. Where those two settings are "
        "neighbours (on a continuous axis such as λ, closer than the matcher's 1 % step; on a "
        "discrete one such as a width, adjacent values), the file size jumps across the target "
        "between them: no setting in between lands it (another seed might, its jumps lying "
        "elsewhere). Where one side has none, every fit landed on the other: at the axis's end, "
        "at the only value the codec's entry lists, or when the fit budget ran out. A match an "
        "interrupted run cut short shows here too until a resume finishes it.",
        ["task", "α", "image", "fits", "nearest above the target", "nearest below"],
        [
            [
                m["task"],
                _alpha_cell(m["alpha"]),
                m["image"],
                m["fits"],
                _fit_text(m["above"]),
                _fit_text(m["below"]),
            ]
            for m in missed
        ],
    )


def _reseeded_markdown(fits: list[dict]) -> str:
    """The images whose matched fit came from a further seed."""
    return _section(
        "Matched with a further seed",
        "Where the first seed's fits straddled the target without landing on it, the match went "
        "on with the next seeds (`search.jump_seeds`); these fits count above. Seed-to-seed "
        "noise then enters that image's differences.",
        ["task", "α", "image", "seed (first tried)", "matched fit"],
        [
            [
                f["search"],
                _alpha_cell(f["alpha"]),
                f["image"],
                f"{f.get('seed')} ({f['first_seed']})",
                _fit_text(f),
            ]
            for f in fits
        ],
    )


def _section(title: str, intro: str, columns: list[str], rows: list[list]) -> str:
    """A titled Markdown table with its introduction; empty without rows."""
    if not rows:
        return ""
    lines = ["", f"## {title}", "", intro, "", "| " + " | ".join(columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _alpha_cell(alpha: float | None) -> str:
    return "—" if alpha is None else f"{alpha:g}"


def _fit_text(fit: dict | None) -> str:
    """A fit's rate setting as its codec names it, and its bpp; "none" without one."""
    if fit is None:
        return "none"
    try:
        setting = get_codec_class(fit["codec"]).rate_axis.describe(fit.get("rate"))
    except KeyError:  # a plugin codec this process has not imported
        setting = f"{fit.get('rate_parameter') or 'setting'} {fit.get('rate')}"
    return f"{setting}: {fit['bpp']:.3f} bpp"


def _format(value: float | None, metric: str) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if get_metric(metric).unit == "" else f"{value:.2f}"


def _alpha_text(alpha: float | None) -> str:
    return "no α" if alpha is None else f"α {alpha:g}"


def _difference(summary, metric: str) -> str:
    """A paired difference: mean [t-interval], n; "—" when there is none (not at matched rate
    on every image)."""
    if summary is None:
        return "—"
    digits = 4 if get_metric(metric).unit == "" else 2
    interval = ""
    if summary.t_low is not None:
        interval = f" [{summary.t_low:+.{digits}f}, {summary.t_high:+.{digits}f}]"
    return f"{summary.mean:+.{digits}f}{interval}, n {summary.n}"

"""Static rate-distortion figures of a study (PNG), as the paper's Fig. 2.

One figure, a panel per plotted metric that has values (PSNR, MS-SSIM dB, LPIPS where it was
measured); every codec on the same axes, styled as ``dashboards.style`` declares (colour by loss
group, marker by base loss, dash by codec). A point is the mean over the study's images at one rate
setting, as in the reports, so a setting some image lacks a value for is left out; where the curves
hold different images (a study still growing), over the images all of them hold at every rate
setting. The caption gives the study's scale (images, how prepared, seeds) and those images.

Beside it, the visual comparison of the paper's Fig. 3: for one image and region, the original and
every curve's decoded crop at the rate setting nearest a chosen bitrate, each with its bpp and
metrics, enlarged without smoothing so that blur, ringing and colour shifts show.
"""

import argparse
from pathlib import Path

from dashboards.crops import bitrate, decoded_crops, default_choice, original_image
from dashboards.data import StudyData, from_folder, plotted_metrics
from dashboards.references import add_reference_option, reference_curves
from dashboards.style import (
    GROUP_COLOUR_NAMES,
    GROUP_LABELS,
    GROUP_SHADES,
    REFERENCE,
    curve_styles,
)
from study.layout import REPORTS_DIR
from study.results.rd import curve_over, designed_curves, rd_points
from study.results.table import get_metric

PANEL_INCHES = (5.2, 4.4)
DPI = 150
FIGURE_NAME = "rd.png"


def _curves(data: StudyData) -> list[dict]:
    """Each (codec, loss) curve with its points and style, in the style's order; where the curves
    hold different images, each curve's means over those all of them hold (``curve_images``)."""
    styles = curve_styles(data.records)
    if over := data.curve_images:
        by_label = {
            label: curve_over(rows, over) for label, rows in designed_curves(data.records).items()
        }
    else:
        by_label = rd_points(data.records)
    curves = [
        {"label": label, "points": points, "style": styles[label]}
        for label, points in by_label.items()
    ]
    return sorted(curves, key=lambda c: c["style"].rank)


def _panel(axis, curves: list[dict], references: list[dict], key: str, log_rate: bool) -> None:
    for curve in curves:
        pairs = sorted((p["bpp"], p[key]) for p in curve["points"] if p.get(key) is not None)
        if pairs:
            style = curve["style"]
            axis.plot(*zip(*pairs, strict=True), label=style.name, **style.matplotlib())
    for reference in references:
        if key in reference:
            axis.plot(
                reference["bpp"],
                reference[key],
                label=reference["label"],
                color=REFERENCE.colour,
                linestyle=REFERENCE.dash.matplotlib,
                linewidth=REFERENCE.width,
            )
    if log_rate:
        axis.set_xscale("log")
    axis.set_xlabel("rate (bpp)" + (", log scale" if log_rate else ""))
    axis.set_ylabel(get_metric(key).axis_label)
    axis.grid(alpha=0.3, which="both" if log_rate else "major")


def draw(
    data: StudyData, out: Path, references: list[dict] = (), log_rate: bool = False
) -> tuple[list[Path], list[str]]:
    """Write the figure into ``out``; returns the files and the plotted metrics left out (no
    point with a value on every image)."""
    # A Figure without pyplot: no global backend or figure registry for a library caller to inherit.
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    curves = _curves(data)
    shown, skipped = [], []
    for key in plotted_metrics(data.records):
        has_values = any(p.get(key) is not None for c in curves for p in c["points"])
        (shown if has_values else skipped).append(key)
    if not shown:
        return [], skipped
    width, height = PANEL_INCHES
    figure = Figure(figsize=(width * len(shown), height + 0.9), layout="constrained")
    axes = figure.subplots(1, len(shown), squeeze=False)[0]
    for axis, key in zip(axes, shown, strict=True):
        _panel(axis, curves, references, key, log_rate)
    handles, labels = axes[0].get_legend_handles_labels()
    figure.legend(
        handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize=8
    )
    groups = "; ".join(
        f"{GROUP_COLOUR_NAMES[group]}: {GROUP_LABELS[group]}"
        for group in GROUP_SHADES
        if any(c["style"].group == group for c in curves)
    )
    figure.suptitle(
        f"{data.title}: mean over {data.scale(of_curves=True)}\n"
        f"{groups}; marker: base loss; dash: codec",
        fontsize=9,
    )
    path = out / FIGURE_NAME
    figure.savefig(path, dpi=DPI)
    return [path], skipped


def draw_visual(crops: list, path: Path, image: str, bpp: float, columns: int = 4) -> Path:
    """The crops (``dashboards.crops.Crop``, the original first) on a grid, captions below."""
    from matplotlib.figure import Figure

    rows = -(-len(crops) // columns)
    figure = Figure(figsize=(3.4 * min(columns, len(crops)), 3.9 * rows), layout="constrained")
    axes = figure.subplots(rows, min(columns, len(crops)), squeeze=False).flatten()
    for axis in axes[len(crops) :]:
        axis.set_axis_off()
    for axis, crop in zip(axes, crops, strict=False):
        axis.imshow(crop.pixels, interpolation="nearest")
        axis.set_xticks([])
        axis.set_yticks([])
        name, _, figures = crop.caption.partition(": ")
        axis.set_title(name, fontsize=8)
        axis.set_xlabel(figures.replace(", ", "\n", 1), fontsize=7)  # kept inside the layout
    figure.suptitle(f"{image}: each curve's rate setting nearest {bpp:.3g} bpp", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=DPI)
    return path


def draw_seed_spread(data: StudyData, out: Path) -> Path | None:
    """Per configuration fitted with several seeds: each image's BD-rate between two seeds, per
    metric and seed pair, with the noise floor (``study.results.seeds``); None without one."""
    from matplotlib.figure import Figure

    from study.results.comparisons import bd_metrics
    from study.results.seeds import seed_spread_rows

    rows = seed_spread_rows(data.records, bd_metrics(data.records))
    if not rows:
        return None
    configurations = list(dict.fromkeys((r["codec"], r["loss"]) for r in rows))
    figure = Figure(figsize=(5.2 * len(configurations), 4.2), layout="constrained")
    axes = figure.subplots(1, len(configurations), squeeze=False)[0]
    for axis, (codec, loss) in zip(axes, configurations, strict=True):
        mine = [r for r in rows if (r["codec"], r["loss"]) == (codec, loss)]
        for x, row in enumerate(mine):
            pairs = list(row["per_image"].items())
            for k, ((a, b), values) in enumerate(pairs):
                offset = x + (k - (len(pairs) - 1) / 2) * 0.18
                axis.plot([offset] * len(values), values, "o", alpha=0.6, markersize=4,
                          color=f"C{k}", label=f"seed {a} vs {b}" if x == 0 else None)  # fmt: skip
                axis.plot([offset - 0.07, offset + 0.07], [row["pairs"][a, b]] * 2, "k-")
            axis.plot([x - 0.4, x + 0.4], [row["floor"]] * 2, "r--", linewidth=1,
                      label="floor (largest pair mean)" if x == 0 else None)  # fmt: skip
            axis.plot([x - 0.4, x + 0.4], [-row["floor"]] * 2, "r--", linewidth=1)
        axis.axhline(0, color="#999999", linewidth=0.8)
        axis.set_xticks(range(len(mine)), [get_metric(r["metric"]).display for r in mine])
        axis.set_ylabel("BD-rate between seeds (%), per image")
        axis.set_title(f"{codec} · {loss}", fontsize=9)
        axis.legend(fontsize=7)
    figure.suptitle(f"{data.title}: seed-to-seed noise over {data.scale()}", fontsize=9)
    path = out / "seed_spread.png"
    figure.savefig(path, dpi=DPI)
    return path


def alpha_figure_metrics(columns: list[str]) -> list[str]:
    """The α figure's rows, from ``alpha.csv``'s columns: the judged metric (the first after
    bpp), then the one the search would prefer after it (``Metric.auto_search_rank``)."""
    judged, *others = columns[columns.index("bpp") + 1 : columns.index("best")]
    ranked = sorted(
        (get_metric(k) for k in others if get_metric(k).auto_search_rank is not None),
        key=lambda m: m.auto_search_rank,
    )
    return [judged, *(m.key for m in ranked[:1])]


def _best_settled(row: dict) -> bool:
    """``alpha.settled`` for an ``alpha.csv`` row (one written before the count was kept: yes)."""
    from study.results.alpha import settled

    planned = row.get("alphas_planned")
    counts = {"alphas_in": int(row.get("alphas_in") or 0)}
    return settled({**counts, "alphas_planned": int(planned) if planned else None})


def draw_alpha(folder: Path, out: Path) -> Path | None:
    """Quality against α at matched rate (``reports/alpha.csv`` of a match-mode search): a
    column per codec and loss family, a row for the judged metric and one for the table's next
    metric in the search's preference (``Metric.auto_search_rank``), a line
    per target bitrate, the family's default α dashed; None without the table or without an α
    on target on every image."""
    import csv

    from matplotlib.figure import Figure

    from losses import get_family
    from study.results.alpha_tables import ALPHA_TABLE

    table = Path(folder) / REPORTS_DIR / f"{ALPHA_TABLE}.csv"
    if not table.exists():
        return None
    with table.open(newline="") as f:
        reader = csv.DictReader(f)
        # Only α at matched rate on every image: a match cut short, or one far off its target,
        # would draw quality at another rate.
        rows = [r for r in reader if r["alpha"] and r["images"] == r["of"] == r["on_target"]]
        columns = reader.fieldnames
    metrics = alpha_figure_metrics(columns)
    panels = list(dict.fromkeys((r["codec"], r["family"]) for r in rows))
    if not panels:
        return None
    figure = Figure(figsize=(4.2 * len(panels), 3.4 * len(metrics)), layout="constrained")
    axes = figure.subplots(len(metrics), len(panels), squeeze=False)
    for column, (codec, family) in enumerate(panels):
        mine = [r for r in rows if (r["codec"], r["family"]) == (codec, family)]
        for row_index, metric in enumerate(metrics):
            axis = axes[row_index][column]
            for k, target in enumerate(dict.fromkeys(r["target_bpp"] for r in mine)):
                at_target = sorted(
                    (r for r in mine if r["target_bpp"] == target and r[metric]),
                    key=lambda r: float(r["alpha"]),
                )
                if not at_target:
                    continue
                xs = [float(r["alpha"]) for r in at_target]
                ys = [float(r[metric]) for r in at_target]
                axis.plot(xs, ys, "o-", color=f"C{k}", label=f"{float(target):g} bpp")
                for r in (r for r in at_target if r["best"] == "True"):
                    fill = f"C{k}" if _best_settled(r) else "none"
                    axis.plot(float(r["alpha"]), float(r[metric]), "*", markersize=13,
                              color=f"C{k}", markerfacecolor=fill)  # fmt: skip
            default = get_family(family).alpha_default if get_family(family) else None
            if default is not None:
                axis.axvline(default, color="#777777", linestyle="--", linewidth=1)
            axis.set_xlabel("α (dashed: the family's default α)")
            axis.set_ylabel(get_metric(metric).axis_label)
            axis.set_title(f"{codec} · {family}", fontsize=9)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
    figure.suptitle(
        f"{Path(folder).resolve().name}: quality against α at matched rate\n(mean over "
        f"images; only α on target on every image; ★ best in {get_metric(metrics[0]).label}, "
        "open: so far, some planned α not in)",
        fontsize=9,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / "alpha.png"
    figure.savefig(path, dpi=DPI)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study figures", description=__doc__)
    parser.add_argument(
        "folder", type=Path, help="a study folder (holds study.yaml), or a published copy"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the PNGs")
    parser.add_argument("--log-rate", action="store_true", help="rate axis in log scale")
    add_reference_option(parser)
    parser.add_argument("--crops-image", help="image of the visual comparison (default: first)")
    parser.add_argument(
        "--crops-bpp", type=bitrate, help="bitrate of the visual comparison (default: median)"
    )
    parser.add_argument(
        "--crop-size", type=int, default=128, help="side of the region in pixels (default: 128)"
    )
    parser.add_argument(
        "--crop-at", type=_corner, help="TOP,LEFT pixel of the region (default: centred)"
    )
    args = parser.parse_args(argv)
    data = from_folder(args.folder)
    references, reference_notes = reference_curves(
        args.reference, data.image_set(), args.unmatched_references
    )
    written, skipped = draw(data, args.output, references, args.log_rate)
    spread = draw_seed_spread(data, args.output)
    alpha = draw_alpha(args.folder, args.output)
    written += [p for p in (spread, alpha) if p]
    image, bpp = default_choice(data, args.crops_image, args.crops_bpp) or (None, None)
    if data.store is None:  # a published copy keeps no decoded images
        print("no visual comparison: a published copy keeps no decoded images")
    elif image is not None:
        original = original_image(args.folder, image)
        crops = decoded_crops(data, image, bpp, args.crop_size, original, args.crop_at)
        written.append(draw_visual(crops, args.output / f"visual_{image}.png", image, bpp))
    for path in written:
        print(path)
    for note in reference_notes:
        print(note)
    for key in skipped:
        print(
            f"no panel for {get_metric(key).display}: no curve has a value for it on every image "
            "at any rate setting (a metric recorded as missing: see `inr-study rescore`)"
        )
    return 0


def _corner(text: str) -> tuple[int, int]:
    try:
        top, left = (int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected TOP,LEFT in pixels, got {text!r}") from None
    return top, left

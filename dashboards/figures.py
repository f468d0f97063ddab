"""Static rate-distortion figures of a study (PNG), one per plotted metric, as the paper's Fig. 2.

Each figure has a panel per INR codec with one curve per training loss; the classical codecs are
drawn in every panel for reference. A point is the mean over the study's images at one rate setting,
as in the reports, so a setting some image lacks a value for is left out. A metric with no such
point anywhere (LPIPS without its weights) gets no figure and a note.
"""

import argparse
from pathlib import Path

from dashboards.data import (
    StudyData,
    add_reference_option,
    from_study,
    plotted_metrics,
    reference_curves,
    vocabulary,
)
from dashboards.style import (
    CLASSICAL,
    CLASSICAL_MARKERS,
    INR_MARKERS,
    PLAIN_LOSS,
    REFERENCE,
    STRUCTURAL_LOSS,
    family_colour,
)
from study.results.rd import curve_label
from study.results.report import rd_points
from study.results.table import get_metric

PANEL_INCHES = (5.2, 4.2)
DPI = 150


def _curves(data: StudyData) -> list[dict]:
    """Each (codec, loss) curve with its points and style, in the declarations' order."""
    words = vocabulary(data.records)
    families = {f["name"]: i for i, f in enumerate(words["loss_families"])}
    structural = {f["name"] for f in words["loss_families"] if f["structural"]}
    inr = [c["name"] for c in words["codecs"] if c["fits_network"]]
    classical = [c["name"] for c in words["codecs"] if not c["fits_network"]]
    first = {}
    for record in data.records:
        first.setdefault(curve_label(record), record)
    curves = []
    for label, points in rd_points(data.records).items():
        record = first[label]
        codec, family = record["codec"], record.get("loss_family")
        if codec in inr:
            line = STRUCTURAL_LOSS if family in structural else PLAIN_LOSS
            colour = family_colour(families.get(family))
            marker = INR_MARKERS[inr.index(codec) % len(INR_MARKERS)]
            name = record["loss"]
        else:
            line, colour = CLASSICAL, CLASSICAL.colour
            marker = CLASSICAL_MARKERS[classical.index(codec) % len(CLASSICAL_MARKERS)]
            name = codec
        curves.append(
            {
                "codec": codec,
                "inr": codec in inr,
                "name": name,
                "points": points,
                "rank": ((inr + classical).index(codec), families.get(family, len(families)), name),
                "style": {
                    "color": colour,
                    "linestyle": line.dash.matplotlib,
                    "linewidth": line.width,
                    "marker": marker.matplotlib,
                    "markersize": 5,
                },
            }
        )
    return sorted(curves, key=lambda c: c["rank"])


def _panel(axis, curves: list[dict], references: list[dict], key: str, title: str) -> None:
    drawn = 0
    for curve in curves:
        pairs = sorted((p["bpp"], p[key]) for p in curve["points"] if p.get(key) is not None)
        if pairs:
            axis.plot(*zip(*pairs, strict=True), label=curve["name"], **curve["style"])
            drawn += 1
    for reference in references:
        if key in reference:
            axis.plot(
                reference["bpp"],
                reference[key],
                label=f"{reference['name']} (reference)",
                color=REFERENCE.colour,
                linestyle=REFERENCE.dash.matplotlib,
                linewidth=REFERENCE.width,
            )
            drawn += 1
    axis.set_title(title)
    axis.set_xlabel("rate (bpp)")
    axis.set_ylabel(get_metric(key).display)
    axis.grid(alpha=0.3)
    if drawn:
        axis.legend(fontsize=7)
    else:
        axis.text(0.5, 0.5, "no point with a value on every image", ha="center",
                  transform=axis.transAxes)  # fmt: skip


def draw(data: StudyData, out: Path, references: list[dict] = ()) -> tuple[list[Path], list[str]]:
    """Write one PNG per plotted metric into ``out``; returns the files and the metrics skipped."""
    # A Figure without pyplot: no global backend or figure registry for a library caller to inherit.
    from matplotlib.figure import Figure

    out.mkdir(parents=True, exist_ok=True)
    curves = _curves(data)
    codecs = list(dict.fromkeys(c["codec"] for c in curves if c["inr"])) or [None]
    written, skipped = [], []
    for key in plotted_metrics():
        if not any(p.get(key) is not None for c in curves for p in c["points"]):
            skipped.append(key)
            continue
        width, height = PANEL_INCHES
        figure = Figure(figsize=(width * len(codecs), height), layout="tight")
        axes = figure.subplots(1, len(codecs), squeeze=False)[0]
        for axis, codec in zip(axes, codecs, strict=True):
            shown = [c for c in curves if c["codec"] == codec or not c["inr"]]
            _panel(axis, shown, references, key, codec or data.title)
        figure.suptitle(f"{data.title}: {get_metric(key).display}, mean over images", fontsize=10)
        path = out / f"rd_{key}.png"
        figure.savefig(path, dpi=DPI)
        written.append(path)
    return written, skipped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study figures", description=__doc__)
    parser.add_argument("folder", type=Path, help="a study folder (holds study.yaml)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for the PNGs")
    add_reference_option(parser)
    args = parser.parse_args(argv)
    written, skipped = draw(from_study(args.folder), args.output, reference_curves(args.reference))
    for path in written:
        print(path)
    for key in skipped:
        print(
            f"no figure for {get_metric(key).display}: no curve has a value for it on every image "
            "at any rate setting (a metric recorded as missing: see `inr-study rescore`)"
        )
    return 0

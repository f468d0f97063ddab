"""How curves look, for the interactive page and the static figures alike.

Styles follow the declarations' registration order, never names: a colour per loss family, a
marker per INR codec, dotted lines for families with a structural term, grey dashed lines with their
own markers for the classical codecs, a thin grey line for reference curves. Each marker and dash
has a Plotly and a Matplotlib spelling of a similar shape.
"""

from dataclasses import dataclass

FAMILY_COLOURS = (
    "#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22",
)  # fmt: skip
UNKNOWN_FAMILY_COLOUR = "#7f7f7f"


@dataclass(frozen=True)
class Glyph:
    plotly: str
    matplotlib: str


INR_MARKERS = (
    Glyph("square", "s"), Glyph("circle", "o"), Glyph("diamond", "D"), Glyph("triangle-up", "^"),
    Glyph("star", "*"), Glyph("hexagon", "h"), Glyph("cross", "P"), Glyph("pentagon", "p"),
    Glyph("triangle-down", "v"),
)  # fmt: skip
CLASSICAL_MARKERS = (
    Glyph("x", "x"), Glyph("triangle-left", "<"), Glyph("triangle-right", ">"),
    Glyph("octagon", "8"), Glyph("diamond-tall", "d"),
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    colour: str | None  # None: the loss family's colour
    dash: Glyph
    width: float


PLAIN_LOSS = Line(None, Glyph("solid", "-"), 2.0)
STRUCTURAL_LOSS = Line(None, Glyph("dot", ":"), 2.0)
CLASSICAL = Line("#555555", Glyph("dash", "--"), 1.5)
REFERENCE = Line("#999999", Glyph("longdash", "-."), 1.0)


def family_colour(index: int | None) -> str:
    return UNKNOWN_FAMILY_COLOUR if index is None else FAMILY_COLOURS[index % len(FAMILY_COLOURS)]


def _plotly_line(line: Line) -> dict:
    return {"color": line.colour, "dash": line.dash.plotly, "width": line.width}


def page_style() -> dict:
    """The palette as the page's script reads it (Plotly spellings)."""
    return {
        "family_colours": list(FAMILY_COLOURS),
        "unknown_family_colour": UNKNOWN_FAMILY_COLOUR,
        "inr_markers": [m.plotly for m in INR_MARKERS],
        "classical_markers": [m.plotly for m in CLASSICAL_MARKERS],
        "lines": {
            name: _plotly_line(line)
            for name, line in (
                ("plain_loss", PLAIN_LOSS),
                ("structural_loss", STRUCTURAL_LOSS),
                ("classical", CLASSICAL),
                ("reference", REFERENCE),
            )
        },
    }

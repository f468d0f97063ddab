"""How curves look, for the interactive page and the static figures alike: the paper's Fig. 2
convention, declared once.

- Colour by loss group: the codec's published loss green, point-wise losses red, losses with a
  structural (SSIM-type, perceptual) term blue; shades within a group follow the loss families'
  registration order, then α. One loss keeps its colour across codecs.
- Marker by base loss (a loss's first component: LogCosh + SSIM is a LogCosh).
- Line dash by INR codec (registration order), so codecs overlay on one axis; classical codecs
  grey and dashed with their own markers; reference curves thin grey.
- Names for people: "LogCosh + 0.01·(1 − SSIM)", with the codec in front when a study has several.

Styles follow declarations (codec registration, published losses, loss families, components),
never names. Each glyph has a Plotly and a Matplotlib spelling of a similar shape.
"""

from dataclasses import dataclass

from study.results.labels import curve_label

GROUP_SHADES = {
    "published": ("#1a9850", "#66bd63", "#006837", "#a6d96a"),
    "pointwise": ("#d73027", "#f46d43", "#a50026", "#fdae61", "#7f0000"),
    "structural": ("#2166ac", "#4393c3", "#053061", "#92c5de", "#5e3c99", "#8073ac"),
}
GROUP_LABELS = {
    "published": "the codec's published loss",
    "pointwise": "point-wise losses",
    "structural": "losses with a structural term",
}
# The shades' family in words, for captions that explain the colours.
GROUP_COLOUR_NAMES = {"published": "green", "pointwise": "red", "structural": "blue"}
UNKNOWN_LOSS_COLOUR = "#7f7f7f"


@dataclass(frozen=True)
class Glyph:
    plotly: str
    matplotlib: str


BASE_MARKERS = (
    Glyph("square", "s"), Glyph("circle", "o"), Glyph("diamond", "D"), Glyph("triangle-up", "^"),
    Glyph("star", "*"), Glyph("hexagon", "h"), Glyph("cross", "P"), Glyph("pentagon", "p"),
    Glyph("triangle-down", "v"),
)  # fmt: skip
CLASSICAL_MARKERS = (
    Glyph("x", "x"), Glyph("triangle-left", "<"), Glyph("triangle-right", ">"),
    Glyph("octagon", "8"), Glyph("diamond-tall", "d"),
)  # fmt: skip
CODEC_DASHES = (
    Glyph("solid", "-"), Glyph("dash", "--"), Glyph("dashdot", "-."), Glyph("dot", ":"),
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    colour: str | None  # None: the curve's own colour
    dash: Glyph
    width: float


CLASSICAL = Line("#555555", Glyph("dash", "--"), 1.5)
REFERENCE = Line("#999999", Glyph("longdash", "-."), 1.0)
INR_WIDTH = 2.0


@dataclass(frozen=True)
class CurveStyle:
    name: str
    colour: str
    dash: Glyph
    marker: Glyph
    width: float
    group: str | None  # a GROUP_SHADES key; None for classical codecs

    @property
    def rank(self) -> tuple[int, str]:
        """Drawing and legend order: published loss, point-wise, structural, classical codecs."""
        groups = list(GROUP_SHADES)
        return (groups.index(self.group) if self.group in groups else len(groups), self.name)

    def plotly(self) -> dict:
        return {
            "name": self.name,
            "line": {"color": self.colour, "dash": self.dash.plotly, "width": self.width},
            "marker": {"symbol": self.marker.plotly, "color": self.colour},
        }

    def matplotlib(self) -> dict:
        return {
            "color": self.colour,
            "linestyle": self.dash.matplotlib,
            "linewidth": self.width,
            "marker": self.marker.matplotlib,
            "markersize": 5,
        }


def _loss_facts(codec: str, loss: str) -> tuple[str, str, str, tuple]:
    """(group, display name, base component, shade order) of a loss spec trained with a codec."""
    from losses import available_components, available_families, parse_loss_spec
    from study.results.report import anchor_loss

    parsed = parse_loss_spec(loss)
    group = "structural" if parsed.structural else "pointwise"
    if parsed.name == anchor_loss(codec):
        group = "published"
    families = available_families()
    family = families.index(parsed.family) if parsed.family in families else len(families)
    order = (family, parsed.alpha or 0.0, parsed.name)
    base = available_components().index(parsed.base)
    return group, parsed.display, base, order


def curve_styles(records) -> dict[str, CurveStyle]:
    """Style of each (codec, loss) curve the trial records belong to (loss None: a classical
    codec), keyed as the reports label curves (``codec`` or ``codec__loss``)."""
    from inr_models import fits_network, registration_rank
    from losses import LossSpecError

    curves = sorted({(r["codec"], r.get("loss") or None) for r in records}, key=str)
    inr = sorted({c for c, loss in curves if loss and fits_network(c)}, key=registration_rank)
    classical = sorted(
        {c for c, loss in curves if not loss or not fits_network(c)}, key=registration_rank
    )
    facts = {}
    for codec, loss in curves:
        if codec in inr:
            try:
                facts[codec, loss] = _loss_facts(codec, loss)
            except LossSpecError:  # a loss of a plugin not loaded here
                facts[codec, loss] = (None, loss, len(BASE_MARKERS) - 1, (1e9, 0.0, loss))
    shades = {}
    for group in GROUP_SHADES:
        ordered = sorted({(f[3], loss) for (_, loss), f in facts.items() if f[0] == group})
        for rank, (_, loss) in enumerate(ordered):
            shades[group, loss] = GROUP_SHADES[group][rank % len(GROUP_SHADES[group])]
    styles = {}
    for codec, loss in curves:
        if (codec, loss) in facts:
            group, display, base, _ = facts[codec, loss]
            styles[curve_label(codec, loss)] = CurveStyle(
                name=f"{codec} · {display}" if len(inr) > 1 else display,
                colour=shades.get((group, loss), UNKNOWN_LOSS_COLOUR),
                dash=CODEC_DASHES[inr.index(codec) % len(CODEC_DASHES)],
                marker=BASE_MARKERS[base % len(BASE_MARKERS)],
                width=INR_WIDTH,
                group=group,
            )
        else:
            styles[curve_label(codec, loss)] = CurveStyle(
                name=codec,
                colour=CLASSICAL.colour,
                dash=CLASSICAL.dash,
                marker=CLASSICAL_MARKERS[classical.index(codec) % len(CLASSICAL_MARKERS)],
                width=CLASSICAL.width,
                group=None,
            )
    return styles


def page_style(records) -> dict:
    """What the page's script draws with (Plotly spellings): each curve's style, the reference
    line and the group legend."""
    return {
        "curves": {label: style.plotly() for label, style in curve_styles(records).items()},
        "reference": {
            "color": REFERENCE.colour,
            "dash": REFERENCE.dash.plotly,
            "width": REFERENCE.width,
        },
        "groups": {GROUP_SHADES[g][0]: label for g, label in GROUP_LABELS.items()},
    }

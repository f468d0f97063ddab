"""The paper's claims judged on a study's records, by one rule.

The claims are data (``claims_file``). Each of a claim's checks becomes lines (one per loss and
metric, and per rate setting at equal rate), each judged on the 95 % t-interval of its per-image
values: the statistics' honest interval at the few images a study here holds, where the Wilcoxon
test cannot reach 5 % once Holm adjusts it over a page of tests (its p-values are shown, not
used).

The interval is turned so that positive means the loss is ahead (fewer bits, or better quality at
the same bpp), and compared with zero and with the equivalence margin (``BD_RATE_MARGIN``, or the
metric's ``equal_rate_margin``):
- better: holds when the interval lies above zero; does not hold when it lies below zero, or
  inside the margin (on par); otherwise undecided;
- worse: the mirror image;
- on_par: holds when the interval lies inside the margin; does not hold when it lies wholly
  beyond it on one side; otherwise undecided;
- not_better / not_worse: holds when the interval does not reach past the margin on the ahead /
  behind side; does not hold when it lies wholly past it there.
"""

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from study.results.claims_file import CLAIMS_FILE, Claim, load_claims
from study.results.comparisons import Points, compare_curves, curve_points
from study.results.equal_rate import equal_rate_rows
from study.results.labels import curve_label, label_parts
from study.results.statistics import adjust_table
from study.results.table import get_metric

# A per-image mean BD-rate inside ±5 % is "on par": about the largest mean over 8 images of the
# BD-rate between two seeds of one fit (4.79 % in MS-SSIM dB; results/README.md, icip24-cpu-seeds).
BD_RATE_MARGIN = 5.0
HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
# A line with nothing to compare: a curve or metric the study lacks, curves that overlap too
# little, an anchor curve not spanning the trial's bpp, no rate setting in the claim's range.
UNTESTABLE = "n/a"
# (claim, codec, loss, against, metric, bpp range, expectation) -> the rate settings to judge.
Settings = Mapping[tuple, Collection] | None
# A claim none of whose lines has anything to compare.
NOT_TESTABLE = "not testable here"
# Added to a holding outcome where some lines have nothing to compare.
WHERE_TESTABLE = " where testable"


@dataclass(frozen=True)
class Line:
    """One judged comparison: a loss against its anchor in a metric (at one rate setting)."""

    claim: str
    codec: str
    loss: str
    against: str
    metric: str
    by: str
    expect: str
    summary: dict | None  # PairedSummary fields, or None where nothing could be compared
    rate: object = None  # equal rate: the setting (None: none in ``bpp_range``), its mean bpp
    bpp: float | None = None
    bpp_range: tuple[float | None, float | None] = (None, None)
    verdict: str = UNDECIDED
    why: str = ""


def judge(expect: str, low: float, high: float, margin: float) -> str:
    """The verdict on an interval of the loss's lead (positive: ahead) with this margin."""
    inside = -margin <= low and high <= margin
    if expect == "better":
        return HOLDS if low > 0 else FAILS if high < 0 or inside else UNDECIDED
    if expect == "worse":
        return HOLDS if high < 0 else FAILS if low > 0 or inside else UNDECIDED
    if expect == "on_par":
        return HOLDS if inside else FAILS if low > margin or high < -margin else UNDECIDED
    if expect == "not_better":
        return HOLDS if high <= margin else FAILS if low > margin else UNDECIDED
    if expect == "not_worse":
        return HOLDS if low >= -margin else FAILS if high < -margin else UNDECIDED
    raise ValueError(f"unknown expectation {expect!r}")


def _lead(line: Line) -> tuple[float, float] | None:
    """The t-interval of the line's values, turned so that positive means the loss is ahead."""
    summary = line.summary
    if summary is None or summary["t_low"] is None:
        return None
    low, high = summary["t_low"], summary["t_high"]
    ahead_when_higher = line.by == "equal_rate" and get_metric(line.metric).higher_is_better
    return (low, high) if ahead_when_higher else (-high, -low)


def _margin(line: Line) -> float:
    return BD_RATE_MARGIN if line.by == "bd_rate" else get_metric(line.metric).equal_rate_margin


def _judged(line: Line) -> Line:
    if line.verdict == UNTESTABLE:  # said why where it was made
        return line
    if line.summary is None:
        if line.by == "bd_rate":
            why = "no image has a BD-rate (fewer than two points, or curves overlapping too little)"
        elif line.rate is None:
            why = "no rate setting of this curve lies in the claim's bpp range"
        else:
            why = f"no image's {line.against} curve spans this bpp"
        return replace(line, verdict=UNTESTABLE, why=why)
    lead = _lead(line)
    if lead is None:
        return replace(line, verdict=UNDECIDED, why="1 image: an interval needs two")
    margin = _margin(line)
    low, high = lead
    if low > 0:
        where = "ahead"
    elif high < 0:
        where = "behind"
    elif -margin <= low and high <= margin:
        where = "on par"
    else:
        where = "spans zero"
    return replace(line, verdict=judge(line.expect, low, high, margin), why=where)


def _recorded(records: list[dict], metric: str) -> bool:
    return any(record.get(metric) is not None for record in records)


def _claim_lines(
    claim: Claim, records: list[dict], points: Points, settings: Settings
) -> list[Line]:
    """The claim's lines on these records: n/a where the study lacks a curve or a metric that a
    line needs; none at all where the study holds no pair of curves the claim compares."""
    curves = points[2]
    own = sorted(loss for codec, loss in map(label_parts, curves) if codec == claim.codec and loss)
    lines, compared = [], False
    for check in claim.checks:
        anchor = check.against if check.classical else curve_label(claim.codec, check.against)
        for loss in own if check.losses is None else check.losses:
            label = curve_label(claim.codec, loss)
            if label == anchor:
                continue
            base = {"claim": claim.id, "codec": claim.codec, "loss": loss,
                    "against": check.against, "by": check.by, "expect": check.expect,
                    "bpp_range": check.bpp}  # fmt: skip
            pair = ((loss, label), (check.against, anchor))
            if missing := [name for name, curve in pair if curve not in curves]:
                why = f"this study holds no {' or '.join(missing)} curve"
                lines += [_untested(base, metric, why) for metric in check.metrics]
                continue
            compared = True
            for metric in check.metrics:
                if absent := [name for name, curve in pair if not _recorded(curves[curve], metric)]:
                    why = f"{get_metric(metric).label} not recorded for {' or '.join(absent)}"
                    lines.append(_untested(base, metric, why))
                elif check.by == "bd_rate":
                    row = compare_curves(points, label, anchor, [metric])
                    lines.append(
                        Line(**base, metric=metric, summary=row[f"bd_rate_{metric}_images"])
                    )
                else:
                    lines += _equal_rate_lines(records, base, metric, label, anchor, settings)
    return lines if compared else []


def _untested(base: dict, metric: str, why: str) -> Line:
    return Line(**base, metric=metric, summary=None, verdict=UNTESTABLE, why=why)


def _equal_rate_lines(
    records, base: dict, metric: str, label: str, anchor: str, settings: Settings
) -> list[Line]:
    rows = equal_rate_rows(records, [metric], _only(label, anchor))
    if settings is None:
        rows = [row for row in rows if _within(row["bpp"], base["bpp_range"])]
    else:
        chosen = settings.get(setting_key(Line(**base, metric=metric, summary=None)), ())
        rows = [row for row in rows if row["rate"] in chosen]
    if not rows:  # said, not dropped: half a claim untested is not a claim tested
        return [Line(**base, metric=metric, summary=None)]
    return [
        Line(**base, metric=metric, summary=row[metric], rate=row["rate"], bpp=row["bpp"])
        for row in rows
    ]


def _only(label: str, anchor: str):
    """Anchors for ``equal_rate_rows``: ``anchor`` for curve ``label``, nothing for the rest."""

    def anchors(codec: str, loss: str, labels: list[str]):
        if curve_label(codec, loss) == label:
            yield anchor, label_parts(anchor)[1] or anchor

    return anchors


def _within(bpp: float | None, span: tuple[float | None, float | None]) -> bool:
    """Whether ``bpp`` lies in [low, high): ranges that meet do not share a setting."""
    low, high = span
    return bpp is not None and (low is None or bpp >= low) and (high is None or bpp < high)


def test_key(line: Line) -> tuple:
    """What a line compares: two claims judging the same comparison are one test, not two."""
    return line.codec, line.loss, line.against, line.metric, line.by, str(line.rate)


def setting_key(line: Line) -> tuple:
    """An equal-rate check of a claim, at whichever rate settings it is judged."""
    return line.claim, line.codec, line.loss, line.against, line.metric, line.bpp_range, line.expect


def _comparisons(lines: list[Line]) -> dict[tuple, dict]:
    """Each comparison of the page, once, with its summary (a line with one)."""
    return {test_key(line): line.summary for line in lines if line.summary is not None}


def tests_on_page(lines: list[Line]) -> int:
    """How many p-values ``holm_family`` adjusts together: what the page states."""
    return sum(summary["p_value"] is not None for summary in _comparisons(lines).values())


def holm_family(lines: list[Line]) -> dict[tuple, dict]:
    """Each comparison's summary, its p-value Holm-adjusted over every comparison of the page."""
    unique = _comparisons(lines)
    cells = [{"summary": summary} for summary in unique.values()]
    adjust_table(cells, ["summary"])
    return {key: cell["summary"] for key, cell in zip(unique, cells, strict=True)}


COUNTED = (HOLDS, FAILS, UNDECIDED, UNTESTABLE)


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    lines: tuple[Line, ...]

    @property
    def counts(self) -> tuple[int, ...]:
        """How many of its lines hold, do not, are undecided and have nothing to compare."""
        found = [line.verdict for line in self.lines]
        return tuple(found.count(verdict) for verdict in COUNTED)

    @property
    def outcome(self) -> str:
        """Over the lines with something to compare: holds (every one), does not hold (some
        line, none holding), mixed, holds in part (some lines hold, the rest undecided),
        undecided; "where testable" is added to a holding outcome where other lines had nothing
        to compare; not testable where no line had."""
        found = {line.verdict for line in self.lines}
        verdicts = found - {UNTESTABLE}
        untested = WHERE_TESTABLE if UNTESTABLE in found else ""
        if not verdicts:
            return NOT_TESTABLE
        if verdicts == {HOLDS}:
            return "holds" + untested
        if FAILS in verdicts:
            return "mixed" if HOLDS in verdicts else "does not hold"
        return "holds in part" + untested if HOLDS in verdicts else "undecided"


def judge_claims(records: list[dict], path: Path = CLAIMS_FILE) -> tuple[str, list[Verdict]]:
    """The source, and a verdict on every claim of the file that these records can test."""
    source, claims = load_claims(path)
    return source, judge_each(claims, records)


def judge_each(
    claims: list[Claim], records: list[dict], settings: Settings = None
) -> list[Verdict]:
    """A verdict on every claim of ``claims`` that these records can test.

    ``settings``: the rate settings each equal-rate check is judged at, by ``setting_key``;
    None: those whose mean bpp lies in the check's range."""
    points = curve_points(records)
    found = [(claim, _claim_lines(claim, records, points, settings)) for claim in claims]
    adjusted = holm_family([line for _, lines in found for line in lines])
    return [
        Verdict(claim, tuple(_judged(_adjusted(line, adjusted)) for line in lines))
        for claim, lines in found
        if lines
    ]


def _adjusted(line: Line, adjusted: dict[tuple, dict]) -> Line:
    return line if line.summary is None else replace(line, summary=adjusted[test_key(line)])

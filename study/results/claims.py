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

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from inr_models import available_codecs
from study.results.claims_file import CLAIMS_FILE, Claim, load_claims
from study.results.comparisons import compare_curves, curve_points
from study.results.equal_rate import equal_rate_rows
from study.results.rd import curve_label
from study.results.statistics import adjust_table
from study.results.table import get_metric

# A per-image mean BD-rate inside ±5 % is "on par": about the spread of one image's BD-rate
# between two seeds of the same fit (results/README.md, icip24-cpu-seeds).
BD_RATE_MARGIN = 5.0
HOLDS, FAILS, UNDECIDED = "holds", "does not hold", "undecided"
# A line with nothing to compare: its curves do not overlap, or the anchor does not reach its bpp.
UNTESTABLE = "n/a"


@dataclass(frozen=True)
class Line:
    """One judged comparison: a loss against its anchor in a metric (at one rate setting)."""

    claim: str
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
    if line.summary is None:
        if line.by == "bd_rate":
            why = "no image's curves overlap enough for a BD-rate"
        elif line.rate is None:
            why = "no rate setting of this curve lies in the claim's bpp range"
        else:
            why = f"no image's {line.against} curve reaches this bpp"
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


def _claim_lines(claim: Claim, records: list[dict], points) -> Iterator[Line]:
    held = {curve_label(r) for r in records if not r.get("search")}
    own = sorted(
        label.partition("__")[2] for label in held if label.partition("__")[0] == claim.codec
    )
    for check in claim.checks:
        classical = check.against in available_codecs()
        anchor = check.against if classical else f"{claim.codec}__{check.against}"
        if anchor not in held:
            continue
        for loss in own if check.losses is None else check.losses:
            label = f"{claim.codec}__{loss}"
            if label not in held or label == anchor:
                continue
            base = {"claim": claim.id, "loss": loss, "against": check.against, "by": check.by}
            for metric in check.metrics:
                line = base | {"metric": metric, "expect": check.expect}
                if check.by == "bd_rate":
                    row = compare_curves(points, label, anchor, [metric])
                    yield Line(**line, summary=row[f"bd_rate_{metric}_images"])
                    continue
                line["bpp_range"] = check.bpp
                rows = equal_rate_rows(records, [metric], _only(label, anchor))
                rows = [row for row in rows if _within(row["bpp"], check.bpp)]
                for row in rows:
                    yield Line(**line, summary=row[metric], rate=row["rate"], bpp=row["bpp"])
                if not rows:  # said, not dropped: half a claim untested is not a claim tested
                    yield Line(**line, summary=None)


def _only(label: str, anchor: str):
    """Anchors for ``equal_rate_rows``: ``anchor`` for curve ``label``, nothing for the rest."""

    def anchors(codec: str, loss: str, labels: list[str]):
        if f"{codec}__{loss}" == label:
            yield anchor, anchor.partition("__")[2] or anchor

    return anchors


def _within(bpp: float | None, span: tuple[float | None, float | None]) -> bool:
    low, high = span
    return bpp is not None and (low is None or bpp >= low) and (high is None or bpp <= high)


@dataclass(frozen=True)
class Verdict:
    claim: Claim
    lines: tuple[Line, ...]

    @property
    def outcome(self) -> str:
        """Over the lines with something to compare: holds (every one; "holds where testable"
        where other lines had nothing to compare), does not hold (some line, none holding),
        mixed, holds in part (some lines hold, the rest undecided), undecided; not testable
        where no line has anything to compare."""
        found = [line.verdict for line in self.lines]
        verdicts = set(found) - {UNTESTABLE}
        if not verdicts:
            return "not testable here"
        if verdicts == {HOLDS}:
            return "holds where testable" if UNTESTABLE in found else "holds"
        if FAILS in verdicts:
            return "mixed" if HOLDS in verdicts else "does not hold"
        return "holds in part" if HOLDS in verdicts else "undecided"


def judge_claims(records: list[dict], path: Path = CLAIMS_FILE) -> tuple[str, list[Verdict]]:
    """The source, and a verdict on every claim of the file that these records can test."""
    source, claims = load_claims(path)
    points = curve_points(records)
    found = [(claim, list(_claim_lines(claim, records, points))) for claim in claims]
    lines = [line for _, claim_lines in found for line in claim_lines]
    # One family for Holm's adjustment: every line of the report.
    cells = [{"summary": line.summary} for line in lines]
    adjust_table(cells, ["summary"])
    judged = [
        _judged(replace(line, summary=cell["summary"]))
        for line, cell in zip(lines, cells, strict=True)
    ]
    verdicts, start = [], 0
    for claim, claim_lines in found:
        if claim_lines:
            verdicts.append(Verdict(claim, tuple(judged[start : start + len(claim_lines)])))
        start += len(claim_lines)
    return source, verdicts

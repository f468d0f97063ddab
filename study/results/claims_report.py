"""``reports/claims.md`` and ``claims.csv``: every claim a study's records can test, with its
verdict and the lines it rests on."""

import csv
from pathlib import Path

from study.results.claims import (
    BD_RATE_MARGIN,
    UNTESTABLE,
    Line,
    Verdict,
    judge_claims,
    tests_on_page,
)
from study.results.claims_without import WithoutEachImage, changes_text, judge_without_each_image
from study.results.table import get_metric

INTRO = (
    "The claims of *{source}* (sections are the paper's), in our words, judged on this "
    "study's trials by one rule (`study/results/claims.py`; the claims and their checks: "
    "`study/data/icip24_claims.yaml`). Each line compares a loss with an anchor (a loss of the "
    "same codec, or a classical codec) in one metric: *BD-rate*, each image's own BD-rate as in "
    "`bd_rate.md` (negative: fewer bits for the same quality); *equal rate*, each image's quality "
    "minus the anchor's curve at the trial's bpp, as in `equal_rate.md`. *n*: the images with a "
    "value, of those offered; *mean [t]*: their mean and its 95 % t-interval; *p*: Wilcoxon "
    "signed-rank, then Holm over the {tests} comparisons of this page (a comparison two claims "
    "share counts once; shown, not used: at so few images they cannot reach 5 % after the "
    "adjustment). A line holds or does not hold where its t-interval lies clear of zero, or "
    "inside or beyond the margin of equivalence (±{bd_margin:g} % BD-rate, about the largest "
    "mean over images of the BD-rate between two seeds of one fit, `icip24-cpu-seeds`; at equal "
    "rate {margins}); otherwise it is undecided. Each interval is 95 % on its own: over a page "
    "of lines some fall clear of zero by chance, so a claim that one line decides weighs less "
    "than one that several agreeing lines do. Lines with nothing to compare (n/a: a curve or "
    "metric the study lacks, curves overlapping too little, an anchor curve not spanning the "
    "trial's bpp, no rate setting in the claim's range) are shown but not judged. A claim holds "
    "where every line holds, does not hold where a line does not and none holds, is mixed where "
    "both happen, holds in part where some lines hold and the rest are undecided, and is "
    "undecided where none is decided; a holding outcome says *where testable* where some lines "
    "are n/a. A study still growing is judged on the images it holds. *found*: where the "
    "interval of the loss's lead lies (ahead, behind, on par: inside the margin, or spanning "
    "zero)."
)
WITHOUT_ONE_IMAGE = (
    " *Without one image*: the study judged again with each of its images left out in turn, by "
    "the same rule, each equal-rate line at the rate setting it has here; listed are the images "
    "without which a verdict changes, and what it becomes (—: none, so the verdict rests on no "
    "single image; a claim's outcome is compared apart from *where testable*). One image fewer "
    "usually widens an interval (one degree of freedom less), so a line decided by a little may "
    "turn undecided, and a line decided on two images turns undecided without either; leaving "
    "out an outlying image can narrow it, and a line that turns decided names the image that "
    "keeps it open."
)


def claims_markdown(source: str, verdicts: list[Verdict], without: WithoutEachImage) -> str:
    lines = [line for verdict in verdicts for line in verdict.lines]
    margins = ", ".join(
        f"±{m.equal_rate_margin:g}{f' {m.unit}' if m.unit else ''} {m.label}"
        for m in _metrics(lines)
        if m.equal_rate_margin is not None
    )
    tests = tests_on_page(lines)
    intro = INTRO.format(source=source, tests=tests, bd_margin=BD_RATE_MARGIN, margins=margins)
    left_out = bool(without.judged)  # a study of fewer images has nothing to leave out
    extra = (" without one image |", "---|") if left_out else ("", "")
    text = [
        "# The paper's claims, judged on this study",
        "",
        intro + (WITHOUT_ONE_IMAGE if left_out else ""),
        "",
        f"| claim | section | says | verdict | lines holding / not / undecided / n/a |{extra[0]}",
        f"|---|---|---|---|---|{extra[1]}",
    ]
    for verdict in verdicts:
        claim, counts = verdict.claim, " / ".join(map(str, verdict.counts))
        row = (
            f"| [{claim.id}](#{claim.id}) | {claim.section} | {claim.says} | "
            f"**{verdict.outcome}** | {counts} |"
        )
        if left_out:
            row += f" {changes_text(without.outcome_changes(verdict)) or '—'} |"
        text.append(row)
    for verdict in verdicts:
        claim = verdict.claim
        text += ["", f"## {claim.id}", "", f"*{claim.says}* ({claim.section})"]
        if claim.reading:
            text += ["", f"Read as: {claim.reading}"]
        text += [
            "",
            f"Verdict: **{verdict.outcome}**.",
            "",
            "| loss | against | metric | by | rate (mean bpp) | n | mean [t] | p → Holm | "
            f"expected | found | verdict |{extra[0]}",
            f"|---|---|---|---|---|---|---|---|---|---|---|{extra[1]}",
        ]
        for line in verdict.lines:
            row = _markdown_line(line)
            if left_out:
                changes = changes_text(without.line_changes(line)) or "—"
                row += f" {UNTESTABLE if line.verdict == UNTESTABLE else changes} |"
            text.append(row)
    return "\n".join(text) + "\n"


def _metrics(lines: list[Line]):
    return [get_metric(key) for key in dict.fromkeys(line.metric for line in lines)]


def _markdown_line(line: Line) -> str:
    metric = get_metric(line.metric)
    if line.by == "bd_rate":
        unit, digits, way, rate = "%", 1, "BD-rate", "all"
    else:
        unit, way = metric.unit, "equal rate"
        digits = 2 if metric.equal_rate_margin >= 0.1 else 3
        rate = f"{line.rate} ({line.bpp:.3g})" if line.rate is not None else "none in range"
    summary = line.summary
    if summary is None:
        n, mean, p = "0", "n/a", "n/a"
    else:
        n = f"{summary['n']} of {summary['compared']}"
        mean = f"{summary['mean']:+.{digits}f}{f' {unit}' if unit else ''}"
        if summary["t_low"] is not None:
            mean += f" [{summary['t_low']:+.{digits}f}, {summary['t_high']:+.{digits}f}]"
        p = "n/a" if summary["p_value"] is None else f"{summary['p_value']:.2g}"
        if summary.get("p_holm") is not None:
            p += f" → {summary['p_holm']:.2g}"
    expected = line.expect.replace("_", " ") + _span_text(line.bpp_range)
    return (
        f"| {line.loss} | {line.against} | {metric.display} | {way} | {rate} | {n} | {mean} | "
        f"{p} | {expected} | {line.why} | {line.verdict} |"
    )


def _span_text(span: tuple[float | None, float | None]) -> str:
    low, high = span
    if low is None and high is None:
        return ""
    if low is None:
        return f" up to {high:g} bpp"
    return f" from {low:g} bpp" if high is None else f" at {low:g}–{high:g} bpp"


CSV_FIELDS = (
    "claim", "outcome", "codec", "loss", "against", "metric", "by", "rate", "bpp", "bpp_low",
    "bpp_high", "expect", "n",
    "compared", "mean", "t_low", "t_high", "p_value", "p_holm", "found", "verdict",
    "verdict_without_one_image", "outcome_without_one_image",
)  # fmt: skip


def write_claims(records: list[dict], out: Path) -> list[Path]:
    """``claims.md`` and ``claims.csv`` in ``out``, where the records can test some claim."""
    source, verdicts = judge_claims(records)
    if not verdicts:
        return []
    without = judge_without_each_image(records, verdicts)
    md, table = out / "claims.md", out / "claims.csv"
    md.write_text(claims_markdown(source, verdicts, without))
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for verdict in verdicts:
            outcome_changes = changes_text(without.outcome_changes(verdict), "; ")
            for line in verdict.lines:
                summary = line.summary or {}
                writer.writerow(
                    {
                        "claim": verdict.claim.id,
                        "outcome": verdict.outcome,
                        "codec": line.codec,
                        "loss": line.loss,
                        "against": line.against,
                        "metric": line.metric,
                        "by": line.by,
                        "rate": line.rate,
                        "bpp": line.bpp,
                        "bpp_low": line.bpp_range[0],
                        "bpp_high": line.bpp_range[1],
                        "expect": line.expect,
                        "found": line.why,
                        "verdict": line.verdict,
                        "verdict_without_one_image": changes_text(without.line_changes(line), "; "),
                        "outcome_without_one_image": outcome_changes,
                    }
                    | {key: summary.get(key) for key in CSV_FIELDS if key in summary}
                )
    return [table, md]

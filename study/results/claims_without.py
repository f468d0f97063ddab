"""Which claim verdicts rest on a single image: the study judged again with each of its images
left out in turn (leave-one-out), by the same rule (``claims``)."""

from dataclasses import dataclass
from pathlib import Path

from study.results.claims import (
    NOT_TESTABLE,
    UNTESTABLE,
    Line,
    Verdict,
    judge_claims,
    test_key,
)
from study.results.claims_file import CLAIMS_FILE


def _line_key(line: Line) -> tuple:
    # Two lines of one claim may share a comparison with different bpp ranges or expectations.
    return test_key(line), line.bpp_range, line.expect


@dataclass(frozen=True)
class WithoutEachImage:
    """image -> claim id -> {line key: verdict}, and the claim's outcome, without that image."""

    lines: dict[str, dict[str, dict[tuple, str]]]
    outcomes: dict[str, dict[str, str]]

    def outcome_changes(self, verdict: Verdict) -> list[tuple[str, str]]:
        """(image, outcome) for each image without which the claim's outcome differs."""
        claim = verdict.claim.id
        found = [
            (image, by_claim.get(claim, NOT_TESTABLE)) for image, by_claim in self.outcomes.items()
        ]
        return [(image, outcome) for image, outcome in found if outcome != verdict.outcome]

    def line_changes(self, claim: str, line: Line) -> list[tuple[str, str]]:
        """(image, verdict) for each image without which a judged line's verdict differs."""
        if line.verdict == UNTESTABLE:
            return []
        key = _line_key(line)
        found = [
            (image, by_claim.get(claim, {}).get(key, UNTESTABLE))
            for image, by_claim in self.lines.items()
        ]
        return [(image, verdict) for image, verdict in found if verdict != line.verdict]


def judge_without_each_image(records: list[dict], path: Path = CLAIMS_FILE) -> WithoutEachImage:
    images = sorted({record["image"] for record in records})
    lines, outcomes = {}, {}
    for image in images if len(images) > 1 else ():
        verdicts = judge_claims([r for r in records if r["image"] != image], path)[1]
        lines[image] = {
            v.claim.id: {_line_key(line): line.verdict for line in v.lines} for v in verdicts
        }
        outcomes[image] = {v.claim.id: v.outcome for v in verdicts}
    return WithoutEachImage(lines, outcomes)


def changes_text(changes: list[tuple[str, str]], separator: str = ", ") -> str:
    return separator.join(f"{image} → {verdict}" for image, verdict in changes)

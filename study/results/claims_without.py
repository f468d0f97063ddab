"""Which claim verdicts rest on a single image: the study judged again with each of its images
left out in turn (leave-one-out), by the same rule (``claims``).

Each equal-rate line is judged again at the rate setting the whole study chose for it: without an
image a setting's mean bpp moves, and a claim's bpp range must not pick other settings then.
"""

from dataclasses import dataclass

from study.results.claims import (
    NOT_TESTABLE,
    UNDECIDED,
    UNTESTABLE,
    WHERE_TESTABLE,
    Line,
    Verdict,
    judge_each,
    setting_key,
    test_key,
)

# Two images leave one: no interval, so every decided line would turn, telling nothing.
MIN_IMAGES = 3


def _line_key(line: Line) -> tuple:
    return test_key(line), line.bpp_range, line.expect


@dataclass(frozen=True)
class WithoutEachImage:
    """image -> claim id -> (its outcome, {line key: verdict}) without that image; empty where
    the study holds fewer than ``MIN_IMAGES`` images."""

    judged: dict[str, dict[str, tuple[str, dict[tuple, str]]]]

    def outcome_changes(self, verdict: Verdict) -> list[tuple[str, str]]:
        """(image, outcome) for each image without which the claim's outcome differs, beyond
        whether some line has nothing to compare ("where testable")."""
        claim, stem = verdict.claim.id, verdict.outcome.removesuffix(WHERE_TESTABLE)
        changes = []
        for image, by_claim in self.judged.items():
            outcome = by_claim[claim][0] if claim in by_claim else NOT_TESTABLE
            if outcome.removesuffix(WHERE_TESTABLE) != stem:
                changes.append((image, outcome))
        return changes

    def line_changes(self, line: Line) -> list[tuple[str, str]]:
        """(image, verdict) for each image without which a judged line's verdict differs; a line
        with nothing to compare has no verdict to lose, nor has an undecided one left with
        nothing to compare."""
        if line.verdict == UNTESTABLE:
            return []
        key = _line_key(line)
        changes = []
        for image, by_claim in self.judged.items():
            verdict = (
                by_claim[line.claim][1].get(key, UNTESTABLE)
                if line.claim in by_claim
                else UNTESTABLE
            )
            if verdict != line.verdict and not (
                line.verdict == UNDECIDED and verdict == UNTESTABLE
            ):
                changes.append((image, verdict))
        return changes


def judge_without_each_image(records: list[dict], verdicts: list[Verdict]) -> WithoutEachImage:
    """The claims of ``verdicts`` judged again without each image of the records' designed
    curves (search fits are not on a curve), each equal-rate line at the setting it had there.
    A claim these records cannot test, fewer records cannot either."""
    images = sorted({r["image"] for r in records if not r.get("search")})
    if len(images) < MIN_IMAGES:
        return WithoutEachImage({})
    claims = [verdict.claim for verdict in verdicts]
    settings = {}
    for verdict in verdicts:
        for line in verdict.lines:
            if line.by == "equal_rate" and line.rate is not None:
                settings.setdefault(setting_key(line), set()).add(line.rate)
    judged = {}
    for image in images:
        others = [r for r in records if r["image"] != image]
        judged[image] = {
            v.claim.id: (v.outcome, {_line_key(line): line.verdict for line in v.lines})
            for v in judge_each(claims, others, settings)
        }
    return WithoutEachImage(judged)


def changes_text(changes: list[tuple[str, str]], separator: str = ", ") -> str:
    return separator.join(f"{image} → {verdict}" for image, verdict in changes)

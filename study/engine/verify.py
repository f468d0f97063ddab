"""Whether a decoded image gives the figures a trial recorded: one rule for ``rescore`` (a study's
own decoded images) and ``import`` (files made elsewhere)."""

import math

from study.results.table import get_metric

# The same decoded image scored again differs only by float32 reduction order (another thread
# count, another device); PSNR agrees to 1e-4 dB up to 100 dB.
RELATIVE_TOLERANCE = 1e-6
ABSOLUTE_TOLERANCE = 1e-5


def same_value(recomputed: float, recorded: float) -> bool:
    if math.isinf(recorded) or math.isinf(recomputed):  # lossless: PSNR +inf
        return recomputed == recorded
    return math.isclose(
        recomputed, recorded, rel_tol=RELATIVE_TOLERANCE, abs_tol=ABSOLUTE_TOLERANCE
    )


def mismatch(recomputed: dict, recorded: dict) -> str | None:
    """The first metric both have that disagrees, described; None when all agree."""
    for key, value in recomputed.items():
        theirs = recorded.get(key)
        if value is not None and theirs is not None and not same_value(value, theirs):
            label = get_metric(key).label
            return f"{label} {value:.6g} from the decoded file, {theirs:.6g} recorded"
    return None

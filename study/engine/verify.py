"""Whether a decoded image gives the figures a trial recorded: one rule for ``rescore`` (a study's
own decoded images) and ``import`` (files made elsewhere)."""

import math

from study.results.table import get_metric

# The same decoded image scored again differs only by float32 reduction order (another thread
# count, another device): a relative 1e-5, unless the metric declares its own absolute
# tolerance (``Metric.recheck_tolerance``).
TOLERANCE = 1e-5


def same_value(recomputed: float, recorded: float, key: str) -> bool:
    if math.isinf(recorded) or math.isinf(recomputed):  # lossless: PSNR +inf
        return recomputed == recorded
    absolute = get_metric(key).recheck_tolerance
    if absolute is not None:
        return abs(recomputed - recorded) <= absolute
    return math.isclose(recomputed, recorded, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def mismatch(recomputed: dict, recorded: dict) -> str | None:
    """The first metric both have that disagrees, described; None when all agree."""
    for key, value in recomputed.items():
        theirs = recorded.get(key)
        if value is not None and theirs is not None and not same_value(value, theirs, key):
            label = get_metric(key).label
            return f"{label} {value:.6g} from the decoded file, {theirs:.6g} recorded"
    return None

"""The metric table applied: every quality metric of one image pair, and whether this process can
compute the optional ones. Here, not in ``metrics`` (the measures themselves, which know no table),
so that the table and the measures do not import each other."""

from collections.abc import Collection

import numpy as np

from study.results.metrics import warn_missing
from study.results.table import metric_table, quality_metrics


def optional_metrics_available() -> bool:
    """Whether this process can compute every optional metric of the table (those that need
    downloaded network weights); warns once for each it cannot. Where one cannot, a study records
    them all as missing (one switch, as ``optional_metrics: false``)."""
    available = True
    for metric in (m for m in metric_table() if m.optional and m.unavailable is not None):
        reason = metric.unavailable()
        if reason is not None:
            warn_missing(metric.key, metric.label, reason)
            available = False
    return available


def evaluate(
    original: np.ndarray,
    decoded: np.ndarray,
    optional: bool = True,
    opted_in: Collection[str] = (),
) -> dict:
    """The quality metrics of the table (``study.results.table``) for one image pair: the opt-in
    ones only where named in ``opted_in``, the optional ones (LPIPS) only when ``optional``
    (None otherwise)."""
    values: dict[str, float | None] = {}
    for metric in quality_metrics(opted_in):
        if metric.optional and not optional:
            values[metric.key] = None
        else:
            values[metric.key] = metric.compute(original, decoded, values)
    return values

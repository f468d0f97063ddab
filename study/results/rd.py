"""Rate-distortion tables: CompressAI-format JSON files and interpolation at a given rate."""

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from study.results.table import metric_table


def json_safe(value):
    """Non-finite floats become None so files stay standard JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def curve_label(record: dict) -> str:
    """The R-D curve a trial record belongs to: ``codec`` or ``codec__loss``."""
    loss = record.get("loss")
    return record["codec"] if loss is None else f"{record['codec']}__{loss}"


def compressai_document(
    name: str, description: str, points: Sequence[Mapping[str, float | None]], extra_keys=()
) -> dict:
    """``{name, description, results: {key: [...]}}`` with one entry per R-D point, sorted by bpp.

    A metric missing at any point is left out entirely (CompressAI's plotter expects full lists),
    and the description says so.
    """
    points = sorted(points, key=lambda p: p["bpp"])
    results, missing = {}, []
    keys = [(m.key, m.compressai_key) for m in metric_table()]
    for ours, theirs in [*keys, *((k, k) for k in extra_keys)]:
        values = [p.get(ours) for p in points]
        if any(v is None for v in values):
            missing.append(theirs)
            continue
        results[theirs] = values
    if missing:
        description += f" Not available: {', '.join(missing)}."
    return json_safe({"name": name, "description": description, "results": results})


def write_json(path: Path, document: Mapping) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(json_safe(document), indent=2) + "\n")


def interpolate_at_bpp(bpp: Sequence[float], metric: Sequence[float], target: float) -> float:
    """Metric at ``target`` bpp, piecewise linear in log(bpp) between the neighbouring points.

    NaN when ``target`` lies outside the curve's range: no extrapolation.
    """
    order = np.argsort(bpp)
    rates = np.log(np.asarray(bpp, dtype=float)[order])
    values = np.asarray(metric, dtype=float)[order]
    log_target = math.log(target)
    if not rates[0] <= log_target <= rates[-1]:
        return math.nan
    return float(np.interp(log_target, rates, values))

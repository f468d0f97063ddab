"""Quality metrics of a finished study recomputed from its stored decoded images, without refitting.

A study run where a metric could not be computed (LPIPS without its weights, on an offline machine)
records it as missing. Once the metric can be computed, every finished trial's decoded image is
scored again against the study's own image, and the new values go to the trial's MLflow run, which
the reports and dashboards read.

Nothing is written unless every run checks out: the study's image must be the one the trial was
fitted on (the digest its run recorded), and the metrics the trial already recorded must come out
the same from its decoded image, so a replaced or damaged file is found, not scored.
"""

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.exceptions import MlflowException
from tqdm import tqdm

from study.config import dump_config
from study.data.imageio import image_digest, load_rgb
from study.engine.lock import study_lock
from study.engine.plan import load_images
from study.engine.tracking import MISSING_TAG, RunStore, run_record, study_store
from study.engine.trial import DECODED_NAME
from study.engine.verify import mismatch
from study.errors import InputError
from study.layout import CONFIG_FILE, load_study_config, read_state
from study.results.evaluation import evaluate
from study.results.table import get_metric, opt_in_metrics, quality_metrics

log = logging.getLogger(__name__)


class RescoreError(InputError):
    """A study that cannot be rescored as asked; nothing was written."""


@dataclass(frozen=True)
class Rescored:
    runs: int  # runs that got new values
    values: int  # metric values written
    still_missing: dict[str, int]  # metric -> runs that still lack it


def _missing(run) -> set[str]:
    return set(filter(None, run.data.tags.get(MISSING_TAG, "").split(",")))


def _wanted(run, asked: list[str] | None, opted_in: list[str]) -> list[str]:
    """The metrics to compute for one run: those asked for, else the ones it lacks (of the table's
    standard ones and the study's ``opted_in``) that its image is large enough to have."""
    if asked is not None:
        return asked
    sides = [run.data.metrics.get(k) for k in ("height", "width")]
    short_side = None if None in sides else int(min(sides))
    return [
        m.key
        for m in quality_metrics(opted_in)
        if m.key in _missing(run) and m.size_allows(short_side)
    ]


def _check_asked(asked: list[str] | None) -> None:
    if asked is None:
        return
    quality = [m.key for m in quality_metrics(opt_in_metrics())]
    unknown = [key for key in asked if key not in quality]
    if unknown:
        raise RescoreError(
            f"cannot recompute {', '.join(unknown)}: only quality metrics are computed from the "
            f"decoded image ({', '.join(quality)})"
        )


def _check_available(keys: set[str]) -> None:
    """Every wanted metric can be computed in this process: else one error with the reasons."""
    reasons = []
    for key in sorted(keys):
        metric = get_metric(key)
        reason = metric.unavailable() if metric.unavailable else None
        if reason is not None:
            reasons.append(f"{metric.label}: {reason}")
    if reasons:
        raise RescoreError(
            "cannot be computed on this machine, nothing was written: " + "; ".join(reasons)
        )


def _decoded_image(run, store: RunStore, scratch: Path, label: str) -> np.ndarray:
    try:
        path = store.artifact(run_record(run), DECODED_NAME, scratch)
        return load_rgb(path)
    except (MlflowException, OSError, InputError) as error:
        raise RescoreError(f"{label}: its {DECODED_NAME} cannot be read: {error}") from None


def _score(run, store: RunStore, original: np.ndarray, scratch: Path, wanted: list[str]) -> dict:
    """The table's standard quality metrics of one run's decoded image, and the ``wanted`` opt-in
    ones, checked against what the run recorded."""
    name, label = run_record(run)["image"], f"run {run.info.run_id} ({run.info.run_name})"
    inputs = run.inputs.dataset_inputs if run.inputs else []
    if not inputs:
        log.warning("%s recorded no image digest: checked by its recorded metrics only", label)
    elif inputs[0].dataset.digest != image_digest(original):
        raise RescoreError(
            f"{label}: the study's {name} (digest {image_digest(original)}) is not the image this "
            f"trial was fitted on (digest {inputs[0].dataset.digest}); rescore with the images "
            "the study ran on"
        )
    decoded = _decoded_image(run, store, scratch, label)
    if decoded.shape != original.shape:
        raise RescoreError(
            f"{label}: its {DECODED_NAME} is {decoded.shape[1]}x{decoded.shape[0]}, the image "
            f"{original.shape[1]}x{original.shape[0]}"
        )
    values = evaluate(original, decoded, optional=True, opted_in=wanted)
    problem = mismatch(values, run.data.metrics)
    if problem is not None:
        raise RescoreError(
            f"{label}: its {DECODED_NAME} is not the image the trial decoded ({problem})"
        )
    return values


def rescore(folder: Path, metrics: list[str] | None = None, progress: bool = True) -> Rescored:
    """Compute ``metrics`` (default: each run's missing quality metrics) for every finished trial of
    the study in ``folder`` from its decoded image, and record them on the trial's run."""
    _check_asked(metrics)
    folder = Path(folder)
    config = load_study_config(folder)
    with study_lock(folder):  # the one writer of the study's runs, as while it runs
        if read_state(folder).parent_run_id is None:
            raise RescoreError(f"{folder}: this study has not run yet; there is nothing to rescore")
        store = study_store(folder, config)
        runs = store.finished_runs()
        wanted_by_run = [(run, _wanted(run, metrics, config.extra_metrics)) for run in runs]
        wanted_by_run = [(run, wanted) for run, wanted in wanted_by_run if wanted]
        _check_available({key for _, wanted in wanted_by_run for key in wanted})
        images = load_images(config) if wanted_by_run else {}
        updates = []
        with tempfile.TemporaryDirectory() as scratch:
            for run, wanted in tqdm(
                wanted_by_run, desc="rescore", unit="run", disable=not progress
            ):
                name = run_record(run)["image"]
                if name not in images:
                    raise RescoreError(
                        f"run {run.info.run_id}: image {name!r} is no longer in the study's images"
                    )
                values = _score(run, store, images[name], Path(scratch), wanted)
                found = {k: values[k] for k in wanted if values[k] is not None}
                missing = (_missing(run) - set(found)) | {k for k in wanted if values[k] is None}
                if found or missing != _missing(run):
                    updates.append((run.info.run_id, found, sorted(missing)))
        for run_id, found, missing in updates:
            store.update_metrics(run_id, found, missing)
        opted_in = set(opt_in_metrics()) - set(config.extra_metrics)
        added = [key for key in metrics or [] if key in opted_in]
        if added:  # the study's later trials measure them too
            grown = config.model_copy(update={"extra_metrics": [*config.extra_metrics, *added]})
            (folder / CONFIG_FILE).write_text(dump_config(grown))
    missing_after = {run_id: missing for run_id, _, missing in updates}
    still_missing: dict[str, int] = {}
    for run in runs:
        for key in missing_after.get(run.info.run_id, _missing(run)):
            still_missing[key] = still_missing.get(key, 0) + 1
    written = [found for _, found, _ in updates if found]
    return Rescored(len(written), sum(map(len, written)), still_missing)

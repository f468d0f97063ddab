"""Trials run elsewhere, recorded in a study (``inr-study import``; ``rebuild`` uses it too).

Every result is checked before anything is written: it belongs to this study (a trial of its
plan, fitted on the study's own image, with the codec settings this code gives that trial), its
file decodes here on the CPU, and its rate and quality figures are what the file and the decoded
image give. Then, under the study's lock, each is recorded in the study's MLflow store as the
engine records a trial it ran itself: same run name, parameters, step metrics, artifacts and
tags, plus where it ran. If anything fails while writing, the runs written so far are deleted.
"""

import math
import multiprocessing
import re
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inr_models import create_codec
from inr_models.base import CodecError
from study.config import StudyConfig, dump_config
from study.data.imageio import image_digest, save_png
from study.engine.incoming import Incoming, read_sources
from study.engine.lock import study_lock
from study.engine.plan import grid_trials, image_options, load_images
from study.engine.provenance import code_tags, git_commit
from study.engine.tracking import STUDY_TAG, ImageInput, RunStore, flat_params, study_store
from study.engine.trial import (
    BITSTREAM_NAME,
    DECODED_NAME,
    SUMMARY_NAME,
    TrialOutcome,
    TrialSpec,
)
from study.engine.verify import mismatch
from study.errors import InputError
from study.layout import (
    CONFIG_FILE,
    StudyState,
    read_state,
    recorded_tracking_uri,
    write_state,
)
from study.results.evaluation import evaluate, optional_metrics_available
from study.results.table import quality_metrics

# Settings a codec reports that say where it ran, not what it computed.
PLACE_SETTINGS = {"device"}
# What a result may say of where it ran: plain tag names, none of MLflow's or the engine's own.
TAG_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
RESERVED_TAGS = ("mlflow.", "inr_study.")
PROVENANCE_TEXT = 1000


class ImportRefused(InputError):
    """Results a study will not take; one line per refused result, and nothing was written."""


@dataclass
class Checked:
    incoming: Incoming
    decoded: np.ndarray
    metrics: dict  # as recorded, with what was missing there filled in from the decoded image


@dataclass(frozen=True)
class Imported:
    folder: Path
    trials: int
    filled: int  # metric values computed here that the result lacked (LPIPS without weights)
    skipped: int = 0  # results already recorded, left out under ``skip_recorded``


class _Study:
    """What results are checked against: the study's config, plan, images and recorded trials."""

    def __init__(self, folder: Path, config: StudyConfig):
        self.folder, self.config = folder, config
        self.images = load_images(config)
        self.digests = {name: image_digest(pixels) for name, pixels in self.images.items()}
        self.plan, self.tasks = {}, {}
        if config.search is None:
            self.plan = {spec.key: spec for spec in grid_trials(config, list(self.images))}
        else:
            from study.engine.tasks import search_tasks_by_name

            self.tasks = search_tasks_by_name(config)
        self.with_optional_metrics = config.optional_metrics and optional_metrics_available()
        self._codecs: dict[tuple, object] = {}

    def recorded_keys(self) -> set[str]:
        if not (self.folder / CONFIG_FILE).exists():
            return set()
        return study_store(self.folder, self.config).finished_keys()

    def holds(self, spec: TrialSpec) -> bool:
        """A trial of this study: in a grid study's plan, or a fit one of its search tasks can
        ask for (a published search's fits, to rebuild it; the driver chose which)."""
        if self.config.search is None:
            return spec.key in self.plan
        from study.engine.tasks import searched_spec

        if spec.image not in self.images:
            return False
        args = (spec.search, spec.loss, spec.rate, spec.image, spec.seed)
        return searched_spec(self.config, self.tasks, *args) == spec

    def codec(self, spec: TrialSpec):
        """A decoder for the trial (and the settings this code gives it), made once per setting."""
        key = (spec.codec, spec.rate, spec.preset, spec.loss, spec.convention, spec.seed)
        if key not in self._codecs:
            self._codecs[key] = create_codec(spec.codec, **spec.codec_settings("cpu"))
        return self._codecs[key]


def _settings_problem(theirs: dict, ours: dict) -> str | None:
    for name in sorted(set(theirs) & set(ours) - PLACE_SETTINGS):
        if str(theirs[name]) != str(ours[name]):
            return (
                f"its codec setting {name} is {theirs[name]!r} there, {ours[name]!r} with this "
                "code: another version of the codec"
            )
    return None


def _rate_problem(record, data: bytes, height: int, width: int) -> str | None:
    recorded_bytes, recorded_bpp = record.metrics.get("bytes"), record.metrics.get("bpp")
    if recorded_bytes != len(data):
        return f"its file has {len(data)} bytes, its record says {recorded_bytes}"
    bpp = 8.0 * len(data) / (height * width)
    if recorded_bpp is None or not math.isclose(bpp, recorded_bpp, rel_tol=1e-12):
        return f"its file gives {bpp:.6g} bpp, its record says {recorded_bpp}"
    return None


def check(incoming: Incoming, study: _Study) -> Checked | str:
    """The result checked against the study, or the reason it is refused."""
    if incoming.problem is not None:
        return incoming.problem
    record = incoming.record
    spec = record.spec
    if not study.holds(spec):
        if record.study and record.study != study.config.name:
            return f"a trial of study {record.study!r}, not of {study.config.name!r}"
        what = f"{spec.codec} {spec.image}, key {spec.key}"
        return f"not a trial of study {study.config.name!r} ({what})"
    if record.image_digest != study.digests[spec.image]:
        return (
            f"fitted on another {spec.image} (digest {record.image_digest}; the study's is "
            f"{study.digests[spec.image]})"
        )
    codec = study.codec(spec)
    problem = _settings_problem(record.settings, codec.settings())
    original = study.images[spec.image]
    height, width = original.shape[:2]
    problem = problem or _rate_problem(record, incoming.bitstream, height, width)
    if problem:
        return problem
    try:
        decoded = codec.decode(incoming.bitstream)
    except CodecError as error:
        return f"its file does not decode here: {error}"
    if decoded.shape != original.shape:
        return f"its file decodes to {decoded.shape[1]}x{decoded.shape[0]}, not {width}x{height}"
    values = evaluate(
        original, decoded, optional=study.with_optional_metrics, opted_in=study.config.extra_metrics
    )
    problem = mismatch(values, record.metrics)
    parts = codec.rate_parts(incoming.bitstream)
    problem = problem or next(
        (f"its file's {key} is {value}, {record.metrics[key]} recorded"
         for key, value in parts.items() if record.metrics.get(key) not in (None, value)),
        None,
    )  # fmt: skip
    if problem:
        return f"its figures are not its file's: {problem}"
    # What a result made before rate parts were recorded lacks comes from its file.
    values = {**parts, **values}
    missing = {k: v for k, v in values.items() if record.metrics.get(k) is None}
    return Checked(incoming, decoded, {**record.metrics, **missing})


def _tags(record, config: StudyConfig) -> dict:
    """The engine's tags of a trial run (study, code, device, host, preset) and, beside them,
    everything the executor said about where it ran."""
    provenance = {
        k: str(v)[:PROVENANCE_TEXT]
        for k, v in record.provenance.items()
        if v is not None and TAG_NAME.fullmatch(k) and not k.startswith(RESERVED_TAGS)
    }
    commit = provenance.pop("git_commit", "unknown")
    return {
        **provenance,  # first: a record never overrides what the engine sets
        STUDY_TAG: config.name,
        **code_tags(commit),
        **({"preset": record.spec.preset} if record.spec.preset else {}),
    }


def _span_ms(provenance: dict) -> tuple[int | None, int | None]:
    """When the trial ran where it ran (MLflow's Created and Duration), or (None, None): the
    time of the import."""
    try:
        start = datetime.strptime(provenance["started"], "%Y-%m-%dT%H:%M:%SZ")
        seconds = float(provenance["seconds"])
    except (KeyError, TypeError, ValueError):
        return None, None
    start_ms = int(start.replace(tzinfo=UTC).timestamp() * 1000)
    return start_ms, start_ms + int(seconds * 1000)


def _record(
    store: RunStore, checked: Checked, parent: str, config: StudyConfig, inputs, created: list
) -> None:
    record = checked.incoming.record
    spec = record.spec
    start_ms, end_ms = _span_ms(record.provenance)
    run_id = store.start_trial(spec, parent, _tags(record, config), inputs[spec.image], start_ms)
    if run_id is None:
        raise ImportRefused(f"{checked.incoming.where}: recorded meanwhile by another driver")
    created.append(run_id)  # deleted again if anything after this fails
    store.log_validations(run_id, record.validations)
    with tempfile.TemporaryDirectory(prefix="inr-study-import-") as scratch:
        files = {
            "bitstream": Path(scratch) / BITSTREAM_NAME,
            "decoded": Path(scratch) / DECODED_NAME,
        }
        files["bitstream"].write_bytes(checked.incoming.bitstream)
        save_png(files["decoded"], checked.decoded)
        outcome = TrialOutcome(spec, checked.metrics, record.settings, files)
        # The summary ``run_trial`` writes, with the same fields in the same order.
        summary = Path(scratch) / SUMMARY_NAME
        summary.write_text(outcome.summary_text())
        outcome.files["summary"] = summary
        store.finish_trial(run_id, outcome, end_ms)


def import_results(
    folder: Path,
    sources: list[Path],
    config: StudyConfig | None = None,
    progress: bool = True,
    skip_recorded: bool = False,
    jobs: int = 1,
) -> Imported:
    """Check every result in ``sources`` against the study in ``folder`` (created from
    ``config`` when it does not exist yet), then record them all; ImportRefused names each
    refused result and writes nothing. ``skip_recorded``: results whose trial the study already
    holds are left out, unchecked (a study growing from the same work output, import after
    import), instead of refused. ``jobs``: processes that decode and check the results (each
    loads the study's images and its own copy of the metrics' networks)."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).exists():
        from study.layout import load_study_config

        found = load_study_config(folder)
        if config is not None and dump_config(config, True) != dump_config(found, True):
            raise ImportRefused(f"{folder}: this study's config is not {config.source}")
        config = found
    elif config is None:
        raise ImportRefused(
            f"{folder}: not a study folder (no {CONFIG_FILE}); give the study's config to create it"
        )
    study = _Study(folder, config)
    recorded = study.recorded_keys()
    incoming = read_sources(sources)
    if not incoming:
        raise ImportRefused("no trial results in " + ", ".join(map(str, sources)))
    if skip_recorded:
        fresh = [i for i in incoming if i.record is None or i.record.key not in recorded]
        skipped, incoming = len(incoming) - len(fresh), fresh
        if not incoming:
            return Imported(folder, 0, 0, skipped)
    else:
        skipped = 0
    # Refusals that need no decoding first; then every other result is checked, on ``jobs``
    # processes when there are several.
    results, first_seen = {}, {}
    for index, item in enumerate(incoming):
        key = item.record.key if item.record is not None else None
        if key in first_seen:
            results[index] = f"repeated: the same trial as {first_seen[key]}"
        elif key in recorded:
            results[index] = "already recorded in this study"
        if key is not None:
            first_seen.setdefault(key, item.where)
    to_check = [i for i in range(len(incoming)) if i not in results]
    checked = _check_all(study, [incoming[i] for i in to_check], jobs, progress)
    results.update(zip(to_check, checked, strict=True))
    refused, accepted = [], []
    for index, item in enumerate(incoming):
        result = results[index]
        if isinstance(result, str):
            refused.append(f"refused {item.where}: {result}")
        else:
            accepted.append(result)
    if refused:
        raise ImportRefused(
            f"{len(refused)} of {len(incoming)} results refused, nothing imported:\n"
            + "\n".join(refused)
        )
    return Imported(folder, len(accepted), _write(study, accepted, progress), skipped)


def _check_all(study: _Study, items: list[Incoming], jobs: int, progress: bool) -> list:
    bar = {"total": len(items), "desc": "checking", "unit": "trial", "disable": not progress}
    if jobs <= 1 or len(items) < 2:
        return [check(item, study) for item in tqdm(items, **bar)]
    context = multiprocessing.get_context("spawn")  # no copy of this process's torch threads
    with ProcessPoolExecutor(
        min(jobs, len(items)),
        mp_context=context,
        initializer=_open_study,
        initargs=(study.folder, dump_config(study.config)),
    ) as pool:
        return list(tqdm(pool.map(_check_here, items), **bar))


_WORKER_STUDY: _Study | str | None = None  # the worker's study, or why it could not open it


def _open_study(folder: Path, config_text: str) -> None:
    """A worker's own study: the config travels as its YAML, which names (and so imports) the
    plugins whose codecs, losses and metrics it uses. A failure is kept for the first check to
    report: raised here, it would only break the pool."""
    global _WORKER_STUDY
    import torch
    import yaml

    from study.config import parse_config

    torch.set_num_threads(1)  # one core per process: the pool is the parallelism
    try:
        _WORKER_STUDY = _Study(folder, parse_config(yaml.safe_load(config_text)))
    except Exception as error:  # reported as one line by the check that needs it
        _WORKER_STUDY = f"{type(error).__name__}: {error}"


def _check_here(item: Incoming) -> Checked | str:
    if isinstance(_WORKER_STUDY, str):
        raise ImportRefused(f"a checking process could not open the study ({_WORKER_STUDY})")
    return check(item, _WORKER_STUDY)


def _write(study: _Study, accepted: list[Checked], progress: bool) -> int:
    folder, config = study.folder, study.config
    created_folder = not folder.exists()
    try:
        with study_lock(folder):
            (folder / CONFIG_FILE).write_text(dump_config(config))
            store = study_store(folder, config)
            again = store.finished_keys() & {c.incoming.record.key for c in accepted}
            if again:
                raise ImportRefused(f"recorded meanwhile by another driver: {sorted(again)}")
            parent = _parent(folder, config, store)
            variant = image_options(config).label()
            inputs = {
                name: ImageInput(name, variant, digest, config.images.dataset)
                for name, digest in study.digests.items()
            }
            created = []
            try:
                for checked in tqdm(accepted, desc="recording", unit="trial", disable=not progress):
                    _record(store, checked, parent, config, inputs, created)
            except BaseException:
                for run_id in created:
                    store.client.delete_run(run_id)
                raise
    except BaseException:
        if created_folder:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    return sum(
        1
        for c in accepted
        for m in quality_metrics(config.extra_metrics)
        if c.incoming.record.metrics.get(m.key) is None and c.metrics.get(m.key) is not None
    )


def _parent(folder: Path, config: StudyConfig, store: RunStore) -> str:
    """The study's parent run; a study that begins with an import gets one, as a run would."""
    known = read_state(folder).parent_run_id
    if known:
        return known
    parent = store.open_parent(None, config.name, flat_params(config), code_tags(git_commit()))
    store.client.set_terminated(parent, "FINISHED")
    experiment = store.client.get_experiment(store.experiment_id).name
    uri = recorded_tracking_uri(folder, store.tracking_uri)
    write_state(folder, StudyState(parent, uri, experiment))
    return parent

"""A study's trials kept with its published results, and the study rebuilt from them.

``export_trials`` writes, beside a published study's reports, its config (``study.yaml``, without
this machine's paths), one trial record per line (``trials.jsonl``) and each trial's file
(``bitstreams/KEY.bin``; one that ``inr-study stow`` keeps in git history, its digest the same,
is not written again). ``rebuild`` creates a study folder from those alone: it imports every
trial (each file decoded and its figures checked, as for any import), then writes the reports,
which must equal the published ones byte for byte.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from study.config import StudyConfig, dump_config, load_config
from study.engine.history import read_history, sha256, write_history
from study.engine.incoming import MAX_BITSTREAM_BYTES
from study.engine.plan import check_images, grid_trials
from study.engine.record import TrialRecord
from study.engine.selection import select
from study.engine.tracking import (
    KEY_TAG,
    MISSING_TAG,
    VALIDATION_PREFIX,
    RunStore,
    run_record,
    study_store,
)
from study.engine.trial import BITSTREAM_NAME, TrialSpec
from study.errors import InputError
from study.layout import (
    BITSTREAMS_DIR,
    CONFIG_FILE,
    REPORTS_DIR,
    TRIALS_FILE,
    holds_study,
    is_published_copy,
    load_study_config,
)


class ArchiveError(InputError):
    """A study that cannot be exported or rebuilt as asked."""


def _validations(store: RunStore, run) -> list[dict]:
    """The fit's validations as the trial reported them: step metrics back into records."""
    by_step: dict[int, dict] = {}
    for key in sorted(k for k in run.data.metrics if k.startswith(VALIDATION_PREFIX)):
        for point in store.client.get_metric_history(run.info.run_id, key):
            entry = by_step.setdefault(point.step, {"iteration": point.step})
            entry[key.removeprefix(VALIDATION_PREFIX)] = point.value
    return [by_step[step] for step in sorted(by_step)]


def _searched_spec(config: StudyConfig, tasks: dict, run) -> TrialSpec:
    """A search fit's spec, as its task gives it, from its run's parameters and checked against
    its key."""
    from study.engine.tasks import searched_spec

    record = run_record(run)
    args = (record.get("search"), record.get("loss"), record["rate"], record["image"])
    args += (record.get("seed") or 0,)
    spec = searched_spec(config, tasks, *args)
    if spec is None or spec.key != run.data.tags[KEY_TAG]:
        raise ArchiveError(f"run {run.info.run_id}: not a fit of one of the study's search tasks")
    return spec


def _trial_record(store: RunStore, run, spec: TrialSpec, study: str) -> TrialRecord:
    logged = {k: str(v) for k, v in spec.params().items()}
    tags = run.data.tags
    missing = filter(None, tags.get(MISSING_TAG, "").split(","))
    inputs = run.inputs.dataset_inputs if run.inputs else []
    return TrialRecord(
        spec=spec,
        image_digest=inputs[0].dataset.digest if inputs else "",
        settings={k: v for k, v in run.data.params.items() if k not in logged},
        metrics={
            **{k: v for k, v in run.data.metrics.items() if not k.startswith(VALIDATION_PREFIX)},
            **dict.fromkeys(missing),
        },
        provenance={
            k: v
            for k, v in tags.items()
            if not k.startswith(("mlflow.", "inr_study.")) and k != "preset"
        },
        validations=_validations(store, run),
        study=study,
    )


@dataclass(frozen=True)
class Exported:
    trials: int
    bitstream_bytes: int  # the files in the working tree
    record_bytes: int
    kept_in_history: int  # the files listed in HISTORY_FILE instead


def export_trials(
    folder: Path, out: Path, where: dict[str, set[str]] | None = None, progress: bool = True
) -> Exported:
    """Write the study's config, trial records and files under ``out`` (a published copy);
    ``where`` (as ``shard`` takes it) keeps only some trials: those the copy's reports show."""
    folder, out = Path(folder), Path(out)
    config = load_study_config(folder)
    _check_export_folder(out, config.name)
    store = study_store(folder, config)
    runs = sorted(store.finished_runs(), key=lambda run: run.data.tags[KEY_TAG])
    if config.search is None:
        trials = grid_trials(config, list(check_images(config)))
    else:  # a search's fits are those its driver chose: each run's own parameters
        from study.engine.tasks import search_tasks_by_name

        tasks = search_tasks_by_name(config)
        trials = [_searched_spec(config, tasks, run) for run in runs]
    plan = {spec.key: spec for spec in trials}
    kept = {spec.key for spec in select(trials, where or {})}
    (out / BITSTREAMS_DIR).mkdir(parents=True, exist_ok=True)
    in_history = read_history(out, MAX_BITSTREAM_BYTES)  # stowed: not written to the tree again
    still_kept = {}
    lines, names = [], set()
    with tempfile.TemporaryDirectory(prefix="inr-study-export-") as scratch:
        for run in tqdm(runs, desc="export", unit="trial", disable=not progress):
            key = run.data.tags[KEY_TAG]
            if key not in plan:
                raise ArchiveError(f"run {run.info.run_id}: its trial is not in {folder}'s plan")
            if key not in kept:
                continue
            lines.append(_trial_record(store, run, plan[key], config.name).dumps())
            data = store.artifact(run_record(run), BITSTREAM_NAME, Path(scratch)).read_bytes()
            if key in in_history and sha256(data) == in_history[key].sha256:
                still_kept[key] = in_history[key]
                continue
            # New, or not the file stowed for this trial: into the tree, to be committed (and
            # stowed) again.
            (out / BITSTREAMS_DIR / f"{key}.bin").write_bytes(data)
            names.add(f"{key}.bin")
    for stale in (out / BITSTREAMS_DIR).iterdir():
        if stale.name not in names:
            stale.unlink()
    write_history(out, still_kept)
    (out / TRIALS_FILE).write_text("".join(line + "\n" for line in lines))
    (out / CONFIG_FILE).write_text(dump_config(config, portable=True))
    sizes = [p.stat().st_size for p in (out / BITSTREAMS_DIR).iterdir()]
    record_bytes = (out / TRIALS_FILE).stat().st_size
    return Exported(len(lines), sum(sizes), record_bytes, len(still_kept))


@dataclass(frozen=True)
class Rebuilt:
    folder: Path
    trials: int
    # Report files whose bytes differ from the published ones (or exist on one side only).
    differing: list[str]


def _check_export_folder(out: Path, name: str) -> None:
    """``out`` is new, or this study's published copy (published again as it grows): never a
    study folder, which the trials written there would make a published copy, nor another
    study's copy, whose files the export would replace."""
    if not holds_study(out):
        return
    if not is_published_copy(out):
        raise ArchiveError(f"-o {out}: a study folder; export to a folder of its own")
    theirs = load_config(out / CONFIG_FILE, {"storage": str(out.resolve().parent)}).name
    if theirs != name:
        raise ArchiveError(
            f"-o {out}: the published copy of study {theirs!r}, not of {name!r}; export to a "
            "folder of its own"
        )


def published_config(published: Path, storage: Path) -> StudyConfig:
    path = Path(published) / CONFIG_FILE
    if not (Path(published) / TRIALS_FILE).is_file() or not path.is_file():
        raise ArchiveError(
            f"{published}: not a published study with its trials ({CONFIG_FILE}, {TRIALS_FILE})"
        )
    return load_config(path, {"storage": str(storage)})


def rebuild(published: Path, storage: Path, progress: bool = True, jobs: int = 1) -> Rebuilt:
    """A study folder ``storage/NAME`` from a published study's trials; no trial is refitted;
    ``jobs`` processes decode and check them."""
    from study.engine.importer import import_results
    from study.engine.reports import refresh_reports

    published = Path(published)
    config = published_config(published, storage)
    folder = Path(storage) / config.name
    if folder.exists() and any(folder.iterdir()):
        raise ArchiveError(f"{folder}: already exists; rebuild into a new --storage")
    imported = import_results(folder, [published], config, progress=progress, jobs=jobs)
    refresh_reports(folder, config)
    ours, theirs = folder / REPORTS_DIR, published / REPORTS_DIR
    names = {p.name for p in ours.iterdir()} | {p.name for p in theirs.iterdir()}
    differing = sorted(
        name
        for name in names
        if not (ours / name).is_file()
        or not (theirs / name).is_file()
        or (ours / name).read_bytes() != (theirs / name).read_bytes()
    )
    return Rebuilt(folder, imported.trials, differing)

"""MLflow bookkeeping of a study: one parent run per study, one run per trial.

All writes of a study go through one :class:`RunStore` (a single Ray actor during a study), so a
SQLite store never sees two writers and never answers "database is locked". Trial runs carry the
trial's key as a tag; a trial with a FINISHED run is never recorded twice, which makes resuming
exactly-once.
"""

import json
import logging
import math
import sqlite3
import tempfile
import time
import warnings
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from mlflow.utils.file_utils import local_file_uri_to_path

from inr_models import get_codec_class
from study.config import StudyConfig
from study.engine.mlflow_view import view_tags
from study.engine.trial import RATE_PARAMETER, TrialOutcome, TrialSpec
from study.layout import (
    ARTIFACTS_DIR,
    MLFLOW_DB,
    default_tracking_uri,
    refuse_published_copy,
    tracking_location,
)
from study.results.record_text import param_value, rate_value

# SQLAlchemy 2.1 deprecation noise raised through MLflow's store; harmless.
warnings.filterwarnings("ignore", message=".*noload.*")

log = logging.getLogger(__name__)

KIND_TAG = "inr_study.kind"
KEY_TAG = "inr_study.trial_key"
STUDY_TAG = "inr_study.study"
PARENT_TAG = "mlflow.parentRunId"
ERROR_TAG = "inr_study.error"
MISSING_TAG = "inr_study.missing_metrics"
# The fit chosen for an image at one α of a rate-matching search: "reached" or "closest".
MATCH_TAG = "inr_study.match"
MATCH_REASON_TAG = "inr_study.match_reason"
TRIALS_FILTER = f"tags.`{KIND_TAG}` = 'trial'"
# Kept for MLflow's own logic; the UI's view is chosen by the URL (study.engine.mlflow_view).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"
SOURCE_TAGS = {"mlflow.source.type": "JOB"}
VALIDATION_PREFIX = "validation."
ERROR_NAME = "error.txt"
PAGE = 1000
# MLflow takes at most 1,000 metrics in one batch.
BATCH = 1000


@dataclass(frozen=True)
class ImageInput:
    """A trial's image as an MLflow dataset input: which image, prepared how, with which pixels."""

    name: str  # e.g. "kodim01"
    variant: str  # "" for full size, else the crop ("192px center crops")
    digest: str  # of the prepared pixels
    source: str  # the dataset: "kodak" or a folder

    def dataset_input(self) -> DatasetInput:
        name = f"{self.name} ({self.variant})" if self.variant else self.name
        dataset = Dataset(name=name, digest=self.digest, source_type="local", source=self.source)
        return DatasetInput(dataset, [InputTag("mlflow.data.context", "training")])


def _axis_name(codec: str | None) -> str | None:
    try:
        return get_codec_class(codec).rate_axis.name
    except KeyError:
        return None


def run_record(run) -> dict:
    """A trial run as a flat dict: typed parameters, metrics, ids; ``rate`` holds the value of the
    codec's rate setting (also under its own name)."""
    params = {}
    for key, text in run.data.params.items():
        params[key] = None if text == "None" else param_value(key, text)
    # Runs recorded before rate_parameter existed name their rate by the codec's axis alone.
    rate_name = params.get(RATE_PARAMETER) or _axis_name(params.get("codec"))
    if rate_name in params:
        params[rate_name] = rate_value(params.get("codec"), rate_name, params[rate_name])
        params["rate"] = params[rate_name]
    # A metric the trial could not compute is there as None: reports keep its column.
    missing = {key: None for key in run.data.tags.get(MISSING_TAG, "").split(",") if key}
    return {
        **params,
        **missing,
        **run.data.metrics,
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "trial_key": run.data.tags.get(KEY_TAG),
        "match": run.data.tags.get(MATCH_TAG),
    }


def _relocate_artifacts(database: Path, experiment: str, artifact_root: Path) -> None:
    """Point a moved study's experiment and runs at the folder's own artifact store.

    MLflow keeps absolute artifact URIs in its database; a copied study folder would otherwise
    read (and show in ``mlflow ui``) the original's files, or nothing once the original is gone.
    """
    if not database.exists():
        return
    new = artifact_root.resolve().as_uri()
    with closing(sqlite3.connect(database)) as db, db:
        found = db.execute(
            "SELECT experiment_id, artifact_location FROM experiments WHERE name = ?",
            (experiment,),
        ).fetchone()
        if found is None or found[1] == new:
            return
        experiment_id, old = found
        db.execute(
            "UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?",
            (new, experiment_id),
        )
        db.execute(
            "UPDATE runs SET artifact_uri = ? || substr(artifact_uri, ?) "
            "WHERE experiment_id = ? AND substr(artifact_uri, 1, ?) = ?",
            (new, len(old) + 1, experiment_id, len(old), old),
        )
        log.info("study folder moved: artifact URIs now point into %s", artifact_root)


class RunStore:
    """Reads and writes the MLflow runs of one study."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        artifact_root: Path | None = None,
        experiment_tags: dict[str, str] | None = None,
    ):
        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = artifact_root.resolve().as_uri() if artifact_root else None
            self.experiment_id = self.client.create_experiment(experiment, location)
        # Written only when they differ: readers (reports, the UI command) may open the store
        # while a study's recorder writes to it.
        wanted = {EXPERIMENT_KIND_TAG: MODEL_TRAINING, **(experiment_tags or {})}
        have = found.tags if found is not None else {}
        for key, value in wanted.items():
            if have.get(key) != value:
                self.client.set_experiment_tag(self.experiment_id, key, value)

    def artifact(self, record: dict, name: str, scratch: Path) -> Path:
        """A file of a trial run on this machine: where it lies in a local artifact store, else
        downloaded into ``scratch``."""
        uri = self.client.get_run(record["run_id"]).info.artifact_uri
        if uri.startswith("file:"):
            local = Path(local_file_uri_to_path(uri)) / name
            if local.is_file():
                return local
        return Path(self.client.download_artifacts(record["run_id"], name, str(scratch)))

    # --- the study's parent run -------------------------------------------------------------

    def open_parent(self, run_id: str | None, study: str, params: dict, tags: dict) -> str:
        """Reopen the parent run of a resumed study, or start one."""
        if run_id is not None:
            self.client.update_run(run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            return run_id
        run = self.client.create_run(
            self.experiment_id,
            run_name=study,
            tags={KIND_TAG: "study", STUDY_TAG: study, **tags},
        )
        self.client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()])
        return run.info.run_id

    def close_parent(self, run_id: str, status: str, counts: dict[str, int]) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(f"trials_{k}", float(v), now, 0) for k, v in counts.items()]
        self.client.log_batch(run_id, metrics=metrics)
        self.client.set_terminated(run_id, status)

    # --- trial runs -------------------------------------------------------------------------

    def _trial_runs(self, extra_filter: str = "") -> list:
        query = TRIALS_FILTER + (f" and {extra_filter}" if extra_filter else "")
        runs, token = [], None
        while True:
            page = self.client.search_runs(
                [self.experiment_id], query, max_results=PAGE, page_token=token
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs

    def finished_runs(self) -> list:
        return self._trial_runs("attributes.status = 'FINISHED'")

    def records(self, params: dict[str, str] | None = None) -> list[dict]:
        """Finished trial runs as flat dicts: typed parameters, metrics, run and experiment ids."""
        query = ["attributes.status = 'FINISHED'"]
        query += [f"params.`{k}` = '{v}'" for k, v in (params or {}).items()]
        return [run_record(run) for run in self._trial_runs(" and ".join(query))]

    def finished_keys(self) -> set[str]:
        return {run.data.tags[KEY_TAG] for run in self.finished_runs()}

    def finished_metrics(self, key: str) -> dict | None:
        run = self._finished_run(key)
        return None if run is None else dict(run.data.metrics)

    def close_interrupted(self) -> int:
        """Trial runs left RUNNING by a killed driver become KILLED; returns how many."""
        stale = self._trial_runs("attributes.status = 'RUNNING'")
        for run in stale:
            self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        return len(stale)

    def start_trial(
        self,
        spec: TrialSpec,
        parent_id: str,
        tags: dict,
        image: ImageInput | None = None,
        start_ms: int | None = None,
    ) -> str | None:
        """Open a RUNNING run for a trial that starts now (or started at ``start_ms``, for one
        run elsewhere), with its parameters and its image as a dataset input; None when the
        trial already has a FINISHED run (exactly once)."""
        if self._finished_run(spec.key) is not None:
            return None
        run_id = self._start(spec, {**tags, **self._trial_tags(spec, parent_id)}, start_ms)
        self._log(run_id, spec.params(), {})
        if image is not None:
            self.client.log_inputs(run_id, [image.dataset_input()])
        return run_id

    def log_validation(self, run_id: str, record: dict) -> None:
        """A fit's validation as step metrics (step = training iteration)."""
        self.log_validations(run_id, [record])

    def log_validations(self, run_id: str, records: list[dict]) -> None:
        """A fit's validations, all at once (an imported trial's): few writes, not one each."""
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"{VALIDATION_PREFIX}{k}", float(v), now, int(record.get("iteration", 0)))
            for record in records
            for k, v in record.items()
            if k != "iteration" and isinstance(v, int | float) and math.isfinite(v)
        ]
        for start in range(0, len(metrics), BATCH):
            self.client.log_batch(run_id, metrics=metrics[start : start + BATCH])

    def finish_trial(self, run_id: str, outcome: TrialOutcome, end_ms: int | None = None) -> str:
        """Close a trial's run as FINISHED (now, or at ``end_ms``) with its metrics, settings and
        files."""
        metrics = {k: v for k, v in outcome.metrics.items() if isinstance(v, int | float)}
        missing = sorted(k for k, v in outcome.metrics.items() if v is None)
        logged = outcome.spec.params()  # at the run's start
        params = {k: v for k, v in outcome.settings.items() if k not in logged}
        self._log(run_id, params, metrics)
        if missing:
            self.client.set_tag(run_id, MISSING_TAG, ",".join(missing))
        for path in outcome.files.values():
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED), end_ms)
        return run_id

    def fail_trial(self, run_id: str, error: str) -> None:
        """Close a trial's run as FAILED with its traceback (tag and ``error.txt``)."""
        self.client.set_tag(run_id, ERROR_TAG, error[-4000:])
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / ERROR_NAME
            path.write_text(error)
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))

    def record_failure(self, spec: TrialSpec, parent_id: str, error: str, tags: dict) -> str:
        """A FAILED run for a trial that could not report itself (its worker died)."""
        run_id = self._start(spec, {**tags, **self._trial_tags(spec, parent_id)})
        self._log(run_id, spec.params(), {})
        self.fail_trial(run_id, error)
        return run_id

    def update_metrics(self, run_id: str, values: dict[str, float], missing: list[str]) -> None:
        """New values of a finished run's metrics (recomputed later); ``missing``: the metrics it
        still lacks afterwards."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, 0) for k, v in values.items()]
        self.client.log_batch(run_id, metrics=metrics)
        if missing:
            self.client.set_tag(run_id, MISSING_TAG, ",".join(sorted(missing)))
        elif MISSING_TAG in self.client.get_run(run_id).data.tags:
            self.client.delete_tag(run_id, MISSING_TAG)

    def _finished_run(self, key: str):
        runs = self._trial_runs(f"attributes.status = 'FINISHED' and tags.`{KEY_TAG}` = '{key}'")
        return runs[0] if runs else None

    def mark_match(self, key: str, reached: bool, reason: str) -> None:
        """Tag the finished fit that a rate match chose for its image."""
        run_id = self._finished_run(key).info.run_id
        self.client.set_tag(run_id, MATCH_TAG, "reached" if reached else "closest")
        if reason:
            self.client.set_tag(run_id, MATCH_REASON_TAG, reason)

    def log_parent_artifacts(self, run_id: str, paths: list[Path], folder: str) -> None:
        """Files of the whole study (config, reports, dashboard) on its parent run."""
        for path in paths:
            self.client.log_artifact(run_id, str(path), folder)

    @staticmethod
    def _trial_tags(spec: TrialSpec, parent_id: str) -> dict:
        return {KIND_TAG: "trial", KEY_TAG: spec.key, PARENT_TAG: parent_id}

    def _start(self, spec: TrialSpec, tags: dict, start_ms: int | None = None) -> str:
        return self.client.create_run(
            self.experiment_id,
            start_time=start_ms,
            run_name=spec.label(),
            tags={**tags, **SOURCE_TAGS},
        ).info.run_id

    def _log(self, run_id: str, params: dict, metrics: dict) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items() if v is not None],
        )


def study_location(folder: Path, config: StudyConfig) -> tuple[str, str]:
    """A study's tracking URI and experiment, its own store pointed at the folder wherever the
    folder now is."""
    folder = Path(folder)
    refuse_published_copy(folder)  # never an empty store opened in it, nor a study run there
    uri, experiment = tracking_location(folder, config)
    if uri == default_tracking_uri(folder):
        _relocate_artifacts(folder / MLFLOW_DB, experiment, folder / ARTIFACTS_DIR)
    return uri, experiment


def study_store(folder: Path, config: StudyConfig) -> RunStore:
    """The MLflow runs of a study folder, with its trial tables for the UI."""
    return RunStore(
        *study_location(folder, config),
        Path(folder) / ARTIFACTS_DIR,
        view_tags(config, TRIALS_FILTER),
    )


def flat_params(config: StudyConfig) -> dict:
    """The study config as MLflow parameters of the parent run (dotted keys)."""
    flat = {}

    def walk(prefix: str, value) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}.{key}" if prefix else key, item)
        else:
            flat[prefix] = json.dumps(value) if isinstance(value, list) else value

    walk("", config.model_dump(mode="json", exclude_none=True))
    return {k: str(v)[:6000] for k, v in flat.items()}

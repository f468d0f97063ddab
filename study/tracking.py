"""MLflow bookkeeping of a study: one parent run per study, one run per trial.

All writes of a study go through one :class:`RunStore` (a single Ray actor during a study), so a
SQLite store never sees two writers and never answers "database is locked". Trial runs carry the
trial's key as a tag; a trial with a FINISHED run is never recorded twice, which makes resuming
exactly-once.
"""

import logging
import tempfile
import time
import warnings
from pathlib import Path

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from study.trial import TrialOutcome, TrialSpec

# SQLAlchemy 2.1 deprecation noise raised through MLflow's store; harmless.
warnings.filterwarnings("ignore", message=".*noload.*")

log = logging.getLogger(__name__)

KIND_TAG = "inr_study.kind"
KEY_TAG = "inr_study.trial_key"
STUDY_TAG = "inr_study.study"
PARENT_TAG = "mlflow.parentRunId"
ERROR_TAG = "inr_study.error"
MISSING_TAG = "inr_study.missing_metrics"
PAGE = 1000


FLOAT_PARAMS = {"lmbda", "alpha"}
INT_PARAMS = {"quality", "seed"}


def run_record(run) -> dict:
    params = {}
    for key, text in run.data.params.items():
        if key in FLOAT_PARAMS:
            params[key] = float(text)
        elif key in INT_PARAMS:
            params[key] = int(text)
        else:
            params[key] = None if text == "None" else text
    return {
        **params,
        **run.data.metrics,
        "run_id": run.info.run_id,
        "experiment_id": run.info.experiment_id,
        "trial_key": run.data.tags.get(KEY_TAG),
    }


class RunStore:
    """Reads and writes the MLflow runs of one study."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_root: Path | None = None):
        self.client = MlflowClient(tracking_uri)
        self.tracking_uri = tracking_uri
        found = self.client.get_experiment_by_name(experiment)
        if found is not None:
            self.experiment_id = found.experiment_id
        else:
            location = artifact_root.resolve().as_uri() if artifact_root else None
            self.experiment_id = self.client.create_experiment(experiment, location)

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
        query = f"tags.`{KIND_TAG}` = 'trial'" + (f" and {extra_filter}" if extra_filter else "")
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
        runs = self._trial_runs(f"attributes.status = 'FINISHED' and tags.`{KEY_TAG}` = '{key}'")
        return dict(runs[0].data.metrics) if runs else None

    def close_interrupted(self) -> int:
        """Trial runs left RUNNING by a killed driver become KILLED; returns how many."""
        stale = self._trial_runs("attributes.status = 'RUNNING'")
        for run in stale:
            self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
        return len(stale)

    def record(self, outcome: TrialOutcome, parent_id: str, tags: dict) -> str:
        """One FINISHED run with the trial's parameters, metrics and files; idempotent per key."""
        key = outcome.spec.key
        existing = self._trial_runs(
            f"attributes.status = 'FINISHED' and tags.`{KEY_TAG}` = '{key}'"
        )
        if existing:
            return existing[0].info.run_id
        metrics = {k: v for k, v in outcome.metrics.items() if isinstance(v, int | float)}
        missing = sorted(k for k, v in outcome.metrics.items() if v is None)
        run_tags = {**tags, **self._trial_tags(outcome.spec, parent_id)}
        if missing:
            run_tags[MISSING_TAG] = ",".join(missing)
        run_id = self._start(outcome.spec, run_tags)
        params = {**outcome.spec.params(), **outcome.settings}
        self._log(run_id, params, metrics)
        for path in outcome.files.values():
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))
        return run_id

    def record_failure(self, spec: TrialSpec, parent_id: str, error: str, tags: dict) -> str:
        run_tags = {**tags, **self._trial_tags(spec, parent_id), ERROR_TAG: error[-4000:]}
        run_id = self._start(spec, run_tags)
        self._log(run_id, spec.params(), {})
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "error.txt"
            path.write_text(error)
            self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
        return run_id

    @staticmethod
    def _trial_tags(spec: TrialSpec, parent_id: str) -> dict:
        return {KIND_TAG: "trial", KEY_TAG: spec.key, PARENT_TAG: parent_id}

    def _start(self, spec: TrialSpec, tags: dict) -> str:
        return self.client.create_run(
            self.experiment_id, run_name=spec.label(), tags=tags
        ).info.run_id

    def _log(self, run_id: str, params: dict, metrics: dict) -> None:
        now = int(time.time() * 1000)
        self.client.log_batch(
            run_id,
            metrics=[Metric(k, float(v), now, 0) for k, v in metrics.items()],
            params=[Param(k, str(v)) for k, v in params.items() if v is not None],
            tags=[RunTag("mlflow.source.type", "JOB")],
        )

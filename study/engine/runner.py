"""Ray Tune wiring of a study: trials on local Ray or a cluster, Optuna search through
OptunaSearch, every result recorded in MLflow by one recorder actor. The trial itself is
:func:`study.engine.trial.run_trial`.
"""

import json
import logging
import os
import subprocess
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune
from ray.tune.search.optuna import OptunaSearch
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from study.config import StudyConfig, dump_config, import_plugins
from study.engine.plan import grid_trials, image_options, load_images
from study.engine.progress import StudyProgress
from study.engine.search import (
    Recommendation,
    SearchTask,
    finished_samples,
    optuna_storage,
    recommend,
    resolve_metric,
    score,
    search_tasks,
)
from study.engine.tracking import RunStore, study_location
from study.engine.trial import TrialOutcome, TrialSpec, run_trial
from study.layout import (
    ARTIFACTS_DIR,
    CONFIG_FILE,
    RAY_DIR,
    RECOMMENDATIONS_FILE,
    read_state,
    recorded_tracking_uri,
    write_state,
)
from study.results.metrics import lpips_available
from study.results.table import quality_metrics

log = logging.getLogger(__name__)

AUTH_ENV = "RAY_AUTH_MODE"
# Tune's legacy output engine honours verbose=0; the new one still prints tables. Our progress bar
# replaces both.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Each failure is reported in one line by StudyProgress, with its full traceback in the trial's
# MLflow run; Tune would print every traceback to the terminal as well.
QUIETED_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Local Ray (loopback, no token needed) or a running cluster (token auth unless the user set
    ``RAY_AUTH_MODE`` otherwise)."""
    if address is None:
        os.environ.setdefault(AUTH_ENV, "disabled")
        ray.init(
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    else:
        if AUTH_ENV not in os.environ:
            log.info("%s is not set: using 'token', Ray's cluster default", AUTH_ENV)
            os.environ[AUTH_ENV] = "token"
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    levels = {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        ray.shutdown()
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


class TuneProgress(StudyProgress, tune.Callback):
    """The study's progress bar, as Ray Tune calls it."""


class Recorder(RunStore):
    """The study's single MLflow writer; trials send it their files as bytes, so it works the same
    when they run on other machines."""

    def __init__(self, tracking_uri: str, experiment: str, folder: str, plugins: tuple[str, ...]):
        # Trial specs name their rate setting through the codec's declaration, plugins' included.
        import_plugins(plugins)
        # Latest traceback of each failing trial, sent by the trial itself: Tune's error file can
        # lag behind its error callback.
        self.errors: dict[str, str] = {}
        super().__init__(tracking_uri, experiment, Path(folder) / ARTIFACTS_DIR)

    def note_error(self, key: str, text: str) -> None:
        self.errors[key] = text

    def record_trial_failure(self, spec, parent_id: str, error: str, tags: dict) -> str:
        """A FAILED run with the trial's own traceback when it sent one; returns the text kept."""
        text = self.errors.pop(spec.key, error)
        self.record_failure(spec, parent_id, text, tags)
        return text

    def record_trial(
        self, spec, metrics: dict, settings: dict, files: dict[str, bytes], parent_id, tags
    ) -> str:
        """Record a trial's outcome; its files are stored once, as the run's artifacts."""
        with tempfile.TemporaryDirectory(prefix="inr-study-record-") as scratch:
            paths = {}
            for name, data in files.items():
                paths[name] = Path(scratch) / name
                paths[name].write_bytes(data)
            return self.record(TrialOutcome(spec, metrics, settings, paths), parent_id, tags)


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares."""

    parent_id: str
    tags: dict
    device: str
    with_lpips: bool
    threads: int
    plugins: tuple[str, ...] = ()

    def torch_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def _execute(spec: TrialSpec, image: np.ndarray, context: TrialContext, recorder) -> dict:
    """Run one trial and send its outcome to the recorder; returns its metrics."""
    import_plugins(context.plugins)
    torch.set_num_threads(context.threads)
    with tempfile.TemporaryDirectory(prefix="inr-study-trial-") as scratch:
        try:
            outcome = run_trial(
                spec,
                image,
                Path(scratch),
                device=context.torch_device(),
                with_lpips=context.with_lpips,
            )
        except Exception:
            ray.get(recorder.note_error.remote(spec.key, traceback.format_exc()))
            raise
        files = {path.name: path.read_bytes() for path in outcome.files.values()}
    tags = {**context.tags, "device": outcome.settings.get("device", "cpu")}
    if spec.preset:
        tags["preset"] = spec.preset
    ray.get(
        recorder.record_trial.remote(
            spec, outcome.metrics, outcome.settings, files, context.parent_id, tags
        )
    )
    return outcome.metrics


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def grid_trial(config: dict, *, images: dict, recorder, context: TrialContext) -> None:
    spec = TrialSpec(**config["spec"])
    tune.report(_numbers(_execute(spec, images[spec.image], context, recorder)))


def search_trial(
    config: dict,
    *,
    images: dict,
    recorder,
    context: TrialContext,
    task: SearchTask,
    metric: str,
    tolerance: float,
    variant: str,
    seed: int,
) -> None:
    results = []
    for name, image in images.items():
        spec = task.trial_spec(config, name, variant, seed)
        # Samples are drawn anew on each run: one may repeat, or be finished by an earlier run.
        done = ray.get(recorder.finished_metrics.remote(spec.key))
        results.append(done if done is not None else _execute(spec, image, context, recorder))
    values = [r.get(metric) for r in results]
    if any(v is None for v in values):
        raise ValueError(f"metric {metric} is missing for some images; pick another metric")
    bpp, value = float(np.mean([r["bpp"] for r in results])), float(np.mean(values))
    tune.report(
        {"bpp": bpp, metric: value, "score": score(metric, value, bpp, task.target_bpp, tolerance)}
    )


def git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


@dataclass
class StudyResult:
    folder: Path
    tracking_uri: str
    experiment: str
    counts: dict[str, int]
    recommendations: list[Recommendation]


class Study:
    """A study folder: its config, its MLflow store and Ray Tune's files."""

    def __init__(self, config: StudyConfig, folder: Path | None = None):
        self.config = config
        self.folder = Path(folder or config.folder).resolve()
        self.tracking_uri, self.experiment = study_location(self.folder, config)

    def run(self, address: str | None = None) -> StudyResult:
        config = self.config
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / CONFIG_FILE).write_text(dump_config(config))
        images = load_images(config)  # before Ray starts: bad images fail fast
        with_lpips = config.lpips and lpips_available()
        state = read_state(self.folder)
        with ray_session(address):
            node = ray.get_runtime_context().get_node_id()
            recorder = (
                ray.remote(Recorder)
                .options(
                    num_cpus=0,
                    max_concurrency=1,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
                )
                .remote(self.tracking_uri, self.experiment, str(self.folder), tuple(config.plugins))
            )
            tags = {"inr_study.study": config.name, "git_commit": git_commit()}
            parent_id = ray.get(
                recorder.open_parent.remote(
                    state.get("parent_run_id"), config.name, _flat_params(config), tags
                )
            )
            state.update(
                parent_run_id=parent_id,
                tracking_uri=recorded_tracking_uri(self.folder, self.tracking_uri),
                experiment=self.experiment,
            )
            write_state(self.folder, state)
            interrupted = ray.get(recorder.close_interrupted.remote())
            if interrupted:
                log.info("closed %d trial runs left open by an interrupted driver", interrupted)
            context = TrialContext(
                parent_id,
                tags,
                config.device,
                with_lpips,
                max(1, int(config.resources.cpus)),
                tuple(config.plugins),
            )
            if config.search is None:
                counts, recommendations = self._run_grid(images, recorder, context), []
            else:
                counts, recommendations = self._run_search(images, recorder, context, with_lpips)
            status = "FINISHED" if counts["failed"] == 0 else "FAILED"
            ray.get(recorder.close_parent.remote(parent_id, status, counts))
        return StudyResult(self.folder, self.tracking_uri, self.experiment, counts, recommendations)

    def _tuner(
        self, trainable, name: str, progress: TuneProgress, space=None, **tune_config
    ) -> tune.Tuner:
        config = self.config
        resources = {"cpu": config.resources.cpus, "gpu": config.resources.gpus}
        return tune.Tuner(
            tune.with_resources(trainable, resources),
            param_space=space,
            tune_config=tune.TuneConfig(
                max_concurrent_trials=config.max_concurrent,
                trial_dirname_creator=lambda trial: trial.trial_id,
                reuse_actors=True,
                **tune_config,
            ),
            run_config=tune.RunConfig(
                name=f"{name}-{time.strftime('%Y%m%d-%H%M%S')}",
                storage_path=str(self.folder / RAY_DIR),
                verbose=0,
                callbacks=[progress],
                failure_config=tune.FailureConfig(max_failures=config.retries),
            ),
        )

    def _run_grid(self, images: dict, recorder, context: TrialContext) -> dict[str, int]:
        trials = grid_trials(self.config, list(images))
        finished = ray.get(recorder.finished_keys.remote())
        pending = [t for t in trials if t.key not in finished]
        print(
            f"{self.config.name}: {len(trials)} trials, {len(trials) - len(pending)} already "
            f"finished, {len(pending)} to run",
            flush=True,
        )
        if not pending:
            return {"finished": len(trials), "failed": 0}

        def record_failure(trial_config: dict, error: str) -> str:
            spec = TrialSpec(**trial_config["spec"])
            return ray.get(
                recorder.record_trial_failure.remote(spec, context.parent_id, error, context.tags)
            )

        progress = TuneProgress(
            len(pending),
            # The bar's "best" quotes the table's first quality metric.
            quality_metrics()[0].key,
            self.config.name,
            lambda c: TrialSpec(**c["spec"]).label(),
            record_failure,
        )
        trainable = tune.with_parameters(
            grid_trial, images=images, recorder=recorder, context=context
        )
        space = {"spec": tune.grid_search([asdict(t) for t in pending])}
        self._tuner(trainable, "grid", progress, space, trial_name_creator=_trial_name).fit()
        counts = progress.counts
        counts["finished"] += len(trials) - len(pending)
        return counts

    def _run_search(
        self, images: dict, recorder, context: TrialContext, with_lpips: bool
    ) -> tuple[dict[str, int], list[Recommendation]]:
        config, search = self.config, self.config.search
        metric = resolve_metric(search, config.images.crop, with_lpips)
        storage = optuna_storage(self.folder)
        variant = image_options(config).label()
        counts, recommendations = {"finished": 0, "failed": 0}, []
        for task in search_tasks(config):
            study_name = f"{config.name}/{task.name}"
            remaining = search.trials - finished_samples(storage, study_name)
            if remaining > 0:
                searcher = OptunaSearch(
                    space=task.space(search),
                    metric="score",
                    mode="max",
                    study_name=study_name,
                    storage=storage,
                    seed=search.seed + search.trials - remaining,
                )
                progress = TuneProgress(
                    remaining, metric, task.name, lambda c: _describe_sample(c), None
                )
                trainable = tune.with_parameters(
                    search_trial,
                    images=images,
                    recorder=recorder,
                    context=context,
                    task=task,
                    metric=metric,
                    tolerance=search.tolerance,
                    variant=variant,
                    seed=search.seed,
                )
                self._tuner(
                    trainable, "search", progress, search_alg=searcher, num_samples=remaining
                ).fit()
                for key, value in progress.counts.items():
                    counts[key] += value
            records = ray.get(recorder.records.remote({"search": task.name}))
            recommendation = recommend(task, records, metric, search.tolerance)
            if recommendation is not None:
                recommendations.append(recommendation)
                print(recommendation.describe(), flush=True)
        path = self.folder / RECOMMENDATIONS_FILE
        path.write_text(json.dumps([asdict(r) for r in recommendations], indent=2) + "\n")
        return counts, recommendations


def _trial_name(trial) -> str:
    return TrialSpec(**trial.config["spec"]).label().replace(" ", "_")


def _describe_sample(sample: dict) -> str:
    return " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sample.items()
    )


def _flat_params(config: StudyConfig) -> dict:
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

"""Ray Tune wiring of a study: trials on local Ray or a cluster, Optuna search through
OptunaSearch, every result recorded in MLflow by one recorder actor. The trial itself is
:func:`study.engine.trial.run_trials` (one trial, or a batch of fits trained together).
"""

import functools
import json
import logging
import os
import socket
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune
from ray.tune.search import Searcher
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from study.config import StudyConfig, dump_config, import_plugins
from study.data.imageio import image_digest
from study.engine import local_cluster
from study.engine.lock import study_lock
from study.engine.mlflow_view import view_tags
from study.engine.plan import check_losses, image_options, load_images
from study.engine.progress import SearchProgress, StudyProgress
from study.engine.provenance import code_tags, git_commit
from study.engine.search import (
    Recommendation,
    enqueue_grid,
    optuna_storage,
    optuna_study,
    pareto_front,
    recommend,
    reopen_matches,
    resolve_metric,
    sample_result,
    samples_to_run,
    task_space,
    tell,
)
from study.engine.selection import Where, pick
from study.engine.tasks import SearchTask, run_image, search_tasks
from study.engine.tracking import (
    TRIALS_FILTER,
    ImageInput,
    RunStore,
    flat_params,
    study_location,
    study_store,
)
from study.engine.trial import TrialJob, TrialOutcome, TrialSpec, run_trials
from study.errors import InputError
from study.layout import (
    ARTIFACTS_DIR,
    CONFIG_FILE,
    PARETO_FILE,
    RAY_DIR,
    RECOMMENDATIONS_FILE,
    read_state,
    recorded_tracking_uri,
    write_state,
)
from study.results.metrics import optional_metrics_available
from study.results.table import quality_metrics

log = logging.getLogger(__name__)

# Tune's legacy output engine honours verbose=0; the new one still prints tables. Our progress bar
# replaces both.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Each failure is reported in one line by StudyProgress, with its full traceback in the trial's
# MLflow run; Tune would print every traceback to the terminal as well.
QUIETED_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")


@contextmanager
def ray_session(
    address: str | None,
    folder: Path,
    local_cpus: int | None = None,
    local_gpus: int | None = None,
) -> Iterator[None]:
    """A local Ray instance of this study's own (token-authenticated, see
    ``study.engine.local_cluster``) or a running cluster (token authentication unless the user set
    ``RAY_AUTH_MODE`` otherwise)."""
    session = None
    if address is None:
        session = local_cluster.prepare(folder)
        _reload_ray_auth_settings()
        try:
            ray.init(
                address="local",
                num_cpus=local_cpus,
                num_gpus=local_gpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=str(session.temp_dir),
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as error:
            raise RayStartError(f"local Ray did not start: {error}") from error
    else:
        if local_cluster.AUTH_MODE_ENV not in os.environ:
            log.info("RAY_AUTH_MODE is not set: using 'token', Ray's cluster default")
            os.environ[local_cluster.AUTH_MODE_ENV] = "token"
        _reload_ray_auth_settings()
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    levels = {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        ray.shutdown()
        if session is not None:
            local_cluster.finish(session)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _reload_ray_auth_settings() -> None:
    """Make this process see the authentication settings just put in its environment: Ray reads
    them once, when it is imported (the pinned Ray's own way to refresh them)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


class RayStartError(InputError):
    """Ray could not be started on this machine; the message says why."""


class TuneProgress(StudyProgress, tune.Callback):
    """The study's progress bar, as Ray Tune calls it."""


class TuneSearchProgress(SearchProgress, tune.Callback):
    """The search's progress bar, as Ray Tune calls it."""


class Recorder(RunStore):
    """The study's single MLflow writer; trials send it their files as bytes, so it works the same
    when they run on other machines."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        folder: str,
        plugins: tuple[str, ...],
        experiment_tags: dict[str, str],
    ):
        # Trial specs name their rate setting through the codec's declaration, plugins' included.
        import_plugins(plugins)
        # Latest traceback of each failing trial, sent by the trial itself: Tune's error file can
        # lag behind its error callback.
        self.errors: dict[str, str] = {}
        super().__init__(tracking_uri, experiment, Path(folder) / ARTIFACTS_DIR, experiment_tags)

    def fail_trial_attempt(self, key: str, run_id: str, error: str) -> None:
        """An attempt that raised: its run becomes FAILED with the trial's own traceback."""
        self.errors[key] = error
        self.fail_trial(run_id, error)

    def record_trial_failure(self, spec, parent_id: str, error: str, tags: dict) -> str:
        """After the last attempt: the trial's own traceback (its run is already FAILED), else a
        FAILED run with Tune's error (the worker died before it could report)."""
        if spec.key in self.errors:
            return self.errors.pop(spec.key)
        self.record_failure(spec, parent_id, error, tags)
        return error

    def finish_trial_run(self, run_id: str, spec, metrics: dict, settings: dict, files) -> str:
        """Close a trial's run; its files are stored once, as the run's artifacts."""
        with tempfile.TemporaryDirectory(prefix="inr-study-record-") as scratch:
            paths = {}
            for name, data in files.items():
                paths[name] = Path(scratch) / name
                paths[name].write_bytes(data)
            return self.finish_trial(run_id, TrialOutcome(spec, metrics, settings, paths))


@dataclass(frozen=True)
class TrialContext:
    """What every trial of a study shares."""

    parent_id: str
    tags: dict
    device: str
    with_optional_metrics: bool
    threads: int
    extra_metrics: tuple[str, ...] = ()  # the opt-in metrics the study computes
    plugins: tuple[str, ...] = ()
    # Each image as an MLflow dataset input, by name.
    inputs: dict[str, ImageInput] = field(default_factory=dict)

    def torch_device(self) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device


def _execute(spec: TrialSpec, image: np.ndarray, context: TrialContext, recorder) -> dict | None:
    """Run one trial, live in its MLflow run (opened now, validations as step metrics, closed
    with the outcome); returns its metrics, None if an earlier run already finished it."""
    return _execute_batch([spec], {spec.image: image}, context, recorder)[0]


def _execute_batch(
    specs: list[TrialSpec], images: dict, context: TrialContext, recorder
) -> list[dict | None]:
    """``_execute`` for trials of one codec and preset whose fits train together (``run_trials``),
    each in its own MLflow run. A failed fit fails its run; the others are recorded, then the
    batch raises, so Tune's retry runs only what is unfinished."""
    import_plugins(context.plugins)
    torch.set_num_threads(context.threads)
    device = context.torch_device()
    tags = {
        **context.tags,
        "device": device,
        # Where it ran: on a cluster, which machine and Ray node fitted it.
        "host": socket.gethostname(),
        "ray_node": ray.get_runtime_context().get_node_id(),
        "executor": "ray",
        # The GPU share Ray gave this trial's worker (several trials may share one GPU).
        **_visible_devices(),
    }
    run_ids = [
        ray.get(
            recorder.start_trial.remote(
                spec,
                context.parent_id,
                {**tags, **({"preset": spec.preset} if spec.preset else {})},
                context.inputs.get(spec.image),
            )
        )
        for spec in specs
    ]
    started = [(spec, run_id) for spec, run_id in zip(specs, run_ids, strict=True) if run_id]
    metrics: dict[str, dict] = {}
    failures: list[BaseException] = []
    with tempfile.TemporaryDirectory(prefix="inr-study-trial-") as scratch:
        jobs = [
            TrialJob(spec, images[spec.image], Path(scratch) / spec.key,
                     on_validation=functools.partial(_log_validation, recorder, run_id))
            for spec, run_id in started
        ]  # fmt: skip
        outcomes = (
            run_trials(
                jobs,
                device=device,
                with_optional_metrics=context.with_optional_metrics,
                extra_metrics=context.extra_metrics,
            )
            if jobs
            else []
        )
        for (spec, run_id), outcome in zip(started, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                error = "".join(traceback.format_exception(outcome))
                ray.get(recorder.fail_trial_attempt.remote(spec.key, run_id, error))
                failures.append(outcome)
                continue
            files = {path.name: path.read_bytes() for path in outcome.files.values()}
            ray.get(
                recorder.finish_trial_run.remote(
                    run_id, spec, outcome.metrics, outcome.settings, files
                )
            )
            metrics[spec.key] = outcome.metrics
    if len(specs) == 1 and failures:
        raise failures[0]
    if failures:
        raise RuntimeError(
            f"{len(failures)} of {len(specs)} fits of the batch failed; first: "
            f"{type(failures[0]).__name__}: {failures[0]}"
        ) from failures[0]
    return [metrics.get(spec.key) for spec in specs]


def _log_validation(recorder, run_id: str, record: dict) -> None:
    recorder.log_validation.remote(run_id, record)  # the actor keeps the order of calls


def _visible_devices() -> dict:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return {} if visible is None else {"cuda_visible_devices": visible}


def _numbers(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, int | float)}


def grid_trial(config: dict, *, images: dict, recorder, context: TrialContext) -> None:
    """One Tune trial of a grid study: one grid trial, or a batch of them fitted together."""
    specs = [TrialSpec(**spec) for spec in config["specs"]]
    results = _execute_batch(specs, images, context, recorder)
    # None: a run of an earlier driver finished it meanwhile; nothing left to report.
    finished = [metrics for metrics in results if metrics]
    tune.report(_numbers(finished[0] if finished else {}) | {"fits": len(finished)})


def _fit(spec: TrialSpec, image: np.ndarray, context: TrialContext, recorder) -> dict:
    """A fit's metrics: fitted now, or from MLflow when an earlier run finished it (samples repeat,
    drivers get killed; ``_execute`` says so by returning None)."""
    return _execute(spec, image, context, recorder) or ray.get(
        recorder.finished_metrics.remote(spec.key)
    )


class ImageJob:
    """One sample on one image, as its own Ray actor holding a fit's resources. An actor, not a
    task: a task blocked in ``ray.get`` (on the recorder, around every fit) lends its CPUs back
    to Ray, which starts another image's fit on them, so more fits would run than CPUs; an
    actor keeps its CPUs until it is killed."""

    def run(self, task: SearchTask, sample: dict, name: str, image, context, recorder, **settings):
        import_plugins(context.plugins)  # the task's family, codec or metric may be a plugin's
        earlier = ()
        if task.target_bpp is not None:  # a match starts from the image's finished fits
            earlier = ray.get(recorder.records.remote({"codec": task.codec.name, "image": name}))
        outcome = run_image(
            task,
            sample,
            name,
            lambda spec: _fit(spec, image, context, recorder),
            earlier=earlier,
            **settings,
        )
        if task.target_bpp is not None:
            ray.get(recorder.mark_match.remote(outcome.key, outcome.reached, outcome.reason))
        return outcome


def search_sample(
    config: dict,
    *,
    images: dict,
    recorder,
    context: TrialContext,
    tasks: dict[str, SearchTask],
    search,
    metric: str,
    variant: str,
    fit_resources: dict,
) -> None:
    """A Tune trial for one sample of one task: its images run side by side, an ``ImageJob``
    each, every job ended as soon as its image is done so the next one gets its resources."""
    import_plugins(context.plugins)
    task = tasks[config["task"]]
    # A crashed job (its worker killed, say) starts once more; its fits so far are recorded.
    job = ray.remote(ImageJob).options(**fit_resources, max_restarts=1, max_task_retries=1)
    settings = {"search": search, "metric": metric, "variant": variant}
    calls = [
        (task, config["sample"], name, image, context, recorder) for name, image in images.items()
    ]
    outcomes = run_in_actors(job, calls, settings)
    tune.report(sample_result(task, outcomes, metric, search.tolerance))


def run_in_actors(job, calls: list[tuple], settings: dict) -> list:
    """``run(*call, **settings)`` of each call, each in a ``job`` actor of its own, side by
    side; an actor is killed as soon as its call returns, so its resources pass on to a waiting
    one. The results, in the calls' order."""
    jobs = {}
    for call in calls:
        actor = job.remote()
        jobs[actor.run.remote(*call, **settings)] = actor
    futures, running = list(jobs), list(jobs)
    while running:
        done, running = ray.wait(running, num_returns=1)
        ray.kill(jobs.pop(done[0]))
    return ray.get(futures)


class MultiTaskSearcher(Searcher):
    """Feeds one Tune run with the samples of every search task, each from its own Optuna study,
    so all tasks share the cluster; at most ``concurrent`` samples of a task are in flight, so
    Optuna learns from earlier samples before it proposes many more."""

    def __init__(self, tasks, studies: dict, spaces: dict, remaining: dict, concurrent: int):
        super().__init__()
        self.tasks, self.studies, self.spaces = tasks, studies, spaces
        self.remaining, self.concurrent = dict(remaining), concurrent
        self.pending: dict[str, tuple] = {}  # Tune trial id -> (task name, Optuna trial)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # objectives are the tasks' own, told to Optuna directly

    def suggest(self, trial_id: str):
        in_flight = Counter(name for name, _ in self.pending.values())
        open_tasks = [
            t
            for t in self.tasks
            if self.remaining[t.name] > 0 and in_flight[t.name] < self.concurrent
        ]
        if not open_tasks:
            return Searcher.FINISHED if not any(self.remaining.values()) else None
        task = min(open_tasks, key=lambda t: (in_flight[t.name], -self.remaining[t.name]))
        trial = self.studies[task.name].ask(self.spaces[task.name])
        self.remaining[task.name] -= 1
        self.pending[trial_id] = (task.name, trial)
        return {"task": task.name, "sample": dict(trial.params)}

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False):
        name, trial = self.pending.pop(trial_id)
        objective = None if error or not result else result.get("objective")
        tell(self.studies[name], trial, objective)

    def save(self, checkpoint_path: str) -> None:
        # Everything worth keeping is in the tasks' Optuna studies (optuna.db) and MLflow.
        Path(checkpoint_path).write_text(json.dumps(self.remaining))

    def restore(self, checkpoint_path: str) -> None:
        self.remaining = json.loads(Path(checkpoint_path).read_text())


@dataclass
class SearchPlan:
    """A search's tasks, their Optuna studies, and the samples each takes in this run."""

    metric: str
    tasks: list[SearchTask]
    studies: dict
    remaining: dict[str, int]


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

    def run(
        self,
        address: str | None = None,
        local_cpus: int | None = None,
        local_gpus: int | None = None,
        where: Where | None = None,
    ) -> StudyResult:
        """Run the study's pending trials (on the cluster at ``address``, else on a local Ray
        using ``local_cpus`` CPUs, default all); StudyBusyError at once if another driver runs
        it. ``where`` runs only some of them now: a grid's trials, a search's whole tasks."""
        # Before anything is written or started: bad images, and losses that cannot train on
        # them, fail fast and leave no folder behind; so does a ``where`` that picks nothing.
        images = load_images(self.config)
        check_losses(self.config, {name: pixels.shape[:2] for name, pixels in images.items()})
        picked, of_all = pick(self.config, list(images), where or {})
        with study_lock(self.folder):
            return self._run(address, (local_cpus, local_gpus), images, picked, of_all)

    def _run(
        self,
        address: str | None,
        local: tuple[int | None, int | None],
        images: dict,
        picked: list,
        of_all: int,
    ) -> StudyResult:
        config = self.config
        (self.folder / CONFIG_FILE).write_text(dump_config(config))
        with_optional_metrics = config.optional_metrics and optional_metrics_available()
        # The parent run, and what is left, before any cluster starts (no trial runs yet, so
        # the driver writes here): a finished study needs no cluster at all.
        store = study_store(self.folder, config)
        tags = {"inr_study.study": config.name, **code_tags(git_commit())}
        parent_id = self._open_parent(store, tags)
        if config.search is None:
            pending = self._pending_trials(picked, of_all, store)
            to_run = len(pending)
        else:
            plan = self._search_plan(picked, images, with_optional_metrics, store)
            to_run = sum(plan.remaining.values())
        counts = {"finished": len(picked) if config.search is None else 0, "failed": 0}
        if to_run:
            context = TrialContext(
                parent_id=parent_id,
                tags=tags,
                device=config.device,
                with_optional_metrics=with_optional_metrics,
                threads=max(1, int(config.resources.cpus)),
                extra_metrics=tuple(config.extra_metrics),
                plugins=tuple(config.plugins),
                inputs=self._image_inputs(images),
            )
            with ray_session(address, self.folder, *local):
                recorder = self._recorder()
                if config.search is None:
                    counts = self._run_grid(pending, images, recorder, context)
                    counts["finished"] += len(picked) - len(pending)
                else:
                    counts = self._run_search(plan, images, recorder, context)
        recommendations = (
            [] if config.search is None else self._recommend(plan, store, list(images))
        )
        status = "FINISHED" if counts["failed"] == 0 else "FAILED"
        store.close_parent(parent_id, status, counts)
        return StudyResult(self.folder, self.tracking_uri, self.experiment, counts, recommendations)

    def _open_parent(self, store: RunStore, tags: dict) -> str:
        """The study's parent run, reopened or started and kept in the folder's state; trial
        runs a killed driver left open are closed as KILLED."""
        state = read_state(self.folder)
        parent_id = store.open_parent(
            state.get("parent_run_id"), self.config.name, flat_params(self.config), tags
        )
        state.update(
            parent_run_id=parent_id,
            tracking_uri=recorded_tracking_uri(self.folder, self.tracking_uri),
            experiment=self.experiment,
        )
        write_state(self.folder, state)
        interrupted = store.close_interrupted()
        if interrupted:
            log.info("closed %d trial runs left open by an interrupted driver", interrupted)
        return parent_id

    def _recorder(self):
        """The study's one MLflow writer while trials run, on the driver's node (the store is
        a file there)."""
        node = ray.get_runtime_context().get_node_id()
        return (
            ray.remote(Recorder)
            .options(
                num_cpus=0,
                max_concurrency=1,
                scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
            )
            .remote(
                self.tracking_uri,
                self.experiment,
                str(self.folder),
                tuple(self.config.plugins),
                view_tags(self.config, TRIALS_FILTER),  # the UI's trial tables, from the start
            )
        )

    def _image_inputs(self, images: dict[str, np.ndarray]) -> dict[str, ImageInput]:
        variant = image_options(self.config).label()
        return {
            name: ImageInput(
                name=name,
                variant=variant,
                digest=image_digest(pixels),
                source=self.config.images.dataset,
            )
            for name, pixels in images.items()
        }

    def _tuner(
        self,
        trainable,
        name: str,
        progress: TuneProgress,
        space=None,
        trial_resources: dict | None = None,
        **tune_config,
    ) -> tune.Tuner:
        config = self.config
        resources = trial_resources or {
            "cpu": config.resources.cpus,
            "gpu": config.resources.gpus,
            **config.resources.custom,
        }
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

    def _pending_trials(
        self, trials: list[TrialSpec], of_all: int, store: RunStore
    ) -> list[TrialSpec]:
        finished = store.finished_keys()
        pending = [t for t in trials if t.key not in finished]
        picked = f" (picked of {of_all})" if len(trials) < of_all else ""
        print(
            f"{self.config.name}: {len(trials)} trials{picked}, "
            f"{len(trials) - len(pending)} already finished, {len(pending)} to run",
            flush=True,
        )
        return pending

    def _run_grid(
        self, pending: list[TrialSpec], images: dict, recorder, context: TrialContext
    ) -> dict[str, int]:
        def record_failure(trial_config: dict, error: str) -> str:
            done = ray.get(recorder.finished_keys.remote())
            specs = [TrialSpec(**spec) for spec in trial_config["specs"]]
            errors = [
                ray.get(
                    recorder.record_trial_failure.remote(
                        spec, context.parent_id, error, context.tags
                    )
                )
                for spec in specs
                if spec.key not in done
            ]
            return errors[0] if errors else error

        progress = TuneProgress(
            len(pending),
            # The bar's "best" quotes the table's first quality metric.
            quality_metrics()[0].key,
            self.config.name,
            _describe_batch,
            record_failure,
            size=lambda c: len(c["specs"]),
        )
        trainable = tune.with_parameters(
            grid_trial, images=images, recorder=recorder, context=context
        )
        batches = fit_batches(pending, self.config.resources.fit_batch)
        space = {"specs": tune.grid_search([[asdict(t) for t in batch] for batch in batches])}
        self._tuner(trainable, "grid", progress, space, trial_name_creator=_trial_name).fit()
        return progress.counts

    def _search_plan(
        self,
        picked: list[SearchTask],
        images: dict,
        with_optional_metrics: bool,
        store: RunStore,
    ) -> SearchPlan:
        """Samples for the ``picked`` tasks, none for the others: those their budgets leave, and
        finished ones whose matches further seeds would take on (``reopen_matches``)."""
        config, search = self.config, self.config.search
        metric = resolve_metric(search, config.images.crop, with_optional_metrics)
        storage = optuna_storage(self.folder)
        tasks = search_tasks(config)
        studies = {t.name: optuna_study(storage, t, metric, search.seed) for t in tasks}
        remaining = samples_to_run(tasks, studies, search, picked)
        for task in tasks:
            enqueue_grid(studies[task.name], task, search)
        records = store.records() if search.jump_seeds else []
        variant = image_options(config).label()
        for task in picked:
            remaining[task.name] += reopen_matches(
                studies[task.name], task, records, search, list(images), variant
            )
        picked_note = f" ({len(picked)} picked)" if len(picked) < len(tasks) else ""
        print(
            f"{config.name}: {len(tasks)} search tasks ({search.mode}){picked_note}, "
            f"{sum(remaining.values())} samples to run on {len(images)} images each",
            flush=True,
        )
        return SearchPlan(metric, tasks, studies, remaining)

    def _run_search(
        self, plan: SearchPlan, images: dict, recorder, context: TrialContext
    ) -> dict[str, int]:
        config, search = self.config, self.config.search
        total = sum(plan.remaining.values())
        progress = TuneSearchProgress(total, plan.metric, config.name, _describe_sample, None)
        fit_resources = {
            "num_cpus": config.resources.cpus,
            "num_gpus": config.resources.gpus,
            "resources": dict(config.resources.custom),
            # Out of the trial's own (tiny) reservation: each fit reserves its own resources.
            "scheduling_strategy": PlacementGroupSchedulingStrategy(placement_group=None),
        }
        trainable = tune.with_parameters(
            search_sample,
            images=images,
            recorder=recorder,
            context=context,
            tasks={t.name: t for t in plan.tasks},
            search=search,
            metric=plan.metric,
            variant=image_options(config).label(),
            fit_resources=fit_resources,
        )
        searcher = MultiTaskSearcher(
            plan.tasks,
            plan.studies,
            {t.name: task_space(t, search) for t in plan.tasks},
            plan.remaining,
            search.concurrent_samples,
        )
        self._tuner(
            trainable,
            "search",
            progress,
            search_alg=searcher,
            num_samples=total,
            # The trial only waits for its images' fits, which reserve the resources. Ray
            # refuses an empty reservation, and any CPU share would keep a whole fit from
            # starting on its node: one byte of memory it is.
            trial_resources={"cpu": 0, "memory": 1},
        ).fit()
        return progress.counts

    def _recommend(
        self, plan: SearchPlan, store: RunStore, images: list[str]
    ) -> list[Recommendation]:
        """Recommendations for every task with fits (Pareto fronts for the open-rate ones),
        written to the study folder."""
        recommendations, fronts = [], []
        for task in plan.tasks:
            records = store.records({"search": task.name})
            if task.target_bpp is None:
                fronts += pareto_front(task, records, plan.metric)
                continue
            search = self.config.search
            recommendation = recommend(
                task, records, plan.metric, search.tolerance, images, dict(search.alphas)
            )
            if recommendation is not None:
                recommendations.append(recommendation)
                print(recommendation.describe(), flush=True)
        (self.folder / RECOMMENDATIONS_FILE).write_text(
            json.dumps([asdict(r) for r in recommendations], indent=2) + "\n"
        )
        if fronts:
            (self.folder / PARETO_FILE).write_text(json.dumps(fronts, indent=2) + "\n")
        return recommendations


def fit_batches(specs: list[TrialSpec], size: int) -> list[list[TrialSpec]]:
    """Consecutive trials of one codec and preset, up to ``size`` to a batch (plan order kept)."""
    batches: list[list[TrialSpec]] = []
    for spec in specs:
        last = batches[-1] if batches else None
        if (
            last
            and len(last) < size
            and (last[0].codec, last[0].preset) == (spec.codec, spec.preset)
        ):
            last.append(spec)
        else:
            batches.append([spec])
    return batches


def _describe_batch(config: dict) -> str:
    first, more = TrialSpec(**config["specs"][0]).label(), len(config["specs"]) - 1
    return f"{first} (+{more} fitted with it)" if more else first


def _trial_name(trial) -> str:
    return _describe_batch(trial.config).replace(" ", "_")


def _describe_sample(config: dict) -> str:
    sample = " ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in config["sample"].items()
    )
    return f"{config['task']} {sample}".strip()

"""A study's run on Ray Tune: its pending grid trials (or its search's samples, proposed by
Optuna) as one Tune run, every result recorded in MLflow by one recorder actor on the driver's
node, and a search's recommendations written. With ``ray_session`` (Ray itself), ``ray_trials``
(what runs on the workers) and ``ray_searcher`` (the tasks' samples fed to Tune), the only
modules that import Ray; the fit is :func:`study.engine.trial.run_trials`.
"""

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import ray
from ray import tune
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from study.config import StudyConfig, dump_config
from study.data.imageio import image_digest
from study.engine.lock import study_lock
from study.engine.mlflow_view import view_tags
from study.engine.plan import check_losses, image_options, load_images
from study.engine.progress import SearchProgress, StudyProgress
from study.engine.provenance import code_tags, git_commit
from study.engine.ray_searcher import MultiTaskSearcher
from study.engine.ray_session import ray_session
from study.engine.ray_trials import Recorder, TrialContext, grid_trial, search_sample
from study.engine.search import (
    Recommendation,
    enqueue_grid,
    optuna_storage,
    optuna_study,
    pareto_front,
    recommend,
    reopen_matches,
    resolve_metric,
    samples_to_run,
    task_space,
)
from study.engine.selection import Where, pick
from study.engine.tasks import SearchTask, search_tasks
from study.engine.tracking import (
    TRIALS_FILTER,
    ImageInput,
    RunStore,
    flat_params,
    study_location,
    study_store,
)
from study.engine.trial import TrialSpec
from study.layout import (
    CONFIG_FILE,
    PARETO_FILE,
    RAY_DIR,
    RECOMMENDATIONS_FILE,
    StudyState,
    read_state,
    recorded_tracking_uri,
    write_state,
)
from study.results.evaluation import optional_metrics_available
from study.results.table import quality_metrics

log = logging.getLogger(__name__)


class TuneProgress(StudyProgress, tune.Callback):
    """The study's progress bar, as Ray Tune calls it."""


class TuneSearchProgress(SearchProgress, tune.Callback):
    """The search's progress bar, as Ray Tune calls it."""


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
        then: Callable[[StudyResult], None] | None = None,
    ) -> StudyResult:
        """Run the study's pending trials (on the cluster at ``address``, else on a local Ray
        using ``local_cpus`` CPUs, default all); StudyBusyError at once if another driver runs
        it. ``where`` runs only some of them now: a grid's trials, a search's whole tasks.
        ``then`` (the reports, say) runs on the result while this driver still holds the study,
        so no other driver writes beside it."""
        # Before anything is written or started: bad images, and losses that cannot train on
        # them, fail fast and leave no folder behind; so does a ``where`` that picks nothing.
        images = load_images(self.config)
        check_losses(self.config, {name: pixels.shape[:2] for name, pixels in images.items()})
        picked, of_all = pick(self.config, list(images), where or {})
        with study_lock(self.folder):
            result = self._run(address, (local_cpus, local_gpus), images, picked, of_all)
            if then is not None:
                then(result)
            return result

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
        parent_id = store.open_parent(
            read_state(self.folder).parent_run_id, self.config.name, flat_params(self.config), tags
        )
        recorded_uri = recorded_tracking_uri(self.folder, self.tracking_uri)
        write_state(self.folder, StudyState(parent_id, recorded_uri, self.experiment))
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

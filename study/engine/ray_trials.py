"""What runs on Ray's workers: a grid study's Tune trial (one fit, or a batch trained
together), a search's sample (its images side by side, an actor each), and the recorder actor
through which every result reaches MLflow. The fit itself is
:func:`study.engine.trial.run_trials`.
"""

import functools
import os
import socket
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import ray
import torch
from ray import tune

from study.config import import_plugins
from study.engine.search import sample_result
from study.engine.tasks import SearchTask, run_image
from study.engine.tracking import ImageInput, RunStore
from study.engine.trial import TrialJob, TrialOutcome, TrialSpec, run_trials
from study.layout import ARTIFACTS_DIR


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

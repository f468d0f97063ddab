"""Loss-weight tuning with Optuna: each search task's study and space, samples' scores,
recommendations and Pareto fronts. (The tasks, and one sample fitted on one image, are in
``study.engine.tasks``; the scheduling is in ``study.engine.runner`` and ``ray_searcher``; this
module has no Ray.)

One task per codec × loss family × target bitrate (``match`` mode) or per codec × loss family
(``pareto`` mode), each an Optuna study in ``optuna.db`` of the study folder, so a search can be
inspected (``optuna-dashboard``) and continued. In ``match`` mode a sample is an α; on every image
the codec's rate setting is matched to the target (``study.engine.matching``), and the sample's
score is the chosen metric at matched rate, minus the metric table's ``search_penalty`` for any
image left off target. In ``pareto`` mode a sample is (α, rate setting) and Optuna keeps the
(bpp, metric) trade-off. Recommendations and fronts are computed from the MLflow runs, which hold
every fit, earlier sessions' included.
"""

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from losses import get_family
from study.config import Search
from study.engine.tasks import ImageOutcome, SearchTask, next_fit
from study.layout import OPTUNA_DB, sqlite_uri
from study.results.alpha import alpha_rows, matched_fits, settled
from study.results.table import automatic_search_metric, get_metric


def resolve_metric(search: Search, crop: int | None, optional_metrics: bool) -> str:
    """``auto`` means the table's preferred searchable metric that this study can compute (LPIPS
    when the optional metrics are measured, else MS-SSIM in dB, PSNR on crops too small for
    MS-SSIM)."""
    if search.metric != "auto":
        return search.metric
    return automatic_search_metric(crop, optional_metrics)


def score(metric: str, value: float, bpp: float, target: float, tolerance: float) -> float:
    """``value`` oriented so higher is better, minus the penalty for a rate off the target."""
    row = get_metric(metric)
    excess = max(0.0, abs(math.log(bpp / target)) - math.log1p(tolerance))
    return row.oriented(value) - row.search_penalty * excess


def task_space(task: SearchTask, search: Search) -> dict:
    """Optuna's distributions: α (match), α and the rate setting (pareto)."""
    space = {}
    if task.target_bpp is None:
        axis = task.rate_axis
        if axis.choices is not None:
            space["rate"] = CategoricalDistribution(task.codec.rates or list(axis.choices))
        else:
            low, high = task.codec.search_range or axis.search_range
            kind = IntDistribution if axis.kind is int else FloatDistribution
            space["rate"] = kind(axis.kind(low), axis.kind(high), log=axis.log)
    if task.has_alpha:
        # A grid's values lie in the family's range (the config checks), whatever ``alpha``.
        alpha_range = get_family(task.family).alpha_range
        if task.family not in search.alphas:
            alpha_range = search.alpha or alpha_range
        space["alpha"] = FloatDistribution(*alpha_range)
    return space


def optuna_storage(folder: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(sqlite_uri(folder / OPTUNA_DB))


def optuna_study(storage, task: SearchTask, metric: str, seed: int) -> optuna.Study:
    """The task's Optuna study, continued if it exists: one objective (the score at matched
    rate) or two (bpp down, metric up or down as the table says)."""
    if task.target_bpp is None:
        quality = "maximize" if get_metric(metric).higher_is_better else "minimize"
        directions = ["minimize", quality]
    else:
        directions = ["maximize"]
    return optuna.create_study(
        study_name=task.name,
        storage=storage,
        directions=directions,
        sampler=optuna.samplers.TPESampler(seed=seed),
        load_if_exists=True,
    )


def enqueue_grid(study: optuna.Study, task: SearchTask, search: Search) -> None:
    """Queue each α of the task's grid that no sample has measured and none waits for (a
    sample cut off by a killed driver is queued again). Optuna then asks these first."""
    grid = search.alphas.get(task.family)
    if grid is None:
        return
    held = {
        trial.params.get("alpha")
        for trial in study.get_trials(deepcopy=False)
        if trial.state == TrialState.COMPLETE
    }
    held |= {
        trial.system_attrs.get("fixed_params", {}).get("alpha")
        for trial in study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    }
    for alpha in grid:
        if alpha not in held:
            study.enqueue_trial({"alpha": alpha})


# Marks a finished sample queued again for its further seeds: not a new sample of the budget.
RERUN_ATTR = "rerun"


def reopen_matches(
    study: optuna.Study,
    task: SearchTask,
    records: Sequence[dict],
    search: Search,
    images: Sequence[str],
    variant: str,
) -> int:
    """Queue again each finished sample of a match task whose matches, replayed from the
    recorded fits, would go on with a further seed (``jump_seeds``: one that straddled the
    target before the study took further seeds, or whose further seeds a killed driver cut
    short); such a re-run fits only what is missing. Returns how many re-runs wait in the
    task's study (queued now or by an earlier run): samples on top of its budget."""
    if task.target_bpp is None:
        return 0
    trials = study.get_trials(deepcopy=False)
    waiting = [t for t in trials if t.state == TrialState.WAITING]
    reruns = sum(bool(t.user_attrs.get(RERUN_ATTR)) for t in waiting)
    if not search.jump_seeds:
        return reruns
    done = {t.params.get("alpha") for t in trials if t.state == TrialState.COMPLETE}
    queued = {t.system_attrs.get("fixed_params", {}).get("alpha") for t in waiting}
    grid = search.alphas.get(task.family)
    by_image = defaultdict(list)
    for record in records:
        by_image[record.get("image")].append(record)
    for alpha in sorted(done - queued, key=lambda a: a or 0.0):
        if grid is not None and alpha not in grid:
            continue  # the grid changed: not a sample of this study any more
        if any(_further_seed(task, alpha, i, by_image[i], search, variant) for i in images):
            params = {"alpha": alpha} if task.has_alpha else {}
            study.enqueue_trial(params, user_attrs={RERUN_ATTR: True})
            reruns += 1
    return reruns


def _further_seed(
    task: SearchTask, alpha, image: str, earlier: Sequence[dict], search: Search, variant: str
) -> bool:
    """Whether the match of ``alpha`` on ``image``, replayed from ``earlier``, would go on with
    a further seed (not refit its first seed: a changed budget or tolerance reopens nothing)."""
    spec = next_fit(task, alpha, image, earlier, search, variant)
    return spec is not None and spec.seed > search.seed


def finished_samples(study: optuna.Study) -> int:
    """Completed samples of a task (re-runs for further seeds not counted: no new α); samples
    left running by a killed driver are marked failed."""
    complete = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        complete += trial.state == TrialState.COMPLETE and not trial.user_attrs.get(RERUN_ATTR)
    return complete


def samples_to_run(
    tasks: list[SearchTask], studies: dict, search: Search, picked: list[SearchTask]
) -> dict[str, int]:
    """Samples each task takes in this run: the ``picked`` tasks' budgets less their finished
    samples; none for the others, left for a later run."""
    now = {t.name for t in picked}
    return {
        t.name: max(0, t.budget(search) - finished_samples(studies[t.name])) if t.name in now else 0
        for t in tasks
    }


def tell(study: optuna.Study, trial, objective) -> None:
    """A sample's outcome to its task's study; None: the sample failed."""
    if objective is None:
        study.tell(trial, state=TrialState.FAIL)
    else:
        study.tell(trial, objective)


@dataclass
class Recommendation:
    task: str
    metric: str
    target_bpp: float
    reached: bool
    alpha: float | None
    bpp: float  # mean over images, at matched rate
    value: float
    samples: int  # α values measured on every image
    on_target: int  # of those, α values matched on every image
    planned: int | None = None  # α of the study's grid for this task (None: α searched)
    final: bool = True  # False: some α of the grid are not on target yet, the best so far

    def describe(self) -> str:
        alpha = "" if self.alpha is None else f"α={self.alpha:g} "
        if self.reached:
            return (
                f"{self.task}: {alpha}wins at matched rate: {self.metric} {self.value:.4f} at "
                f"{self.bpp:.4f} bpp (best of {self.on_target} α on target, "
                f"{self.samples} measured"
                + ("" if self.final else f", of {self.planned} planned: the best so far")
                + ")"
            )
        return (
            f"{self.task}: target not reached within tolerance on every image in "
            f"{self.samples} samples; closest {alpha}→ {self.bpp:.4f} bpp, "
            f"{self.metric} {self.value:.4f}"
        )


def recommend(
    task: SearchTask,
    runs: list[dict],
    metric: str,
    tolerance: float,
    images: list[str] | None = None,
    grid: dict[str, list[float]] | None = None,
):
    """The α whose matched fits score best, among those on target on every image (of the
    study's ``images``, else of those fitted; the α tables' rule, ``alpha.alpha_rows``, with the
    study's α ``grid``); else the α whose worst image lands closest to the target. ``runs``:
    finished fits of this task."""
    matched = matched_fits(runs, tolerance)
    rows = [r for r in alpha_rows(matched, metric, [metric], images, grid) if r["complete"]]
    if not rows:
        return None
    on_target = [r for r in rows if r["on_target"] == r["of"]]
    best = next((r for r in rows if r["best"]), None)
    if best is None:
        best = min(rows, key=lambda r: r["worst_off_by"])
    return Recommendation(
        task=task.name,
        metric=metric,
        target_bpp=task.target_bpp,
        reached=best["best"],
        alpha=best["alpha"],
        bpp=best["bpp"],
        value=best[metric],
        samples=len(rows),
        on_target=len(on_target),
        planned=best["alphas_planned"],
        final=settled(best),
    )


def pareto_front(task: SearchTask, runs: list[dict], metric: str) -> list[dict]:
    """The samples (α, rate setting; means over images) that no other sample beats in both bpp
    and metric, by increasing bpp."""
    by_sample = defaultdict(list)
    for run in runs:
        by_sample[run.get("alpha"), run["rate"]].append(run)
    image_count = max((len(v) for v in by_sample.values()), default=0)
    row = get_metric(metric)
    points = []
    for (alpha, rate), fits in by_sample.items():
        values = [fit.get(metric) for fit in fits]
        if len(fits) < image_count or any(v is None for v in values):
            continue
        points.append(
            {
                "task": task.name,
                "alpha": alpha,
                "rate": rate,
                "bpp": sum(fit["bpp"] for fit in fits) / len(fits),
                "value": sum(values) / len(values),
            }
        )
    front, best = [], -math.inf
    for point in sorted(points, key=lambda p: (p["bpp"], -row.oriented(p["value"]))):
        if row.oriented(point["value"]) > best:
            front.append(point)
            best = row.oriented(point["value"])
    return front


def sample_result(
    task: SearchTask, outcomes: list[ImageOutcome], metric: str, tolerance: float
) -> dict:
    """What a sample reports: the Optuna objective(s) and figures for the progress bar."""
    values = [o.value for o in outcomes]
    if any(v is None for v in values):
        raise ValueError(f"metric {metric} is missing for some images; pick another metric")
    bpp, value = sum(o.bpp for o in outcomes) / len(outcomes), sum(values) / len(values)
    result = {"bpp": bpp, metric: value, "fits": sum(o.fits for o in outcomes)}
    if task.target_bpp is None:
        return {**result, "objective": [bpp, value]}
    scores = [score(metric, o.value, o.bpp, task.target_bpp, tolerance) for o in outcomes]
    unreachable = [f"{o.image}: {o.reason}" for o in outcomes if o.reason.startswith("unreach")]
    return {
        **result,
        "objective": sum(scores) / len(scores),
        "on_target": all(o.reached for o in outcomes),
        "unreachable": "; ".join(unreachable),
    }

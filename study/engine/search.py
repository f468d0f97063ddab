"""Optuna search of each codec's rate setting and the loss family's α to hit target bitrates.

One search task per codec × loss family × target bpp. A sample (α, rate setting) is evaluated on
every study image; its score is the chosen quality metric (oriented so higher is better) minus a
penalty growing with the relative rate error beyond the tolerance (the metric table's
``search_penalty``), so the search first gets onto the target and then improves quality there.
Optuna's study lives in an RDB file (``optuna.db`` in the study folder), so a search can be
inspected (``optuna-dashboard``) and continued; recommendations are computed from the MLflow runs,
which hold every finished sample, earlier sessions' included.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from losses import get_family, parse_loss_spec
from study.config import CodecEntry, Search, StudyConfig
from study.engine.trial import TrialSpec
from study.layout import OPTUNA_DB, sqlite_uri
from study.results.table import automatic_search_metric, get_metric

# Samples of a numeric rate setting and α are rounded to this many significant digits: short loss
# names and stable trial keys.
SIGNIFICANT_DIGITS = 4


def resolve_metric(search: Search, crop: int | None, lpips_ok: bool) -> str:
    """``auto`` means the table's preferred searchable metric that this study can compute (LPIPS
    when its weights are available, else MS-SSIM in dB, PSNR on crops too small for MS-SSIM)."""
    if search.metric != "auto":
        return search.metric
    return automatic_search_metric(crop, lpips_ok)


def score(metric: str, value: float, bpp: float, target: float, tolerance: float) -> float:
    row = get_metric(metric)
    excess = max(0.0, abs(math.log(bpp / target)) - math.log1p(tolerance))
    return row.oriented(value) - row.search_penalty * excess


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


@dataclass(frozen=True)
class SearchTask:
    codec: CodecEntry
    family: str
    target_bpp: float

    @property
    def name(self) -> str:
        return f"{self.codec.name}/{self.family}/{self.target_bpp:g}bpp"

    @property
    def has_alpha(self) -> bool:
        return get_family(self.family).takes_alpha

    def space(self, search: Search) -> dict:
        axis = self.codec.codec_class.rate_axis
        if axis.choices is not None:
            rate = CategoricalDistribution(self.codec.rates or list(axis.choices))
        else:
            low, high = self.codec.search_range or axis.search_range
            kind = IntDistribution if axis.kind is int else FloatDistribution
            rate = kind(axis.kind(low), axis.kind(high), log=axis.log)
        space = {"rate": rate}
        if self.has_alpha:
            space["alpha"] = FloatDistribution(
                *(search.alpha or get_family(self.family).alpha_range)
            )
        return space

    def trial_spec(self, sample: dict, image: str, variant: str, seed: int) -> TrialSpec:
        loss = self.family
        if self.has_alpha:
            loss = f"{self.family}({_rounded(sample['alpha']):g})"
        rate = sample["rate"]
        return TrialSpec(
            codec=self.codec.name,
            image=image,
            rate=_rounded(rate) if isinstance(rate, float) else rate,
            preset=self.codec.preset,
            loss=loss,
            convention=self.codec.convention,
            seed=seed,
            image_variant=variant,
            search=self.name,
        )


def search_tasks(config: StudyConfig) -> list[SearchTask]:
    families = [parse_loss_spec(spec).family for spec in config.losses]
    return [
        SearchTask(entry, family, target)
        for entry in config.codecs
        for family in dict.fromkeys(families)
        for target in config.search.targets_bpp
    ]


def optuna_storage(folder: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(sqlite_uri(folder / OPTUNA_DB))


def finished_samples(storage: optuna.storages.RDBStorage, study_name: str) -> int:
    """Completed samples of a task; samples left running by a killed driver are marked failed."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        return 0
    complete = 0
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        complete += trial.state == TrialState.COMPLETE
    return complete


@dataclass
class Recommendation:
    task: str
    metric: str
    target_bpp: float
    reached: bool
    alpha: float | None
    rate_parameter: str
    rate: float | int | str
    bpp: float
    value: float
    samples: int

    def describe(self) -> str:
        setting = (
            f"{self.rate_parameter}={self.rate:g}"
            if isinstance(self.rate, float)
            else (f"{self.rate_parameter}={self.rate}")
        )
        setting += "" if self.alpha is None else f" α={self.alpha:g}"
        if self.reached:
            return (
                f"{self.task}: {setting} → {self.bpp:.4f} bpp, {self.metric} {self.value:.4f} "
                f"(best of {self.samples} samples)"
            )
        return (
            f"{self.task}: target not reached within tolerance in {self.samples} samples; "
            f"closest {setting} → {self.bpp:.4f} bpp, {self.metric} {self.value:.4f}"
        )


def recommend(task: SearchTask, runs: list[dict], metric: str, tolerance: float):
    """Best sample within ±tolerance of the target, else the sample closest to it; ``runs`` are
    finished trial records (params and metrics) of this task, one per image per sample."""
    by_sample = defaultdict(list)
    for run in runs:
        by_sample[run.get("alpha"), run["rate"]].append(run)
    if not by_sample:
        return None
    image_count = max(len(v) for v in by_sample.values())
    candidates = []
    for (alpha, rate), records in by_sample.items():
        values = [r.get(metric) for r in records]
        if len(records) < image_count or any(v is None for v in values):
            continue  # a sample not measured on every image is not comparable
        bpp = sum(r["bpp"] for r in records) / len(records)
        value = sum(values) / len(values)
        candidates.append((alpha, rate, bpp, value))
    if not candidates:
        return None

    def relative_error(candidate) -> float:
        return abs(candidate[2] / task.target_bpp - 1)

    on_target = [c for c in candidates if relative_error(c) <= tolerance]
    if on_target:
        row = get_metric(metric)
        best, reached = max(on_target, key=lambda c: row.oriented(c[3])), True
    else:
        best, reached = min(candidates, key=relative_error), False
    alpha, rate, bpp, value = best
    return Recommendation(
        task=task.name,
        metric=metric,
        target_bpp=task.target_bpp,
        reached=reached,
        alpha=alpha,
        rate_parameter=task.codec.codec_class.rate_axis.name,
        rate=rate,
        bpp=bpp,
        value=value,
        samples=len(candidates),
    )

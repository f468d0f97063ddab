"""Optuna search of λ (NIF: its width configuration) and α to hit target bitrates.

One search task per codec × loss family × target bpp. A sample (α, λ) is evaluated on every
study image; its score is the chosen quality metric (oriented so higher is better) minus a penalty
growing with the relative rate error beyond the tolerance, so the search first gets onto the target
and then improves quality there. Optuna's study lives in an RDB file (``optuna.db`` in the study
folder), so a search can be inspected (``optuna-dashboard``) and continued; recommendations are
computed from the MLflow runs, which hold every finished sample, earlier sessions' included.
"""

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState

from inr_models.nif.presets import WIDTHS as NIF_WIDTHS
from losses.spec import PAPER_LOSSES
from study.config import MS_SSIM_MIN_SIDE, CodecEntry, Search, StudyConfig
from study.trial import TrialSpec

# Score lost per unit of |ln(bpp / target)| beyond the tolerance: 10 % off costs ~10 dB or ~1 LPIPS,
# far more than any quality difference between two samples on target.
RATE_PENALTY = {"psnr": 100.0, "ms_ssim_db": 100.0, "lpips": 10.0}
LOWER_IS_BETTER = {"lpips"}


def resolve_metric(search: Search, crop: int | None, lpips_ok: bool) -> str:
    """``auto`` means LPIPS when its weights are available, else MS-SSIM in dB (PSNR on crops too
    small for MS-SSIM)."""
    if search.metric != "auto":
        return search.metric
    if lpips_ok:
        return "lpips"
    return "psnr" if crop is not None and crop < MS_SSIM_MIN_SIDE else "ms_ssim_db"


def score(metric: str, value: float, bpp: float, target: float, tolerance: float) -> float:
    oriented = -value if metric in LOWER_IS_BETTER else value
    excess = max(0.0, abs(math.log(bpp / target)) - math.log1p(tolerance))
    return oriented - RATE_PENALTY[metric] * excess


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
        return PAPER_LOSSES[self.family][0] is not None

    def space(self, search: Search) -> dict:
        space = {}
        if self.codec.rate_field == "configs":
            space["configuration"] = CategoricalDistribution(self.codec.configs or list(NIF_WIDTHS))
        else:
            space["lmbda"] = FloatDistribution(*search.lmbda, log=True)
        if self.has_alpha:
            space["alpha"] = FloatDistribution(*search.alpha)
        return space

    def trial_spec(self, sample: dict, image: str, variant: str, seed: int) -> TrialSpec:
        # α and λ rounded to 4 significant digits: short loss names, stable trial keys.
        loss = self.family
        if self.has_alpha:
            alpha = float(f"{sample['alpha']:.4g}")
            loss = f"{self.family}({alpha:g})"
        lmbda = sample.get("lmbda")
        return TrialSpec(
            codec=self.codec.name,
            image=image,
            preset=self.codec.preset,
            loss=loss,
            convention=self.codec.convention,
            lmbda=None if lmbda is None else float(f"{lmbda:.4g}"),
            configuration=sample.get("configuration"),
            seed=seed,
            image_variant=variant,
            search=self.name,
        )


def search_tasks(config: StudyConfig) -> list[SearchTask]:
    families = [spec.split("(")[0].strip().lower() for spec in config.losses]
    return [
        SearchTask(entry, family, target)
        for entry in config.codecs
        for family in dict.fromkeys(families)
        for target in config.search.targets_bpp
    ]


def optuna_storage(folder: Path) -> optuna.storages.RDBStorage:
    return optuna.storages.RDBStorage(f"sqlite:///{(folder / 'optuna.db').resolve()}")


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
    lmbda: float | None
    configuration: str | None
    bpp: float
    value: float
    samples: int

    def describe(self) -> str:
        setting = (
            f"λ={self.lmbda:g}" if self.lmbda is not None else f"config={self.configuration}"
        ) + ("" if self.alpha is None else f" α={self.alpha:g}")
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
        sample = (run.get("alpha"), run.get("lmbda"), run.get("configuration"))
        by_sample[sample].append(run)
    if not by_sample:
        return None
    image_count = max(len(v) for v in by_sample.values())
    candidates = []
    for (alpha, lmbda, configuration), records in by_sample.items():
        values = [r.get(metric) for r in records]
        if len(records) < image_count or any(v is None for v in values):
            continue  # a sample not measured on every image is not comparable
        bpp = sum(r["bpp"] for r in records) / len(records)
        value = sum(values) / len(values)
        candidates.append((alpha, lmbda, configuration, bpp, value))
    if not candidates:
        return None

    def relative_error(candidate) -> float:
        return abs(candidate[3] / task.target_bpp - 1)

    on_target = [c for c in candidates if relative_error(c) <= tolerance]
    if on_target:
        sign = -1 if metric in LOWER_IS_BETTER else 1
        best, reached = max(on_target, key=lambda c: sign * c[4]), True
    else:
        best, reached = min(candidates, key=relative_error), False
    alpha, lmbda, configuration, bpp, value = best
    return Recommendation(
        task.name,
        metric,
        task.target_bpp,
        reached,
        alpha,
        lmbda,
        configuration,
        bpp,
        value,
        len(candidates),
    )

"""Search tasks and how one sample of a task is fitted on one image: the rate matched to the
task's target from the image's earlier fits (``study.engine.matching``), further seeds where the
file size jumps across it. No Optuna and no Ray: the search's driver (``study.engine.runner``)
and ``inr-study work`` (a match package on a machine without either) both run matches with it.
"""

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from losses import LossSpecError, family_spec, get_family, parse_loss_spec
from study.config import CodecEntry, Search, StudyConfig
from study.engine.matching import Probe, RateMatcher, rate_error, rounded
from study.engine.trial import TrialSpec
from study.results.alpha import task_name
from study.results.rate_targets import match_rank


@dataclass(frozen=True)
class SearchTask:
    codec: CodecEntry
    family: str
    target_bpp: float | None  # None in pareto mode

    @property
    def name(self) -> str:
        return task_name(self.codec.name, self.family, self.target_bpp)

    @property
    def has_alpha(self) -> bool:
        return get_family(self.family).takes_alpha

    @property
    def rate_axis(self):
        """The codec's rate axis; a discrete one (NIF's widths) narrowed to the values the
        codec's entry lists, so a match chooses among those alone (one width: the α compared
        at that width, its rate checked against the target)."""
        axis = self.codec.codec_class.rate_axis
        if axis.choices is None or not self.codec.rates:
            return axis
        return replace(axis, choices=tuple(v for v in axis.choices if v in self.codec.rates))

    def budget(self, search: Search) -> int:
        """Samples this task takes: its α grid's values, else ``trials``; a family without α
        has nothing to search at a target."""
        if self.family in search.alphas:
            return len(search.alphas[self.family])
        return search.trials if self.has_alpha or self.target_bpp is None else 1

    def loss(self, alpha: float | None) -> str:
        return family_spec(self.family, rounded(alpha) if self.has_alpha else None)

    def trial_spec(
        self, alpha: float | None, rate, image: str, variant: str, seed: int
    ) -> TrialSpec:
        return TrialSpec(
            codec=self.codec.name,
            image=image,
            rate=rounded(rate) if isinstance(rate, float) else rate,
            preset=self.codec.preset,
            loss=self.loss(alpha),
            convention=self.codec.convention,
            seed=seed,
            image_variant=variant,
            search=self.name,
        )


def searched_spec(
    config: StudyConfig,
    tasks: dict[str, "SearchTask"],
    search: str,
    loss,
    rate,
    image: str,
    seed: int,
) -> TrialSpec | None:
    """The spec the study's task ``search`` gives a fit of ``loss`` at ``rate`` on ``image`` with
    ``seed``; None when none of its tasks can ask for that fit (unknown task, α off the grid,
    rate outside the axis, a seed the search does not use)."""
    from study.engine.plan import image_options

    task = tasks.get(search)
    if task is None:
        return None
    try:
        alpha = parse_loss_spec(loss or "").alpha
        rate = task.rate_axis.check(rate)
    except (LossSpecError, ValueError):
        return None
    grid = config.search.alphas.get(task.family)
    if grid is not None and alpha not in grid:
        return None
    if seed not in match_seeds(config.search):
        return None
    variant = image_options(config).label()
    return task.trial_spec(alpha, rate, image, variant, seed)


def match_seeds(search: Search) -> range:
    """The seeds a match may fit with: the search's, then its ``jump_seeds`` more."""
    return range(search.seed, search.seed + 1 + search.jump_seeds)


# What ``--where`` picks whole search tasks by: a sample fits every image of the study.
TASK_FIELDS = {
    "codec": lambda task: task.codec.name,
    "family": lambda task: task.family,
    "search": lambda task: task.name,
}


def search_tasks_by_name(config: StudyConfig) -> dict[str, SearchTask]:
    return {task.name: task for task in search_tasks(config)}


def search_tasks(config: StudyConfig) -> list[SearchTask]:
    targets = config.search.targets_bpp or [None]
    tasks = []
    for entry in config.codecs:
        families = [parse_loss_spec(spec).family for spec in config.losses_for(entry)]
        for family in dict.fromkeys(families):
            tasks += [SearchTask(entry, family, target) for target in targets]
    return tasks


@dataclass(frozen=True)
class ImageOutcome:
    """One image of one sample: the fit that counts (the matched one in match mode)."""

    image: str
    key: str  # its trial key
    bpp: float
    value: float | None  # the search metric
    fits: int
    reached: bool = True
    reason: str = ""


def same_setup(record: dict, spec: TrialSpec) -> bool:
    """A recorded fit of the spec's codec, image (prepared alike), preset and seed (another seed
    draws another curve), with its convention where the spec names one (records hold the one a
    codec resolved)."""
    fields = ["codec", "image", "image_variant", "preset", "seed"]
    fields += ["convention"] * bool(spec.convention)
    # Unset fields are not recorded: "" and None read as missing.
    return all((record.get(f) or None) == (getattr(spec, f) or None) for f in fields)


def earlier_fits(
    task: SearchTask, alpha: float | None, records: Sequence[dict], spec_at
) -> tuple[dict, list[Probe], list[Probe]]:
    """What the study's finished fits (``records``) tell a match on its image; those of other
    codecs, presets or images are left out. Its own fits (this task, this α; by trial key): each
    setting with its spec and metrics, observed as they are, so a resumed match refits nothing.
    Hints: the fits under the family's nearest α with two or more (the same loss matched to
    other targets first), else the nearest α with one. And the fits of this very loss made for
    other targets: points of the curve being matched."""
    own, groups = {}, defaultdict(list)
    for record in records:
        rate, bpp = record.get("rate"), record.get("bpp")
        if rate is None or bpp is None:
            continue
        try:
            spec = spec_at(task.rate_axis.check(rate))
        except ValueError:
            continue  # a setting off the codec's axis (its widths changed, say)
        if not same_setup(record, spec):
            continue
        if record.get("trial_key") == spec.key:
            own[rate] = (spec, record)
            continue
        try:
            loss = parse_loss_spec(record.get("loss") or "")
        except LossSpecError:
            continue
        if loss.family == task.family:
            groups[loss.alpha].append(Probe(rate, bpp))

    def distance(other: float | None) -> float:
        return 0.0 if alpha is None or other is None else abs(other - alpha)

    ranked = sorted(groups.items(), key=lambda item: (distance(item[0]), -len(item[1])))
    curves = [fits for _, fits in ranked if len({p.setting for p in fits}) >= 2]
    hints = curves[0] if curves else (ranked[0][1] if ranked else [])
    on_curve = groups.get(alpha, [])  # this very loss, fitted for other targets
    return own, [p for p in hints if p.setting not in own], on_curve


def run_image(
    task: SearchTask,
    sample: dict,
    image: str,
    fit: Callable[[TrialSpec], dict],
    *,
    search: Search,
    metric: str,
    variant: str,
    earlier: Sequence[dict] = (),
) -> ImageOutcome:
    """One sample on one image: in match mode, fits until the rate matches the target (or the
    budget ends), starting from what ``earlier`` fits on the image say (``earlier_fits``), then,
    where the fits straddle the target without landing on it, with the next seeds
    (``search.jump_seeds``); in pareto mode, the one fit of the sampled setting. ``fit`` runs or
    looks up a trial and returns its metrics."""
    alpha = sample.get("alpha")
    if task.target_bpp is None:
        spec = task.trial_spec(alpha, sample["rate"], image, variant, search.seed)
        metrics = fit(spec)
        return ImageOutcome(image, spec.key, metrics["bpp"], metrics.get(metric), fits=1)
    matches, curve = [], None
    for seed in match_seeds(search):
        result, chosen, probes = _match_with_seed(task, alpha, image, fit, search, variant,
                                                  earlier, seed, curve)  # fmt: skip
        matches.append((result, chosen))
        if result.reached or not result.bracketed:
            break
        curve = [*(curve or []), *probes]  # where the file size jumps: the next seed aims there
    result, (spec, metrics) = min(
        matches, key=lambda m: match_rank(m[0].bpp, task.target_bpp, search.tolerance)
    )
    return ImageOutcome(
        image,
        spec.key,
        metrics["bpp"],
        metrics.get(metric),
        fits=sum(m[0].fits for m in matches),
        reached=result.reached,
        reason=result.reason,
    )


def _match_with_seed(task, alpha, image, fit, search, variant, earlier, seed, curve):
    """One seed's match: its own earlier fits replayed, then fits until the matcher stops. Aimed
    by ``curve`` (an earlier seed's fits of this very match) when given, else by the image's
    earlier fits (``earlier_fits``). Returns the result, the chosen fit (spec, metrics) and the
    seed's probes."""

    def spec_at(setting) -> TrialSpec:
        return task.trial_spec(alpha, setting, image, variant, seed)

    own, hints, on_curve = earlier_fits(task, alpha, earlier, spec_at)
    if curve is not None:
        hints, on_curve = [p for p in curve if p.setting not in own], []
    matcher = RateMatcher(
        task.rate_axis,
        task.target_bpp,
        search.tolerance,
        search.fit_budget,
        task.codec.search_range,
        hints,
        on_curve,
    )
    fits = dict(own)
    # The closest last: the matcher steps on from its latest fit.
    for setting, (_, metrics) in sorted(
        own.items(), key=lambda item: -abs(rate_error(item[1][1]["bpp"], task.target_bpp))
    ):
        matcher.observe(setting, metrics["bpp"])
    while (setting := matcher.next_setting()) is not None:
        spec = spec_at(setting)
        fits[setting] = (spec, fit(spec))
        matcher.observe(setting, fits[setting][1]["bpp"])
    result = matcher.result
    return result, fits[result.setting], matcher.probes


class _MoreFits(Exception):
    """A replayed match asked for a fit that is not recorded."""

    def __init__(self, spec: TrialSpec):
        self.spec = spec


def next_fit(
    task: SearchTask,
    alpha: float | None,
    image: str,
    records: Sequence[dict],
    search: Search,
    variant: str,
) -> TrialSpec | None:
    """The fit the match of ``alpha`` on ``image`` would make next, replayed from the study's
    finished fits (``records``); None when those already end it (on target, or stopped by the
    matcher with every further seed it takes)."""
    recorded = {record.get("trial_key"): record for record in records}

    def replay(spec: TrialSpec) -> dict:
        if spec.key not in recorded:
            raise _MoreFits(spec)
        return recorded[spec.key]

    mine = [r for r in records if r.get("image") == image]
    try:
        run_image(task, {"alpha": alpha}, image, replay, search=search, metric="bpp",
                  variant=variant, earlier=mine)  # fmt: skip
    except _MoreFits as missing:
        return missing.spec
    return None

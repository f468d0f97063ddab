"""Splitting a study into work packages (``inr-study shard``).

A grid study's trials are known before any runs: they go to the packages as they are. A
rate-matching search over a fixed α grid (``search.alphas`` for every family with an α) shards
as matches (task, α, image), each carrying the study's earlier fits on its image: ``work`` fits
each match until its rate lands, as the driver would, and the driver later replays what came
back without fitting it again. A search whose α Optuna chooses (or a Pareto search) decides each
sample from the ones before, so it needs its driver (``inr-study run``).
"""

from collections import Counter
from collections.abc import Collection
from pathlib import Path

from losses import parse_loss_spec
from study.config import StudyConfig, dump_config
from study.engine.package import (
    PACKAGE_FILE,
    RESULT_FILE,
    Match,
    Package,
    PackageError,
    fit_summary,
    part_folder,
    read_package,
    record_fit,
    write_package,
)
from study.engine.plan import check_losses, grid_trials, load_images
from study.engine.provenance import git_commit
from study.engine.record import TrialRecord
from study.engine.selection import select
from study.engine.trial import TrialSpec
from study.errors import InputError
from study.layout import CONFIG_FILE, TRIALS_FILE


class ShardError(InputError):
    """A study that cannot be sharded as asked; nothing was written."""


def done_keys(path: Path) -> set[str]:
    """Keys of the trials already recorded in ``path``: a study folder (its MLflow store), a
    published study (``trials.jsonl``), what ``work`` wrote (``trials/KEY/result.json``), or
    already packaged (a package, or a folder of them)."""
    path = Path(path)
    packages = _packages(path)
    if packages:
        return {spec.key for p in packages for spec in read_package(p).trials}
    # A published copy holds a study.yaml too, but no MLflow store: read its trials first.
    if (path / TRIALS_FILE).exists():
        from study.engine.incoming import published_records

        return {record.key for record in published_records(path)}
    if (path / CONFIG_FILE).exists():
        from study.engine.tracking import study_store
        from study.layout import load_study_config

        return study_store(path, load_study_config(path)).finished_keys()
    found = {p.parent.name for p in path.glob(f"**/{RESULT_FILE}")}
    if not found and not path.is_dir():
        raise ShardError(f"--skip-done {path}: no such study folder, published study or results")
    return found


def shard(
    config: StudyConfig,
    out: Path,
    *,
    where: dict[str, set[str]] | None = None,
    parts: int = 1,
    skip_done: list[Path] = (),
    leave_out: Collection[str] = (),
) -> list[Path]:
    """Write the study's pending grid trials (a search's matches) as ``parts`` packages under
    ``out``: each codec entry's pending trials on one image go to one part as far as the parts'
    balance allows (:func:`_deal`), and each part runs its trials an image at a time
    (:func:`_image_by_image`). Trials keyed in ``leave_out`` (a search: matches whose next fit
    is) are not packaged."""
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ShardError(f"{out}: not empty; give a new folder for the packages")
    if config.search is not None:
        _check_shardable(config)
    images = load_images(config)
    check_losses(config, {name: pixels.shape[:2] for name, pixels in images.items()})
    if config.search is not None:
        matches, fits = _pending_matches(config, images, where or {}, skip_done, set(leave_out))
        return _write_parts(config, out, images, parts, matches=matches, fits=fits)
    trials = select(grid_trials(config, list(images)), where or {})
    done = set().union(*(done_keys(path) for path in skip_done))
    not_done = [spec for spec in trials if spec.key not in done]
    pending = [spec for spec in not_done if spec.key not in leave_out]
    if not pending:
        raise _nothing_left(config, "trial", left_out=len(not_done))
    return _write_parts(config, out, images, parts, trials=pending)


def _nothing_left(config: StudyConfig, unit: str, left_out: int) -> ShardError:
    """Why nothing was sharded: all done, or what is not done all left out (``left_out`` of it)."""
    if left_out:
        return ShardError(
            f"{config.name}: every selected {unit} not yet done is left out ({left_out}); "
            "nothing to shard"
        )
    return ShardError(f"{config.name}: every selected {unit} is already done; nothing to shard")


def _entry(spec: TrialSpec) -> tuple:
    """The codec entry a trial belongs to (its codec, preset and convention)."""
    return spec.codec, spec.preset, spec.convention


def _image_by_image(trials: list[TrialSpec]) -> list[TrialSpec]:
    """Each codec entry's trials (the plan's order of entries kept) an image at a time, its
    rates and losses together: a run cut short (time, a lent machine's minutes) then leaves whole
    images, which a growing study's curves and paired statistics can use, instead of one rate of
    every image, which they cannot. The images that lack the fewest trials go first (a growing
    study's nearly whole curves are completed before new ones are begun), else in plan order."""
    groups: dict[tuple, int] = {}
    images: dict[str, int] = {}
    lacking: Counter = Counter()
    for spec in trials:
        groups.setdefault(_entry(spec), len(groups))
        images.setdefault(spec.image, len(images))
        lacking[_entry(spec), spec.image] += 1

    def order(spec: TrialSpec) -> tuple:
        return groups[_entry(spec)], lacking[_entry(spec), spec.image], images[spec.image]

    return sorted(trials, key=order)


def _deal(trials: list[TrialSpec], parts: int) -> list[list[TrialSpec]]:
    """The trials in ``parts`` shares of at most ⌈trials / parts⌉ each, each codec entry's trials on
    one image kept together where that bound allows: each next group (in plan order) goes to the
    share with the fewest trials, and what would take it past the bound to the next fewest. A
    session's end then leaves whole images in every part, even where a growing study lacks
    different settings on different images (dealt a trial at a time, an image's last trial could
    land at the end of another part), and no part runs much longer than another."""
    groups: dict[tuple, list[TrialSpec]] = {}
    for spec in trials:
        groups.setdefault((*_entry(spec), spec.image), []).append(spec)
    bound = -(-len(trials) // parts)
    shares: list[list[TrialSpec]] = [[] for _ in range(parts)]
    for group in groups.values():
        while group:
            share = min(shares, key=len)
            room = bound - len(share)
            share.extend(group[:room])
            group = group[room:]
    return shares


def _write_parts(
    config: StudyConfig,
    out: Path,
    images: dict,
    parts: int,
    *,
    trials: list[TrialSpec] = (),
    matches: list[Match] = (),
    fits: list[dict] = (),
) -> list[Path]:
    """``parts`` packages of the trials (:func:`_deal`) or of the matches, dealt out in turn."""
    count, unit = (len(trials), "trials") if trials else (len(matches), "matches")
    if parts < 1 or parts > count:
        raise ShardError(f"--parts {parts}: give 1 to {count} (the {unit} to run)")
    text, commit = dump_config(config, portable=True), git_commit()
    shares = _deal(list(trials), parts)
    return [
        write_package(
            part_folder(out, part),
            study=config.name,
            config=text,
            commit=commit,
            part=part,
            parts=parts,
            trials=_image_by_image(shares[part]),
            images=images,
            plugins=list(config.plugins),
            optional_metrics=config.optional_metrics,
            extra_metrics=list(config.extra_metrics),
            matches=matches[part::parts],
            fits=fits,
        )
        for part in range(parts)
    ]


def _check_shardable(config: StudyConfig) -> None:
    search = config.search
    if search.mode != "match":
        raise ShardError(
            f"{config.source}: a Pareto search cannot be sharded: each sample depends on the "
            "earlier ones, so it needs its driver (inr-study run)"
        )
    from study.engine.tasks import search_tasks

    open_alpha = sorted(
        {t.family for t in search_tasks(config) if t.has_alpha and t.family not in search.alphas}
    )
    if open_alpha:
        raise ShardError(
            f"{config.source}: search.alphas gives no α grid for {', '.join(open_alpha)}: where "
            "Optuna chooses α, each sample depends on the earlier ones and needs its driver "
            "(inr-study run); give a grid to shard it"
        )


def _pending_matches(
    config: StudyConfig,
    images: dict,
    where: dict[str, set[str]],
    skip_done: list[Path],
    leave_out: set[str],
) -> tuple[list[Match], list[dict]]:
    """The matches of the picked tasks that the fits recorded in ``skip_done`` do not yet end,
    less those packaged before and those whose next fit is keyed in ``leave_out``, α by α; and
    those fits (of the tasks' codecs), where the matches start from."""
    from study.engine.plan import image_options
    from study.engine.selection import pick
    from study.engine.tasks import next_fit
    from study.results.alpha import task_family

    tasks, _ = pick(config, list(images), where)
    codecs = {task.codec.name for task in tasks}
    found, queued = [], set()
    for path in map(Path, skip_done):
        packages = [read_package(folder) for folder in _packages(path)]
        if packages:  # packaged before: their matches are queued, their fits are earlier ones
            found += [fit for package in packages for fit in package.fits]
            queued |= {match for package in packages for match in package.matches}
        else:
            found += done_fits(path)
    # One copy of each fit: a published study, its folder and earlier packages repeat them.
    fits = list({f["trial_key"]: f for f in found if f["codec"] in codecs}.values())
    variant = image_options(config).label()
    unqueued = [
        Match(task.name, alpha, image)
        for task in tasks
        for alpha in config.search.alphas.get(task.family, [None])
        for image in images
        if Match(task.name, alpha, image) not in queued
    ]
    by_name = {task.name: task for task in tasks}
    next_fits = {
        m: next_fit(by_name[m.search], m.alpha, m.image, fits, config.search, variant)
        for m in unqueued
    }
    not_done = [m for m, spec in next_fits.items() if spec is not None]
    pending = [m for m in not_done if next_fits[m].key not in leave_out]
    if not pending:
        raise _nothing_left(config, "match", left_out=len(not_done))
    # α by α through each grid: a match starts from the curves of the α fitted before it on its
    # image (``earlier_fits``), so those of each grid's first α go first.
    grids = config.search.alphas
    pending.sort(
        key=lambda m: grids[task_family(m.search)].index(m.alpha) if m.alpha is not None else 0
    )
    return pending, fits


def package_networks(package: Package) -> set[str]:
    """The pretrained networks the package's fits train with (their losses' terms): what a
    machine running it must hold. The metrics' networks are not among them: ``import`` measures
    what a result lacks from its file."""
    from study.config import import_plugins

    import_plugins(list(package.plugins))  # a plugin's losses
    losses = {spec.loss for spec in package.trials if spec.loss}  # classical codecs: none
    if package.matches:
        from study.engine.tasks import search_tasks_by_name

        tasks = search_tasks_by_name(package.study_config())
        for match in package.matches:
            if match.search not in tasks:
                raise PackageError(f"{package.folder}: {match.label()}: no such search task")
            losses.add(tasks[match.search].loss(match.alpha))
    return {network for loss in losses for network in parse_loss_spec(loss).networks}


def _packages(path: Path) -> list[Path]:
    candidates = [path / PACKAGE_FILE, *path.glob(f"*/{PACKAGE_FILE}")]
    return [p.parent for p in candidates if p.is_file()]


def done_fits(path: Path) -> list[dict]:
    """The finished fits recorded in ``path``, as a match reads them (``fit_summary``): a study
    folder's, a published study's, or what ``work`` wrote."""
    if (path / TRIALS_FILE).exists():
        from study.engine.incoming import published_records

        return [fit for fit in map(record_fit, published_records(path)) if fit is not None]
    if (path / CONFIG_FILE).exists():
        from study.engine.tracking import study_store
        from study.layout import load_study_config

        store = study_store(path, load_study_config(path))
        return [fit for fit in map(fit_summary, store.records()) if fit is not None]
    if not path.is_dir():
        raise ShardError(f"--skip-done {path}: no such study folder, published study or results")
    results = sorted(path.glob(f"**/{RESULT_FILE}"))
    records = [TrialRecord.loads(result.read_text(), str(result)) for result in results]
    return [fit for fit in map(record_fit, records) if fit is not None]

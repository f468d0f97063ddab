"""Splitting a grid study into work packages (``inr-study shard``).

Only grid studies shard: their trials are known before any runs. A search decides its next trial
from the ones before, so it needs its driver (``inr-study run``).
"""

from pathlib import Path

from study.config import StudyConfig, dump_config
from study.engine.package import (
    PACKAGE_FILE,
    RESULT_FILE,
    part_folder,
    read_package,
    write_package,
)
from study.engine.plan import check_losses, grid_trials, load_images
from study.engine.provenance import git_commit
from study.engine.selection import select
from study.errors import InputError
from study.layout import CONFIG_FILE, TRIALS_FILE


class ShardError(InputError):
    """A study that cannot be sharded as asked; nothing was written."""


def done_keys(path: Path) -> set[str]:
    """Keys of the trials already recorded in ``path``: a study folder (its MLflow store), a
    published study (``trials.jsonl``), what ``work`` wrote (``trials/KEY/result.json``), or
    already packaged (a package, or a folder of them)."""
    path = Path(path)
    packages = [p.parent for p in [path / PACKAGE_FILE, *path.glob(f"*/{PACKAGE_FILE}")]]
    packages = [p for p in packages if (p / PACKAGE_FILE).is_file()]
    if packages:
        return {spec.key for p in packages for spec in read_package(p).trials}
    # A published copy holds a study.yaml too, but no MLflow store: read its trials first.
    if (path / TRIALS_FILE).exists():
        from study.engine.incoming import read_sources

        return {item.record.key for item in read_sources([path]) if item.record is not None}
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
) -> list[Path]:
    """Write the study's pending grid trials as ``parts`` packages under ``out``; trials go to
    the parts in turn, so every part gets a share of each codec and rate."""
    if config.search is not None:
        raise ShardError(
            f"{config.source}: a search study cannot be sharded: each sample depends on the "
            "earlier ones, so searches need their driver (inr-study run)"
        )
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ShardError(f"{out}: not empty; give a new folder for the packages")
    images = load_images(config)
    check_losses(config, {name: pixels.shape[:2] for name, pixels in images.items()})
    trials = select(grid_trials(config, list(images)), where or {})
    done = set().union(*(done_keys(path) for path in skip_done))
    pending = [spec for spec in trials if spec.key not in done]
    if not pending:
        raise ShardError(f"{config.name}: every selected trial is already done; nothing to shard")
    if parts < 1 or parts > len(pending):
        raise ShardError(f"--parts {parts}: give 1 to {len(pending)} (the trials to run)")
    text, commit = dump_config(config, portable=True), git_commit()
    return [
        write_package(
            part_folder(out, part),
            study=config.name,
            config=text,
            commit=commit,
            part=part,
            parts=parts,
            trials=pending[part::parts],
            images=images,
            plugins=list(config.plugins),
            optional_metrics=config.optional_metrics,
            extra_metrics=list(config.extra_metrics),
        )
        for part in range(parts)
    ]

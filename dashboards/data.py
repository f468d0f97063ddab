"""What a dashboard shows, read from MLflow through the study engine's tracking module."""

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

from inr_models import available_codecs, fits_network, get_codec_class
from losses import available_families, get_family
from study.engine.tracking import RunStore, study_location
from study.errors import InputError
from study.layout import (
    ARTIFACTS_DIR,
    CONFIG_FILE,
    RECOMMENDATIONS_FILE,
    REPORTS_DIR,
    is_published_copy,
    load_study_config,
    read_state,
)
from study.results.report import bd_metrics, bd_rate_rows
from study.results.table import get_metric, metric_table

# Only these travel to the page with each run, beside its metrics: enough for curves, hover text
# and links.
RECORD_KEYS = (
    "run_id", "experiment_id", "trial_key", "codec", "loss", "loss_family", "alpha",
    "rate_parameter", "rate", "preset", "image", "seed", "search", "match",
)  # fmt: skip


class DashboardError(InputError):
    """No runs to show, or a study folder / experiment that cannot be read."""


@dataclass
class StudyData:
    title: str
    store: RunStore
    records: list[dict]
    # BD-rate rows as study.results.report computes them, and search recommendations.
    bd_rates: list[dict] = field(default_factory=list)
    recommendations: list[dict] = field(default_factory=list)
    # The study's parent run (study folder only), which keeps the page as an artifact.
    parent_run_id: str | None = None
    # How the images were prepared, for captions ("256-px centre crops of kodak"), when known.
    images: str | None = None

    def scale(self) -> str:
        """The study's scale for a caption: images, how prepared, seeds."""
        grid = [r for r in self.records if not r.get("search")] or self.records
        images = len({r["image"] for r in grid})
        seeds = len({r.get("seed", 0) for r in grid})
        prepared = f" ({self.images})" if self.images else ""
        return f"{images} image{'s' * (images != 1)}{prepared}, {seeds} seed{'s' * (seeds != 1)}"


def plotted_metrics() -> list[str]:
    return [m.key for m in metric_table() if m.plotted]


def _slim(record: dict) -> dict:
    return {k: record.get(k) for k in (*RECORD_KEYS, "bpp", *plotted_metrics())}


def vocabulary(records: list[dict]) -> dict:
    """The declarations the page styles and labels with: metrics, codecs and loss families.

    Codecs and families keep their registration order, so a study's colours and markers do not
    depend on which runs happen to be shown.
    """
    codecs = {r["codec"] for r in records}
    # A search task matched rates (some fit of it was chosen for an image) or sampled a front.
    tasks = sorted({r["search"] for r in records if r.get("search")})
    matched = {r["search"] for r in records if r.get("match")}
    families = {r.get("loss_family") for r in records if r.get("loss_family")}
    known = [name for name in available_codecs() if name in codecs]
    return {
        "search_tasks": [
            {"name": task, "mode": "match" if task in matched else "pareto"} for task in tasks
        ],
        "metrics": [
            {"key": m.key, "label": m.display, "higher_is_better": m.higher_is_better}
            for m in metric_table()
            if m.plotted
        ],
        "bd_metrics": [{"key": key, "label": get_metric(key).display} for key in bd_metrics()],
        "codecs": [
            {"name": c.name, "fits_network": c.fits_network, "rate_label": c.rate_axis.label}
            for c in map(get_codec_class, known)
        ]
        # A codec this process has no class for (a plugin not imported) still gets a style.
        + [
            {"name": name, "fits_network": fits_network(name), "rate_label": "rate"}
            for name in sorted(codecs - set(known))
        ],
        "loss_families": [
            {
                "name": f.name,
                "label": f.label,
                "structural": f.structural,
                "takes_alpha": f.takes_alpha,
            }
            for f in map(get_family, available_families())
        ]
        + [
            {"name": name, "label": name, "structural": False, "takes_alpha": False}
            for name in sorted(families - set(available_families()))
        ],
    }


def from_store(store: RunStore, title: str) -> StudyData:
    records = store.records()
    if not records:
        raise DashboardError(f"{title}: no finished trials in {store.tracking_uri}")
    return StudyData(title, store, [_slim(r) for r in records], bd_rate_rows(records))


def from_experiment(tracking_uri: str, experiment: str) -> StudyData:
    return from_store(RunStore(tracking_uri, experiment), experiment)


def from_study(folder: Path, tracking_uri: str | None = None) -> StudyData:
    folder = Path(folder)
    config = load_study_config(folder)
    uri, experiment = study_location(folder, config)
    data = from_store(
        RunStore(tracking_uri or uri, experiment, folder / ARTIFACTS_DIR), config.name
    )
    data.parent_run_id = read_state(folder).get("parent_run_id")
    crop = config.images.crop
    data.images = config.images.dataset + (
        f", {crop}-px {config.images.crop_anchor} crops" if crop else ", full size"
    )
    recommendations = folder / RECOMMENDATIONS_FILE
    if recommendations.exists():
        data.recommendations = json.loads(recommendations.read_text())
    return data


def from_published(folder: Path) -> StudyData:
    """A published copy (``results/NAME``: no MLflow store, no decoded images) from its
    ``reports/per_image.csv``: enough for the R-D figures."""
    from study.results.report import read_per_image_csv

    table = Path(folder) / REPORTS_DIR / "per_image.csv"
    if not table.exists():
        raise DashboardError(f"{folder}: neither a study folder nor a published one ({table})")
    records = read_per_image_csv(table)
    if not records:
        raise DashboardError(f"{table}: no trials")
    return StudyData(Path(folder).resolve().name, None, records)


def from_folder(folder: Path) -> StudyData:
    """A study folder, or else a published copy of one."""
    if (Path(folder) / CONFIG_FILE).exists() and not is_published_copy(folder):
        return from_study(folder)
    return from_published(folder)


def reference_curves(paths: list[Path]) -> list[dict]:
    """CompressAI-format files as ``{name, bpp, <plotted metric>: values, ...}``; absent metrics
    are left out."""
    keys = {get_metric(key).compressai_key: key for key in ("bpp", *plotted_metrics())}
    curves = []
    for path in paths:
        document = json.loads(Path(path).read_text())
        results = document.get("results", {})
        curve = {"name": document.get("name", Path(path).stem)}
        for theirs, ours in keys.items():
            if theirs in results:
                curve[ours] = results[theirs]
        if "bpp" in curve:
            curves.append(curve)
    return curves


def add_reference_option(parser: argparse.ArgumentParser) -> None:
    """``--reference FILE`` (repeatable), read by :func:`reference_curves`."""
    parser.add_argument(
        "--reference",
        type=Path,
        action="append",
        default=[],
        help="CompressAI-format JSON to draw as a reference curve (repeatable)",
    )

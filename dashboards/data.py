"""What a dashboard shows, read from MLflow through the study engine's tracking module."""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from dashboards.references import ImageSet
from inr_models import available_codecs, fits_network, get_codec_class
from inr_models.base import RATE_PARTS
from losses import available_families, get_family
from study.engine.reports import AlphaRule, alpha_rule
from study.engine.tracking import RunStore, study_location
from study.errors import InputError
from study.layout import (
    ARTIFACTS_DIR,
    CONFIG_FILE,
    REPORTS_DIR,
    is_published_copy,
    load_study_config,
    read_state,
)
from study.results.alpha import alpha_rows, matched_fits, settled, task_target
from study.results.claims import Verdict, judge_claims
from study.results.comparisons import bd_metrics
from study.results.rd import common_images
from study.results.report import bd_rate_rows
from study.results.table import get_metric, recorded_metrics

# Only these travel to the page with each run, beside its metrics: enough for curves, hover text
# and links, and the image's size, which decides the metrics it can have.
RECORD_KEYS = (
    "run_id", "experiment_id", "trial_key", "codec", "loss", "loss_family", "alpha",
    "rate_parameter", "rate", "preset", "image", "seed", "search", "height", "width",
)  # fmt: skip


class DashboardError(InputError):
    """No runs to show, or a study folder / experiment that cannot be read."""


@dataclass
class StudyData:
    title: str
    store: RunStore
    records: list[dict]
    # BD-rate rows as study.results.report computes them.
    bd_rates: list[dict] = field(default_factory=list)
    # Verdicts on the paper's claims these records can test, as study.results.claims judges them.
    claims: list[Verdict] = field(default_factory=list)
    # How a match-mode search's α are judged, from the study config (None: not such a study).
    alpha_rule: AlphaRule | None = None
    # The study's parent run (study folder only), which keeps the page as an artifact.
    parent_run_id: str | None = None
    folder: Path | None = None  # the study folder, when the page is built from one
    # Where the images come from and how they were prepared, when known (from the study config).
    dataset: str | None = None
    crop: int | None = None
    crop_anchor: str = "center"

    def grid(self) -> list[dict]:
        return [r for r in self.records if not r.get("search")] or self.records

    @cached_property  # read by the caption, the title, the filter and reference matching
    def curve_images(self) -> list[str] | None:
        """The images the dataset curves are the mean over where not all the study's (a study
        still growing: ``rd.common_images``); [] when no image is common to every curve."""
        return common_images(self.records)

    def curve_images_text(self) -> str | None:
        """For the figure's caption and the page's title, after "mean over": which images the
        dataset curves are the mean over, where not all the study's."""
        over = self.curve_images
        if over is None:
            return None
        if not over:
            return "each curve's own images (no image is common to every curve)"
        left_out = sorted({r["image"] for r in self.grid()} - set(over))
        if len(over) <= 4:
            named = ", ".join(over)
        elif len(left_out) <= 4:
            named = f"all images but {', '.join(left_out)}"
        else:
            named = f"{len(over)} images"
        which = "the one image" if len(over) == 1 else "the images"
        return f"{named}, {which} every curve holds at every rate setting"

    def image_set(self) -> ImageSet | None:
        """The images the dataset curves are the mean over (see ``curve_images``); None when the
        dataset is unknown (an MLflow experiment without its study folder)."""
        if self.dataset is None:
            return None
        over = self.curve_images
        names = frozenset(over if over is not None else (r["image"] for r in self.grid()))
        # An anchor without a crop prepares nothing.
        return ImageSet(self.dataset, names, self.crop, self.crop_anchor if self.crop else "center")

    def scale(self, of_curves: bool = False) -> str:
        """The study's scale for a caption: images, how prepared, seeds; ``of_curves``: first the
        images the dataset curves are the mean over, where not all (``curve_images_text``)."""
        images = len({r["image"] for r in self.grid()})
        seeds = len({r.get("seed", 0) for r in self.grid()})
        prepared = f" ({self.dataset}, {self._preparation()})" if self.dataset else ""
        held = f"{images} image{'s' * (images != 1)}{prepared}, {seeds} seed{'s' * (seeds != 1)}"
        over = self.curve_images_text() if of_curves else None
        return f"{over}; study: {held}" if over else held

    def _preparation(self) -> str:
        return ImageSet(self.dataset, frozenset(), self.crop, self.crop_anchor).preparation()


def plotted_metrics(rows: Iterable[Mapping]) -> list[str]:
    """The plotted metrics that rows (trial records) report."""
    return [m.key for m in recorded_metrics(rows) if m.plotted]


def metric_notes(data: StudyData) -> dict[str, str]:
    """For each plotted metric that some grid trials lack: how many, why, and how to add it."""
    grid = data.grid()
    notes = {}
    for metric in (m for m in recorded_metrics(grid) if m.plotted):
        lacking = [r for r in grid if r.get(metric.key) is None]
        if not lacking:
            continue
        where = (
            "no values"
            if len(lacking) == len(grid)
            else f"missing on {len(lacking)} of {len(grid)} trials, whose points are left out"
        )
        sides = {
            min(r["height"], r["width"]) for r in lacking if r.get("height") and r.get("width")
        }
        if sides and not any(metric.size_allows(side) for side in sides):
            notes[metric.key] = (
                f"{metric.display}: {where}: it needs images of at least {metric.min_side} px a "
                f"side, these have {max(sides):g}."
            )
            continue
        folder = data.folder or "STUDY_FOLDER"
        how = f"`inr-study rescore {folder}` adds it from the trials' stored decoded images"
        reason = metric.unavailable() if metric.unavailable else None
        if reason is not None:
            how = f"this machine cannot compute it yet ({reason}); once it can, {how}"
        notes[metric.key] = (
            f"{metric.display}: {where}: recorded as missing when the trials ran (not computable "
            f"there, or switched off in the study config); {how}."
        )
    return notes


def _slim(record: dict) -> dict:
    keys = (*RECORD_KEYS, "bpp", *RATE_PARTS, *plotted_metrics([record]))
    return {k: record.get(k) for k in keys}


def vocabulary(records: list[dict]) -> dict:
    """The declarations the page styles and labels with: metrics, codecs, rate parts and loss
    families.

    Codecs and families keep their registration order, so a study's colours and markers do not
    depend on which runs happen to be shown.
    """
    codecs = {r["codec"] for r in records}
    # A search task matches rates to its target or samples a front (no target in its name).
    tasks = sorted({r["search"] for r in records if r.get("search")})
    families = {r.get("loss_family") for r in records if r.get("loss_family")}
    known = [name for name in available_codecs() if name in codecs]
    return {
        "search_tasks": [
            {"name": task, "mode": "pareto" if task_target(task) is None else "match"}
            for task in tasks
        ],
        "metrics": [
            {
                "key": m.key,
                "label": m.display,
                "axis_label": m.axis_label,
                "higher_is_better": m.higher_is_better,
            }
            for m in recorded_metrics(records)
            if m.plotted
        ],
        "bd_metrics": [
            {"key": key, "label": get_metric(key).display} for key in bd_metrics(records)
        ],
        # Each codec's rate axis: its points are joined in the order of its settings.
        "codecs": [
            {
                "name": c.name,
                "fits_network": c.fits_network,
                "rate_label": c.rate_axis.label,
                "rate_choices": c.rate_axis.choices,
                "rate_increases": c.rate_axis.rate_increases,
            }
            for c in map(get_codec_class, known)
        ]
        # A codec this process has no class for (a plugin not imported) still gets a style; its
        # points are joined in the order of their bpp.
        + [
            {
                "name": name,
                "fits_network": fits_network(name),
                "rate_label": "rate",
                "rate_choices": None,
                "rate_increases": None,
            }
            for name in sorted(codecs - set(known))
        ],
        "rate_parts": [{"key": key, "label": label} for key, label in RATE_PARTS.items()],
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
    slim, claims = [_slim(r) for r in records], judge_claims(records)[1]
    return StudyData(title, store, slim, bd_rate_rows(records), claims=claims)


def from_experiment(tracking_uri: str, experiment: str) -> StudyData:
    return from_store(RunStore(tracking_uri, experiment), experiment)


def from_study(folder: Path, tracking_uri: str | None = None) -> StudyData:
    folder = Path(folder)
    config = load_study_config(folder)
    uri, experiment = study_location(folder, config)
    data = from_store(
        RunStore(tracking_uri or uri, experiment, folder / ARTIFACTS_DIR), config.name
    )
    data.parent_run_id = read_state(folder).parent_run_id
    data.folder = folder
    _prepared_as(data, config)
    return data


def _prepared_as(data: StudyData, config) -> None:
    """What the study config tells the page: the images' preparation, the α tables' rule."""
    data.dataset = config.images.dataset
    data.crop, data.crop_anchor = config.images.crop, config.images.crop_anchor
    data.alpha_rule = alpha_rule(config, data.records)


def alpha_points(data: StudyData) -> list[dict]:
    """Each match-mode task's α at matched rate, decided as the α tables decide it: per task and
    α, images fitted of the study's, images on target, mean bpp and plotted metrics, and whether
    it is the task's best α by the search's metric, and whether that best is final (``final``;
    else the best so far, of ``alphas_in`` of ``alphas_planned``: ``alpha.settled``)."""
    rule = data.alpha_rule
    if rule is None:
        return []
    metrics = plotted_metrics(data.records)
    matched = matched_fits([r for r in data.records if r.get("search")], rule.tolerance)
    keys = ("task", "alpha", "images", "of", "on_target", "bpp", "best", "alphas_in",
            "alphas_planned", *metrics)  # fmt: skip
    return [
        {**{key: row.get(key) for key in keys}, "final": settled(row)}
        for row in alpha_rows(matched, rule.metric, metrics, rule.images, rule.grid)
    ]


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
    data = StudyData(Path(folder).resolve().name, None, records)
    if (Path(folder) / CONFIG_FILE).exists():  # published with its config
        _prepared_as(data, load_study_config(folder))
    return data


def from_folder(folder: Path) -> StudyData:
    """A study folder, or else a published copy of one."""
    if (Path(folder) / CONFIG_FILE).exists() and not is_published_copy(folder):
        return from_study(folder)
    return from_published(folder)

"""What a dashboard shows, read from MLflow (and a study folder's files when one is given)."""

import json
from dataclasses import dataclass, field
from pathlib import Path

from study.layout import RECOMMENDATIONS_FILE, TRIALS_DIR, load_study_config, tracking_location
from study.report import bd_rate_rows, rd_points
from study.tracking import RunStore

# Only these travel to the page: enough for curves, hover text and links.
RECORD_KEYS = (
    "run_id",
    "experiment_id",
    "trial_key",
    "codec",
    "loss",
    "alpha",
    "lmbda",
    "configuration",
    "quality",
    "preset",
    "image",
    "seed",
    "search",
    "bpp",
    "psnr",
    "ms_ssim",
    "ms_ssim_db",
    "lpips",
)


class DashboardError(ValueError):
    """No runs to show, or a study folder / experiment that cannot be read."""


@dataclass
class StudyData:
    title: str
    tracking_uri: str
    records: list[dict]
    # BD-rate rows as study.report computes them, and search recommendations (study folder only).
    bd_rates: list[dict] = field(default_factory=list)
    recommendations: list[dict] = field(default_factory=list)
    # Where each trial's decoded PNG is on this machine, by trial key (study folder only).
    decoded: dict[str, Path] = field(default_factory=dict)


def _slim(record: dict) -> dict:
    return {k: record.get(k) for k in RECORD_KEYS}


def from_store(tracking_uri: str, experiment: str, title: str | None = None) -> StudyData:
    store = RunStore(tracking_uri, experiment)
    records = store.records()
    if not records:
        raise DashboardError(f"experiment {experiment!r} at {tracking_uri} has no finished trials")
    return StudyData(
        title or experiment,
        tracking_uri,
        [_slim(r) for r in records],
        bd_rate_rows(rd_points(records)),
    )


def from_study(folder: Path, tracking_uri: str | None = None) -> StudyData:
    folder = Path(folder)
    config = load_study_config(folder)
    uri, experiment = tracking_location(folder, config)
    data = from_store(tracking_uri or uri, experiment, config.name)
    recommendations = folder / RECOMMENDATIONS_FILE
    if recommendations.exists():
        data.recommendations = json.loads(recommendations.read_text())
    for record in data.records:
        png = folder / TRIALS_DIR / str(record["trial_key"]) / "decoded.png"
        if png.exists():
            data.decoded[record["trial_key"]] = png
    return data

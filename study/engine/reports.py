"""A study's reports, written from its MLflow runs into its folder and kept on its parent run."""

from pathlib import Path

from study.config import StudyConfig
from study.data.datasets import planned_image_names
from study.engine.tracking import RunStore, study_store
from study.layout import REPORTS_DIR, read_state
from study.results.coverage import write_coverage
from study.results.report import write_reports


def refresh_reports(folder: Path, config: StudyConfig, store: RunStore | None = None) -> list[Path]:
    """Write ``folder/reports/`` from the study's finished runs and log them on its parent run,
    so the copy in MLflow (a tracking server's included) never goes stale."""
    store = store or study_store(folder, config)
    records = store.records()
    out = Path(folder) / REPORTS_DIR
    written = write_reports(records, config.name, out)
    written += write_plan_coverage(config, records, out)
    parent = read_state(folder).get("parent_run_id")
    if parent is not None:
        store.log_parent_artifacts(parent, written, REPORTS_DIR)
    return written


def write_plan_coverage(config: StudyConfig, records: list[dict], out: Path) -> list[Path]:
    """``coverage.md`` when a grid study's records lack some of its planned trials."""
    from study.engine.plan import grid_trials

    names = planned_image_names(config.images.dataset, config.images.subset)
    if config.search is not None or names is None:
        return []
    planned = grid_trials(config, names)
    return write_coverage(planned, {r.get("trial_key") for r in records}, out)

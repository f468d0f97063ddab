"""A study's reports, written from its MLflow runs into its folder and kept on its parent run."""

from pathlib import Path

from study.config import StudyConfig
from study.engine.tracking import RunStore, study_store
from study.layout import REPORTS_DIR, read_state
from study.results.report import write_reports


def refresh_reports(folder: Path, config: StudyConfig, store: RunStore | None = None) -> list[Path]:
    """Write ``folder/reports/`` from the study's finished runs and log them on its parent run,
    so the copy in MLflow (a tracking server's included) never goes stale."""
    store = store or study_store(folder, config)
    written = write_reports(store.records(), config.name, Path(folder) / REPORTS_DIR)
    parent = read_state(folder).get("parent_run_id")
    if parent is not None:
        store.log_parent_artifacts(parent, written, REPORTS_DIR)
    return written

"""A study's reports, written from its MLflow runs into its folder and kept on its parent run."""

from pathlib import Path
from typing import NamedTuple

from study.config import StudyConfig
from study.data.datasets import planned_image_names
from study.engine.tracking import RunStore, study_store
from study.layout import REPORTS_DIR, read_state
from study.results.alpha_tables import write_alpha_tables
from study.results.comparisons import bd_metrics
from study.results.coverage import write_coverage
from study.results.report import write_reports
from study.results.table import metric_table


def refresh_reports(folder: Path, config: StudyConfig, store: RunStore | None = None) -> list[Path]:
    """Write ``folder/reports/`` from the study's finished runs and log them on its parent run,
    so the copy in MLflow (a tracking server's included) never goes stale."""
    store = store or study_store(folder, config)
    records = store.records()
    out = Path(folder) / REPORTS_DIR
    written = write_reports(records, config.name, out)
    written += write_plan_reports(config, records, out)
    parent = read_state(folder).parent_run_id
    if parent is not None:
        store.log_parent_artifacts(parent, written, REPORTS_DIR)
    return written


class AlphaRule(NamedTuple):
    """How a match-mode search's α are judged (the α tables, the dashboard's α plot)."""

    metric: str
    tolerance: float
    images: list[str] | None  # the study's, when its config names them
    grid: dict[str, list[float]]  # the α the config plans per loss family (none: α searched)


def alpha_rule(config: StudyConfig, records: list[dict]) -> AlphaRule | None:
    """The rule of a match-mode search's α tables; None for other studies."""
    search = config.search
    if search is None or search.mode != "match":
        return None
    from study.engine.search import resolve_metric

    # What the records hold decides ``auto`` (a published copy knows no weights).
    optional = [m.key for m in metric_table() if m.optional]
    measured = any(r.get(key) is not None for r in records for key in optional)
    metric = resolve_metric(search, config.images.crop, measured)
    names = planned_image_names(config.images.dataset, config.images.subset)
    return AlphaRule(metric, search.tolerance, names, dict(search.alphas))


def write_plan_reports(config: StudyConfig, records: list[dict], out: Path) -> list[Path]:
    """What the config adds to the records' reports: ``coverage.md`` when a grid study lacks
    some planned trials; the α tables of a match-mode search."""
    from study.engine.plan import grid_trials

    if config.search is not None:
        rule = alpha_rule(config, records)
        if rule is None:
            return []
        metrics = list(dict.fromkeys([rule.metric, *bd_metrics(records)]))
        return write_alpha_tables(
            records, out, rule.metric, metrics, rule.tolerance, rule.images, rule.grid
        )
    names = planned_image_names(config.images.dataset, config.images.subset)
    if names is None:
        return []
    return write_coverage(grid_trials(config, names), {r.get("trial_key") for r in records}, out)

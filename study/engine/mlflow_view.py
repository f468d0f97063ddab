"""What MLflow's web UI shows of a study: its classic view, and tables of the trials.

MLflow 3's UI opens an experiment in its GenAI view (traces, token usage) unless the URL asks for
the machine-learning one, whatever the experiment's tags say, so every URL we print or link carries
``workflowType=machine_learning``. A trials table is a shared view state: an experiment tag that the
UI reads when a URL names its key (``viewStateShareKey``), holding a filter, a sort and the columns.
The columns come from the declarations: each codec's rate axis and the metric table's headline
figures.
"""

import json
from urllib.parse import urlencode

from inr_models import get_codec_class
from study.config import StudyConfig
from study.results.table import metric_table

DEFAULT_UI = "http://127.0.0.1:5000"
MACHINE_LEARNING = {"workflowType": "machine_learning"}
SHARED_VIEW_TAG = "mlflow.sharedViewState."
# Key -> (what the table holds, what it adds to the filter of a study's trial runs). A fit is a
# trial with a training loss; the first table holds results, the second every run (live ones too).
VIEWS = {
    "fits": ("finished INR fits", " and params.`loss` LIKE '%' and attributes.status = 'FINISHED'"),
    "trials": ("every trial run: anchors, running and failed ones included", ""),
}
FIRST_VIEW = next(iter(VIEWS))


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


def _rate_axes(config: StudyConfig) -> list[str]:
    axes = []
    for entry in config.codecs:
        try:
            name = get_codec_class(entry.name).rate_axis.name
        except KeyError:  # a plugin codec this process has not imported
            continue
        if name not in axes:
            axes.append(name)
    return axes


def trial_columns(config: StudyConfig) -> list[str]:
    """Source (the code version), what a trial is, and the study's headline figures."""
    params = ["codec", "loss", *_rate_axes(config), "image"]
    if len(config.seeds) > 1 or (config.search is not None and config.search.jump_seeds):
        params.append("seed")
    metrics = ["bpp", *(m.key for m in metric_table(config.extra_metrics) if m.plotted)]
    return [
        _column("attributes", "Source"),
        *(_column("params", p) for p in params),
        *(_column("metrics", m) for m in metrics),
    ]


def view_tags(config: StudyConfig, trials_filter: str) -> dict[str, str]:
    """The experiment tags that hold the study's trial tables, sorted by rate; ``trials_filter``
    selects the study's trial runs."""
    columns = trial_columns(config)
    return {
        SHARED_VIEW_TAG + key: json.dumps(
            {
                "searchFilter": trials_filter + narrower,
                "orderByKey": _column("metrics", "bpp"),
                "orderByAsc": True,
                "selectedColumns": columns,
            },
            sort_keys=True,
        )
        for key, (_, narrower) in VIEWS.items()
    }


def experiment_url(ui: str, experiment_id: str, view: str | None = FIRST_VIEW) -> str:
    """The experiment's runs in the classic view; with ``view``, one of the trial tables."""
    query = {**MACHINE_LEARNING, **({"viewStateShareKey": view} if view else {})}
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs?{urlencode(query)}"


def run_url(ui: str, experiment_id: str, run_id: str) -> str:
    """One run's page in the classic view."""
    query = urlencode(MACHINE_LEARNING)
    return f"{ui.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?{query}"

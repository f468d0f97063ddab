"""One plugin module adds a codec with a new kind of rate parameter, a loss family with α and a
metric; all three flow through validation, a study, MLflow, reports, a search space and the
dashboard payload, and the finished study folder still works after being moved."""

import csv
import json
import shutil

import pytest
from optuna.distributions import FloatDistribution, IntDistribution

from dashboards.cli import main as dashboard
from dashboards.data import from_study
from dashboards.page import live_payload
from study.cli import main
from study.config import StudyConfigError, parse_config
from study.engine.search import task_space
from study.engine.tasks import search_tasks
from study.engine.tracking import study_store
from study.layout import load_study_config, read_state

pytestmark = pytest.mark.slow


@pytest.fixture
def plugin_config(small_config, study_env):
    return small_config(
        plugins=["extension"],
        images={"dataset": "kodak", "subset": ["kodim23"], "crop": 64},
        codecs=[{"name": "posterize", "levels_list": [4, 32]}],
        losses=["mse", "mse_l1(0.3)"],
    )


def test_plugin_codec_loss_family_and_metric_flow_through_a_study(
    plugin_config, write_config, tmp_path, capsys
):
    config = parse_config(plugin_config)
    assert config.codecs[0].rates == [4, 32] and config.codecs[0].preset == "single"
    with pytest.raises(StudyConfigError, match="levels 1 outside the valid range"):
        parse_config({**plugin_config, "codecs": [{"name": "posterize", "levels_list": [1]}]})
    with pytest.raises(StudyConfigError, match=r"α must lie in \[0.1, 0.9\]"):
        parse_config({**plugin_config, "losses": ["mse_l1(0.95)"]})

    # Search space: an integer axis on a log scale, and the family's own α range.
    searched = {
        "codecs": [{"name": "posterize"}],
        "search": {"mode": "pareto", "metric": "max_error"},
    }
    search = parse_config({**plugin_config, **searched})
    [mse_task, mixed_task] = search_tasks(search)
    assert task_space(mse_task, search.search) == {"rate": IntDistribution(2, 64, log=True)}
    assert task_space(mixed_task, search.search)["alpha"] == FloatDistribution(0.1, 0.9)
    spec = mixed_task.trial_spec(0.25, 8, "kodim23", "", 0)
    assert spec.label() == "posterize mse_l1(0.25) levels=8 kodim23"

    # A four-trial study: MLflow holds the typed rate, the family, α and the new metric.
    assert main(["run", str(write_config(plugin_config))]) == 0
    folder = tmp_path / "studies" / "small"
    records = study_store(folder, load_study_config(folder)).records()
    assert len(records) == 4
    mixed = [r for r in records if r["loss_family"] == "mse_l1"]
    assert {r["levels"] for r in mixed} == {4, 32} and {r["rate"] for r in mixed} == {4, 32}
    assert {r["alpha"] for r in mixed} == {0.3} and all(r["max_error"] >= 0 for r in records)

    # Reports: CSV column, CompressAI key, BD-rate column against the codec's published loss.
    reports = folder / "reports"
    with (reports / "per_image.csv").open() as f:
        assert "max_error" in next(csv.reader(f))
    curve = json.loads((reports / "posterize__mse_l1-0.3.json").read_text())
    assert len(curve["results"]["max-error-rgb"]) == 2
    table = (reports / "bd_rate.md").read_text()
    assert "max error 8-bit levels" in table and "| posterize | mse_l1(0.3) | mse |" in table

    # Dashboard payload: the page is told about the metric, the codec's axis and the family.
    payload = live_payload(from_study(folder))
    label = "max error (8-bit levels, lower is better)"
    assert {"key": "max_error", "label": label, "axis_label": label,
            "higher_is_better": False} in payload["metrics"]  # fmt: skip
    assert {"name": "posterize", "fits_network": True, "rate_label": "levels",
            "rate_choices": None, "rate_increases": True} in payload["codecs"]  # fmt: skip
    family = next(f for f in payload["loss_families"] if f["name"] == "mse_l1")
    assert family["takes_alpha"] and not family["structural"]
    assert all("max_error" in r for r in payload["records"])


def test_a_moved_study_folder_works_where_it_now_is(plugin_config, write_config, tmp_path, capsys):
    assert main(["run", str(write_config(plugin_config))]) == 0
    original = tmp_path / "studies" / "small"
    assert read_state(original).tracking_uri is None  # its own store: found where it is
    moved = tmp_path / "elsewhere" / "small"
    shutil.copytree(original, moved)
    shutil.rmtree(original)

    assert main(["report", str(moved)]) == 0
    assert (moved / "reports" / "bd_rate.md").exists()
    page = tmp_path / "moved.html"
    assert dashboard([str(moved), "-o", str(page)]) == 0  # its crops read the runs' decoded PNGs
    assert page.read_text().count("<figure>") == 1 + 2  # original + 2 curves

    store = study_store(moved, load_study_config(moved))
    record = store.records()[0]
    downloaded = store.artifact(record, "bitstream.bin", tmp_path)
    assert downloaded.stat().st_size == record["bytes"]
    run = store.client.get_run(record["run_id"])
    assert run.info.artifact_uri.startswith(moved.resolve().as_uri())

    capsys.readouterr()
    assert main(["resume", str(moved), "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "4 trials, 4 already finished, 0 to run" in out and str(moved.resolve()) in out

"""The study engine end to end on local Ray with the SQLite MLflow store."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter

import optuna
import pytest
from mlflow.tracking import MlflowClient

from dashboards.cli import main as dashboard
from dashboards.data import from_study
from dashboards.page import live_payload
from study.cli import main
from study.config import parse_config
from study.engine import local_cluster, runner
from study.engine.lock import StudyBusyError, study_lock
from study.engine.reports import refresh_reports
from study.engine.runner import Study
from study.engine.tracking import ERROR_TAG, KEY_TAG, KIND_TAG
from study.layout import RAY_SESSION_FILE, default_tracking_uri, read_state

pytestmark = pytest.mark.slow


def trial_runs(folder, status=None):
    state = read_state(folder)
    client = MlflowClient(default_tracking_uri(folder))
    experiment = client.get_experiment_by_name(state.experiment)
    query = f"tags.`{KIND_TAG}` = 'trial'"
    if status:
        query += f" and attributes.status = '{status}'"
    return client, client.search_runs([experiment.experiment_id], query, max_results=1000)


def test_grid_study_records_every_trial_and_survives_a_diverging_one(
    tmp_path, study_env, small_config, write_config, capsys
):
    config = small_config(
        plugins=["diverging_codec"],
        retries=1,
        # The default of every study: the real AlexNet weights, in every Ray worker.
        optional_metrics=True,
        codecs=[
            *small_config()["codecs"],
            {"name": "always-diverges", "qualities": [50]},
        ],
        # Two trials of a codec per Ray trial: COOL-CHIC's fits train together, each its own run.
        resources={"fit_batch": 2},
    )
    assert main(["run", str(write_config(config))]) == 1  # 1: some trials failed
    out = capsys.readouterr()
    assert "finished: 8, failed: 2" in out.out
    assert (
        "FAILED always-diverges quality=50 kodim01 (+1 fitted with it): "
        "inr_models.base.DivergedError: loss became NaN" in out.out
    )
    assert "retrying always-diverges" in out.out  # retries: 1

    folder = tmp_path / "studies" / "small"
    client, finished = trial_runs(folder, "FINISHED")
    assert len(finished) == 8
    assert len({run.data.tags[KEY_TAG] for run in finished}) == 8
    for run in finished:
        metrics = run.data.metrics
        assert metrics["bpp"] == pytest.approx(8 * metrics["bytes"] / (64 * 64))
        assert metrics["psnr"] > 15 and metrics["encode_seconds"] > 0
        assert "decode_seconds" in metrics and "peak_memory_mb" in metrics
        assert "ms_ssim" in run.data.tags["inr_study.missing_metrics"]  # 64-px crops
        assert 0 < metrics["lpips"] < 1
        assert "lpips" not in run.data.tags["inr_study.missing_metrics"]
        assert run.data.tags["inr_study.study"] == "small"
        assert {"git_commit", "device", "mlflow.parentRunId"} <= set(run.data.tags)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"bitstream.bin", "decoded.png", "trial.json"}
    coolchic = [r for r in finished if r.data.params["codec"] == "coolchic-v1"]
    assert {r.data.params["preset"] for r in coolchic} == {"debug"}
    assert all("mac_per_pixel" in r.data.metrics for r in coolchic)
    assert {r.data.metrics["fit_batch"] for r in coolchic} == {2}
    for run in coolchic:  # the rate broken down, from the file
        parts = [run.data.metrics[f"{part}_bits"] for part in ("header", "network", "latent")]
        assert sum(parts) == 8 * run.data.metrics["bytes"] and min(parts) > 0

    _, failed = trial_runs(folder, "FAILED")
    assert len(failed) == 4  # each attempt is a run: 2 trials × (1 + 1 retry)
    assert len({run.data.tags[KEY_TAG] for run in failed}) == 2
    errors = [run.data.tags[ERROR_TAG] for run in failed]
    assert all("DivergedError" in error for error in errors), errors

    reports = folder / "reports"
    with (reports / "per_image.csv").open() as f:
        per_image = list(csv.DictReader(f))
    assert len(per_image) == 8 and all(float(row["lpips"]) > 0 for row in per_image)
    assert {row["network_bits"] == "" for row in per_image if row["codec"] == "jpeg"} == {True}
    assert all(float(row["network_bits"]) > 0 for row in per_image if row["codec"] != "jpeg")
    assert (reports / "coolchic-v1__mse.json").exists() and (reports / "jpeg.json").exists()

    # A run a researcher can browse: live history, real span, dataset input, code version.
    run = coolchic[0]
    history = client.get_metric_history(run.info.run_id, "validation.loss")
    assert len({m.step for m in history}) >= 2
    span = (run.info.end_time - run.info.start_time) / 1000
    # A batched trial's seconds are its share of its batch; its run spans the batch.
    share, batch = run.data.metrics["trial_seconds"], run.data.metrics["fit_batch"]
    assert share <= span <= share * batch + 5
    [dataset] = run.inputs.dataset_inputs
    assert dataset.dataset.name == f"{run.data.params['image']} (64px center crops)"
    commit = run.data.tags["git_commit"]
    assert run.data.tags["mlflow.source.git.commit"] == commit != "unknown"
    assert run.data.tags["mlflow.source.name"].startswith(commit[:7])  # MLflow's Source column
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    # The trial tables the printed URLs open: each selects its runs and names its columns.
    for key in ("fits", "trials"):
        view = json.loads(experiment.tags[f"mlflow.sharedViewState.{key}"])
        selected = client.search_runs([experiment.experiment_id], view["searchFilter"])
        assert len(selected) == {"fits": 4, "trials": 12}[key]  # 4 failed runs
        assert "params.`lmbda`" in view["selectedColumns"]
    parent = run.data.tags["mlflow.parentRunId"]
    assert {a.path for a in client.list_artifacts(parent)} >= {"study.yaml", "reports"}
    # One loss: no loss table (none is written empty); JPEG gives the classical one.
    logged = {a.path for a in client.list_artifacts(parent, "reports")}
    assert "reports/bd_rate_classical.md" in logged and "reports/bd_rate.md" not in logged

    assert main(["resume", str(folder), "--where", "codec=nif"]) == 2  # before Ray starts
    assert "codec=nif matches no trial of the study" in capsys.readouterr().err


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_resume_after_the_driver_is_killed_runs_each_trial_exactly_once(
    tmp_path, study_env, small_config, write_config
):
    config = small_config(name="killed", max_concurrent=1)
    path = write_config(config)
    driver = subprocess.Popen(
        [sys.executable, "-m", "study.cli", "run", str(path), "--no-report"],
        env=study_env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    folder = tmp_path / "studies" / "killed"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if (folder / "study.json").exists() and trial_runs(folder, "FINISHED")[1]:
                break
            assert driver.poll() is None, "the study ended before it could be killed"
            time.sleep(0.5)
        else:
            pytest.fail("no trial finished in time")
        session = json.loads((folder / RAY_SESSION_FILE).read_text())
    finally:
        os.kill(driver.pid, signal.SIGKILL)  # the driver alone: its Ray processes stay behind
        driver.wait()
    _, before = trial_runs(folder, "FINISHED")
    assert 1 <= len(before) < 8

    try:
        assert main(["resume", str(folder)]) == 0
        # The resumed run stopped what the killed driver's Ray had left running.
        assert local_cluster.processes_using(session["temp_dir"]) == []
    finally:
        if _group_alive(driver.pid):  # never leave processes behind for the next tests
            os.killpg(driver.pid, signal.SIGKILL)
    _, runs = trial_runs(folder)
    finished = Counter(r.data.tags[KEY_TAG] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == 8 and set(finished.values()) == {1}
    assert {r.info.status for r in runs} <= {"FINISHED", "KILLED"}
    # Runs finished before the kill are the same runs afterwards, not redone.
    assert {r.info.run_id for r in before} <= {r.info.run_id for r in runs}


# Debug-preset fits are short, so their rate wobbles by ±15 % between neighbouring λ: more fits
# than the default 8 are needed to land within ±5 % every time.
FIT_BUDGET = 12


def test_rate_matched_search_lands_on_target_and_its_alpha_table_agrees(
    tmp_path, study_env, small_config, capsys, monkeypatch
):
    config = small_config(
        name="search",
        # 192 px: on smaller crops the debug preset's few iterations and the network's share of
        # the file make the rate jump between neighbouring λ, and 0.25 bpp can fall in a jump.
        # One image and one target keep the suite's time: matching several images and a task per
        # target are tests/study/test_search.py's (the same code, with recorded fits).
        images={"dataset": "kodak", "subset": ["kodim01"], "crop": 192},
        codecs=[{"name": "coolchic-v1", "preset": "debug"}],
        losses=["lc_ssim"],
        search={"targets_bpp": [0.5], "alphas": {"lc_ssim": [0.1, 0.4]},
                "fit_budget": FIT_BUDGET},
    )  # fmt: skip
    result = Study(parse_config(config)).run()
    assert result.counts == {"finished": 2, "failed": 0}  # 2 α of the grid
    for recommendation in result.recommendations:
        assert recommendation.metric == "ms_ssim_db"  # auto without LPIPS, on 192-px crops
        assert recommendation.reached and recommendation.on_target == 2, recommendation  # both α
        assert abs(recommendation.bpp / recommendation.target_bpp - 1) <= 0.05
        assert "wins at matched rate" in recommendation.describe()

    # Every matched fit is within ±5 % of its target, found within the fit budget.
    _, fits = trial_runs(result.folder, "FINISHED")
    matched = [r for r in fits if r.data.tags.get("inr_study.match") == "reached"]
    assert len(matched) == 2  # one per α
    for run in matched:
        target = float(run.data.params["search"].split("/")[-1].removesuffix("bpp"))
        assert abs(run.data.metrics["bpp"] / target - 1) <= 0.05
    per_match = Counter((r.data.params["search"], r.data.params["loss"], r.data.params["image"])
                        for r in fits)  # fmt: skip
    assert max(per_match.values()) <= FIT_BUDGET
    storage = optuna.storages.RDBStorage(f"sqlite:///{result.folder / 'optuna.db'}")
    study = optuna.load_study(study_name="coolchic-v1/lc_ssim/0.5bpp", storage=storage)
    measured = [t.params["alpha"] for t in study.trials if t.state.name == "COMPLETE"]
    assert sorted(measured) == [0.1, 0.4]  # the grid, each value once
    assert (result.folder / "recommendations.json").exists()
    # The α table agrees with the recommendations: the same α wins each task.
    refresh_reports(result.folder, parse_config(config))
    table = (result.folder / "reports" / "alpha.md").read_text()
    for recommendation in result.recommendations:
        assert f"| {recommendation.task} | **{recommendation.alpha:g}** |" in table, table
    # So does the dashboard's α plot: the same rule, sent with the page.
    payload = live_payload(from_study(result.folder))
    assert payload["alpha_metric"] == "ms_ssim_db"
    best = {(r["task"], r["alpha"]) for r in payload["alpha_rows"] if r["best"]}
    assert best == {(r.task, r.alpha) for r in result.recommendations}
    print(f"fits per matched (α, image): {sorted(per_match.values())}")
    # Every fit ran once, and a second run finds nothing left to do, without starting Ray.
    assert len({r.data.tags[KEY_TAG] for r in fits}) == len(fits)
    held = []

    def still_held(result):  # what follows a run (its reports) runs before the study is let go
        with pytest.raises(StudyBusyError), study_lock(result.folder):
            pass
        held.append(result.folder)

    with monkeypatch.context() as patch:
        patch.setattr(runner, "ray_session", None)
        again = Study(parse_config(config)).run(then=still_held)
    assert again.counts == {"finished": 0, "failed": 0} and held == [again.folder]
    assert [r.alpha for r in again.recommendations] == [r.alpha for r in result.recommendations]
    parent = MlflowClient(result.tracking_uri).get_run(read_state(result.folder).parent_run_id)
    assert parent.info.status == "FINISHED"
    assert len(trial_runs(result.folder, "FINISHED")[1]) == len(fits)

    # The α-tuning view of the dashboard gets the samples and the α as the tables judge them.
    page = tmp_path / "search.html"
    assert dashboard([str(result.folder), "-o", str(page)]) == 0
    text = page.read_text()
    assert '"search": "coolchic-v1/lc_ssim/0.5bpp"' in text and '"alpha_rows": [{' in text

    # Published with its fits, the search rebuilds elsewhere to the same reports, α table too.
    published = tmp_path / "published"
    shutil.copytree(result.folder / "reports", published / "reports")
    assert main(["export", str(result.folder), "-o", str(published)]) == 0
    capsys.readouterr()
    assert main(["rebuild", str(published), "--storage", str(tmp_path / "rebuilt")]) == 0
    assert "byte-identical to the published ones" in capsys.readouterr().out
    # Resumed without Optuna's history (rebuilt or imported), each sample runs again from its
    # recorded fits and refits nothing: tests/study/test_travel.py's matched search.

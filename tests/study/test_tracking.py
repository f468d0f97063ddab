"""The MLflow store of a study: a trial written, then read back typed; exactly once per key."""

from pathlib import Path

import pytest

from study.engine.tracking import MISSING_TAG, RunStore
from study.engine.trial import TrialOutcome, TrialSpec


@pytest.fixture
def store(tmp_path):
    return RunStore(f"sqlite:///{tmp_path / 'mlflow.db'}", "t", tmp_path / "mlartifacts")


def outcome(tmp_path: Path, spec: TrialSpec) -> TrialOutcome:
    bitstream = tmp_path / "bitstream.bin"
    bitstream.write_bytes(b"0123")
    metrics = {"bpp": 0.5, "psnr": 30.0, "ms_ssim": None, "bytes": 4}
    settings = {"loss": "lc_ssim(0.01)", "loss_family": "lc_ssim", "alpha": 0.01}
    return TrialOutcome(spec, metrics, settings, {"bitstream": bitstream})


def test_a_trial_run_reads_back_typed(store, tmp_path):
    spec = TrialSpec("coolchic-v1", "kodim01", 4e-3, "debug", "lc_ssim(0.01)", seed=2)
    parent = store.open_parent(None, "t", {"name": "t"}, {})
    run_id = store.start_trial(spec, parent, {"git_commit": "abc"})
    store.finish_trial(run_id, outcome(tmp_path, spec))
    [record] = store.records()
    assert record["run_id"] == run_id and record["trial_key"] == spec.key
    assert record["rate_parameter"] == "lmbda"
    assert record["lmbda"] == record["rate"] == 4e-3 and isinstance(record["rate"], float)
    assert record["alpha"] == 0.01 and record["seed"] == 2 and record["loss_family"] == "lc_ssim"
    assert record["psnr"] == 30.0 and record["ms_ssim"] is None  # missing: None, column kept
    run = store.client.get_run(run_id)
    assert run.data.tags[MISSING_TAG] == "ms_ssim"
    assert store.artifact(record, "bitstream.bin", tmp_path / "down").read_bytes() == b"0123"
    # A finished trial is not started again: resumes are exactly-once.
    assert store.start_trial(spec, parent, {}) is None
    assert len(store.records()) == 1


def test_a_discrete_rate_keeps_its_type(store, tmp_path):
    spec = TrialSpec("nif", "kodim01", "280", "debug", "mse")
    parent = store.open_parent(None, "t", {}, {})
    store.finish_trial(store.start_trial(spec, parent, {}), outcome(tmp_path, spec))
    [record] = store.records()
    assert record["configuration"] == record["rate"] == "280"


def test_failures_are_failed_runs_with_their_error(store):
    spec = TrialSpec("jpeg", "kodim01", 40)
    run_id = store.record_failure(spec, store.open_parent(None, "t", {}, {}), "Boom: no", {})
    assert store.client.get_run(run_id).info.status == "FAILED"
    assert store.records() == []

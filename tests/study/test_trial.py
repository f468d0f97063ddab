"""One trial as plain Python: real file, decoded from disk, measured."""

import json

import numpy as np
import pytest

from inr_models.base import DivergedError
from study.data.imageio import load_rgb
from study.engine.trial import TrialSpec, run_trial


@pytest.mark.parametrize(
    "spec",
    [
        TrialSpec("coolchic-v1", "kodim01", 4e-3, "debug", "lc_ssim(0.01)"),
        TrialSpec("jpeg", "kodim01", 40),
    ],
    ids=["coolchic-v1", "jpeg"],
)
def test_trial_writes_decodes_and_measures_the_real_file(spec, crop64, tmp_path):
    outcome = run_trial(spec, crop64, tmp_path, with_optional_metrics=False)
    data = outcome.files["bitstream"].read_bytes()
    assert outcome.metrics["bpp"] == 8 * len(data) / 64**2
    decoded = load_rgb(outcome.files["decoded"])
    assert decoded.shape == crop64.shape
    error = np.mean((decoded.astype(float) - crop64) ** 2)
    assert outcome.metrics["psnr"] == pytest.approx(10 * np.log10(255**2 / error))
    assert outcome.metrics["ms_ssim"] is None  # 64 px: too small for MS-SSIM, recorded missing
    assert outcome.metrics["decode_seconds"] > 0 and outcome.metrics["peak_memory_mb"] > 0
    summary = json.loads(outcome.files["summary"].read_text())
    assert summary["trial_key"] == spec.key and summary["codec"] == spec.codec


def test_trial_keys_identify_trials():
    a = TrialSpec("coolchic-v1", "kodim01", 4e-3, "paper", "mse")
    assert a.key == TrialSpec("coolchic-v1", "kodim01", 4e-3, "paper", "mse").key
    assert a.key != TrialSpec("coolchic-v1", "kodim01", 4e-3, "paper", "mse", seed=1).key
    assert a.key != TrialSpec("coolchic-v1", "kodim02", 4e-3, "paper", "mse").key
    assert a.params() == {
        "codec": "coolchic-v1",
        "image": "kodim01",
        "preset": "paper",
        "loss": "mse",
        "rate_parameter": "lmbda",
        "lmbda": 4e-3,
        "seed": 0,
    }


def test_a_diverging_codec_raises_for_the_caller_to_record(crop64, tmp_path, monkeypatch):
    from inr_models.coolchic.training import Fitter

    def diverge(self):
        raise DivergedError("loss is NaN")
        yield  # a fit's recipe is a generator

    monkeypatch.setattr(Fitter, "fit_steps", diverge)
    with pytest.raises(DivergedError):
        run_trial(TrialSpec("coolchic-v1", "x", 1e-3, "debug", "mse"), crop64, tmp_path)

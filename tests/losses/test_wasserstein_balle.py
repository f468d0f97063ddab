"""Ballé et al.'s Wasserstein distortion against values their reference code computed (numbers in
``data/wasserstein_balle/golden.json``, with their source), as a loss term and as a metric."""

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from losses import build_loss, networks, wasserstein_balle
from study.data.imageio import load_rgb
from study.results.metrics import wd_distance

DATA = Path(__file__).parent / "data" / "wasserstein_balle"
GOLDEN = json.loads((DATA / "golden.json").read_text())

pytestmark = pytest.mark.skipif(
    networks.vgg16_unavailable("relu5_3") is not None,
    reason="needs VGG-16's ImageNet weights through relu5_3 (make test fetches them)",
)


@pytest.fixture(scope="module")
def pairs(kodak_records) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(distorted, original) of each golden pair; the original cut from Kodak here."""
    paths = {Path(r.path).stem: Path(r.path) for r in kodak_records}
    found = {}
    for name, pair in GOLDEN["pairs"].items():
        source = paths[pair["kodak"]]
        assert hashlib.sha256(source.read_bytes()).hexdigest() == pair["source_sha256"]
        left, top, right, bottom = pair["crop_box_left_top_right_bottom"]
        original = load_rgb(source)[top:bottom, left:right]
        distorted_file = DATA / pair["distorted_png"]
        digest = hashlib.sha256(distorted_file.read_bytes()).hexdigest()
        assert digest == pair["distorted_png_sha256"]
        found[name] = (load_rgb(distorted_file), original)
    return found


def _tensor(rgb: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(rgb.astype(np.float64) / 255).permute(2, 0, 1)[None].to(dtype)


def _sigma(setting: dict, shape: tuple[int, int]):
    if setting["kind"] == "constant":
        return float(setting["value"])
    halves = torch.full((1, 1, *shape), float(setting["value"]["left"]), dtype=torch.float64)
    halves[..., slice(*setting["value"]["right_cols"])] = float(setting["value"]["right"])
    return halves


def _golden(case: str, log2_sigma=None) -> dict:
    [found] = [
        r
        for r in GOLDEN["results"]
        if r["case"] == case and (log2_sigma is None or r["log2_sigma"]["value"] == log2_sigma)
    ]
    return found


# The metric's σ and the top of the σ range, a σ map, an odd size (floors in every pooling),
# and an image against itself; in float64 the reference's own rounding is met to the last bits.
@pytest.mark.parametrize(
    ("case", "log2_sigma"),
    [
        ("a_kodim01_vs_jpeg", 3),
        ("a_kodim01_vs_jpeg", 6),
        ("b_kodim19_vs_jpeg", 3),
        ("c_kodim01_vs_itself", 2),
        ("d_kodim01_vs_jpeg_halves", None),
        ("e_kodim01_odd129x97_vs_jpeg", 2),
    ],
)
def test_equals_the_reference_codes_values(pairs, case, log2_sigma):
    golden = _golden(case, log2_sigma)
    distorted, original = pairs[golden["pair"]]
    if case.startswith("c_"):
        distorted = original
    x, y = _tensor(distorted, torch.float64), _tensor(original, torch.float64)
    sigma = _sigma(golden["log2_sigma"], original.shape[:2])
    value = wasserstein_balle.wasserstein_distortion(x, y, sigma)
    assert float(value) == pytest.approx(golden["float64"], rel=1e-12, abs=1e-15)


def test_each_feature_map_matches_the_reference(pairs):
    distorted, original = pairs["kodim01"]
    x, y = _tensor(distorted, torch.float64), _tensor(original, torch.float64)
    vgg = wasserstein_balle.average_pooled_vgg("cpu", torch.float64)
    maps_x = wasserstein_balle.feature_maps(x, vgg)
    maps_y = wasserstein_balle.feature_maps(y, vgg)
    sigma = torch.full((1, 1, 256, 256), 2.0, dtype=torch.float64)
    found = [
        float(wasserstein_balle.map_distortion(a, b, sigma))
        for a, b in zip(maps_x, maps_y, strict=True)
    ]
    expected = list(GOLDEN["per_map_float64"]["values"].values())
    assert len(found) == 16  # the image, then relu1_2 … relu5_3 at three scales
    assert found == pytest.approx(expected, rel=1e-12)


def test_the_metric_is_the_float32_reference_at_log2_sigma_3(pairs):
    distorted, original = pairs["kodim01"]
    assert wasserstein_balle.LOG2_SIGMA == 3
    assert wd_distance(original, distorted) == pytest.approx(
        _golden("a_kodim01_vs_jpeg", 3)["float32"], rel=1e-6
    )
    assert wd_distance(original[:63], distorted[:63]) is None  # relu5_3 of scale 3 needs 64 px


def test_as_a_loss_term_it_trains_the_image_toward_its_target(pairs):
    distorted, original = pairs["kodim01_odd"]
    x = _tensor(distorted, torch.float32).requires_grad_(True)
    loss = build_loss("mse:1+wd:0.01")
    value = loss(x, _tensor(original, torch.float32))
    value.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert build_loss("wd").problems(63, 100) == [
        "its wd term needs a short side of at least 64 px, got 63"
    ]


def test_evaluate_reports_it(pairs, tmp_path, write_png, capsys):
    from study.cli import main

    distorted, original = pairs["kodim01"]
    paths = [str(write_png(original, "original.png")), str(write_png(distorted, "distorted.png"))]
    assert main(["evaluate", *paths]) == 0
    expected = _golden("a_kodim01_vs_jpeg", 3)["float32"]
    assert json.loads(capsys.readouterr().out)["wd"] == pytest.approx(expected, rel=1e-6)


def test_a_trial_of_a_study_that_opts_in_measures_it(crop64, tmp_path):
    from study.engine.trial import TrialSpec, run_trial

    spec = TrialSpec("jpeg", "kodim01", 40)
    assert "wd" not in run_trial(spec, crop64, tmp_path / "a", with_optional_metrics=False).metrics
    outcome = run_trial(
        spec, crop64, tmp_path / "b", with_optional_metrics=False, extra_metrics=["wd"]
    )
    decoded = load_rgb(outcome.files["decoded"])
    assert outcome.metrics["wd"] == wd_distance(crop64, decoded) > 0


def test_a_sharded_study_that_opts_in_carries_it_to_its_workers_and_imports(
    tmp_path, study_env, small_config, write_config
):
    from study.cli import main
    from study.config import parse_config
    from study.engine.tracking import study_store

    config = small_config(codecs=[{"name": "jpeg", "qualities": [30, 80]}], extra_metrics=["wd"])
    path = write_config(config)
    assert main(["shard", str(path), "-o", str(tmp_path / "parts")]) == 0
    assert main(["work", str(tmp_path / "parts" / "part-0"), "-o", str(tmp_path / "out")]) == 0
    folder = tmp_path / "study"
    assert main(["import", str(folder), str(tmp_path / "out"), "--config", str(path)]) == 0
    records = study_store(folder, parse_config(config)).records()
    assert len(records) == 4 and all(r["wd"] > 0 for r in records)
    header = (folder / "reports" / "per_image.csv").read_text().splitlines()[0]
    assert "wd" in header.split(",")

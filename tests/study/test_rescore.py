"""`inr-study rescore`: metrics a study recorded as missing, added later from the stored decoded
images, without refitting; a replaced file or image is refused before anything is written."""

import pytest
import torch
from PIL import Image

from losses import networks
from study.cli import main
from study.config import dump_config, parse_config
from study.data.imageio import image_digest
from study.engine import rescore as rescore_module
from study.engine.plan import grid_trials, image_options, load_images
from study.engine.tracking import MISSING_TAG, ImageInput, study_store
from study.engine.trial import DECODED_NAME, run_trial
from study.layout import CONFIG_FILE, REPORTS_DIR, StudyState, write_state


class MeanAbsoluteDifference(torch.nn.Module):
    """Stands in for LPIPS's AlexNet, whose weights cannot be downloaded here: a known formula."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(1))

    def forward(self, a, b):
        return (a - b).abs().mean()


def _expected(original, decoded) -> float:
    return float((torch.tensor(original / 127.5) - torch.tensor(decoded / 127.5)).abs().mean())


@pytest.fixture
def finished_study(tmp_path, study_env, small_config):
    """A study as the engine leaves it (MLflow runs, decoded images), LPIPS missing: two JPEG
    qualities on two 192-px Kodak crops, run through the plain trial function."""
    config = parse_config(
        small_config(
            images={"dataset": "kodak", "subset": ["kodim01", "kodim23"], "crop": 192},
            codecs=[{"name": "jpeg", "qualities": [30, 80]}],
        )
    )
    folder = tmp_path / "study"
    folder.mkdir()
    (folder / CONFIG_FILE).write_text(dump_config(config))
    store = study_store(folder, config)
    parent = store.open_parent(None, config.name, {}, {})
    write_state(folder, StudyState(parent_run_id=parent, experiment=config.name))
    images = load_images(config)
    variant = image_options(config).label()
    for spec in grid_trials(config, list(images)):
        pixels = images[spec.image]
        image = ImageInput(spec.image, variant, image_digest(pixels), "kodak")
        run_id = store.start_trial(spec, parent, {}, image)
        outcome = run_trial(
            spec, pixels, tmp_path / "trials" / spec.key, with_optional_metrics=False
        )
        store.finish_trial(run_id, outcome)
    return folder, config


def _runs(folder, config):
    return study_store(folder, config).finished_runs()


def test_missing_lpips_is_added_from_the_decoded_images(finished_study, monkeypatch, capsys):
    folder, config = finished_study
    before = _runs(folder, config)
    assert all(run.data.tags[MISSING_TAG] == "lpips" for run in before)
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: MeanAbsoluteDifference())

    assert main(["rescore", str(folder)]) == 0
    assert "rescored 4 trials: 4 metric values written" in capsys.readouterr().out

    images = load_images(config)
    store = study_store(folder, config)
    for run in _runs(folder, config):
        assert MISSING_TAG not in run.data.tags
        decoded = rescore_module.load_rgb(
            store.artifact({"run_id": run.info.run_id}, DECODED_NAME, folder)
        )
        original = images[run.data.params["image"]]
        assert run.data.metrics["lpips"] == pytest.approx(_expected(original, decoded), rel=1e-5)
        assert run.data.metrics["psnr"] == next(
            r.data.metrics["psnr"] for r in before if r.info.run_id == run.info.run_id
        )
    csv = (folder / REPORTS_DIR / "per_image.csv").read_text().splitlines()
    lpips_column = csv[0].split(",").index("lpips")
    assert all(row.split(",")[lpips_column] for row in csv[1:])

    # Nothing is missing any more: a second rescore has nothing to do.
    assert main(["rescore", str(folder), "--no-report"]) == 0
    assert "rescored 0 trials" in capsys.readouterr().out


def test_without_the_weights_nothing_is_written(finished_study, monkeypatch, capsys):
    folder, config = finished_study
    monkeypatch.setenv(networks.DISABLE_ENV, "1")
    networks.forget_loaded()
    try:
        assert main(["rescore", str(folder)]) == 2
    finally:
        networks.forget_loaded()
    error = capsys.readouterr().err
    assert "cannot be computed on this machine, nothing was written: LPIPS: disabled by" in error
    assert all(run.data.tags[MISSING_TAG] == "lpips" for run in _runs(folder, config))


def test_asked_metrics_are_recomputed_and_the_missing_ones_stay_missing(finished_study, capsys):
    folder, config = finished_study
    before = {run.info.run_id: run.data.metrics["psnr"] for run in _runs(folder, config)}
    assert main(["rescore", str(folder), "--metrics", "psnr", "--no-report"]) == 0
    assert "rescored 4 trials: 4 metric values written" in capsys.readouterr().out
    for run in _runs(folder, config):
        assert run.data.metrics["psnr"] == before[run.info.run_id]
        assert run.data.tags[MISSING_TAG] == "lpips"  # not asked for: still missing


def test_a_missing_decoded_image_is_named(finished_study, monkeypatch, capsys):
    folder, config = finished_study
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: MeanAbsoluteDifference())
    victim = _runs(folder, config)[0]
    study_store(folder, config).artifact(
        {"run_id": victim.info.run_id}, DECODED_NAME, folder
    ).unlink()
    assert main(["rescore", str(folder)]) == 2
    error = capsys.readouterr().err
    assert f"run {victim.info.run_id}" in error and "decoded.png cannot be read" in error


def test_a_replaced_decoded_image_is_refused(finished_study, monkeypatch, capsys):
    folder, config = finished_study
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: MeanAbsoluteDifference())
    victim = _runs(folder, config)[0]
    store = study_store(folder, config)
    path = store.artifact({"run_id": victim.info.run_id}, DECODED_NAME, folder)
    Image.open(path).rotate(180).save(path)

    assert main(["rescore", str(folder)]) == 2
    error = capsys.readouterr().err
    assert f"run {victim.info.run_id}" in error and "not the image the trial decoded" in error
    assert all("lpips" not in run.data.metrics for run in _runs(folder, config))


def test_other_images_than_the_study_ran_on_are_refused(finished_study, monkeypatch, capsys):
    folder, config = finished_study
    monkeypatch.setattr(networks, "_lpips_or_reason", lambda net: MeanAbsoluteDifference())
    moved = config.model_copy(
        update={"images": config.images.model_copy(update={"crop_anchor": "top-left"})}
    )
    (folder / CONFIG_FILE).write_text(dump_config(moved))

    assert main(["rescore", str(folder)]) == 2
    assert "is not the image this trial was fitted on" in capsys.readouterr().err


def test_only_quality_metrics_can_be_recomputed(finished_study, capsys):
    folder, _ = finished_study
    assert main(["rescore", str(folder), "--metrics", "psnr,bpp"]) == 2
    assert "cannot recompute bpp" in capsys.readouterr().err


@pytest.mark.skipif(
    networks.vgg16_unavailable("relu5_3") is not None,
    reason="needs VGG-16's ImageNet weights through relu5_3 (make test fetches them)",
)
def test_an_opt_in_metric_asked_for_is_added_and_kept_for_later_trials(finished_study, capsys):
    from study.layout import load_study_config
    from study.results.metrics import wd_distance

    folder, config = finished_study
    assert main(["rescore", str(folder), "--metrics", "wd"]) == 0
    assert "rescored 4 trials: 4 metric values written" in capsys.readouterr().out
    images, store = load_images(config), study_store(folder, config)
    for run in _runs(folder, config):
        decoded = rescore_module.load_rgb(
            store.artifact({"run_id": run.info.run_id}, DECODED_NAME, folder)
        )
        original = images[run.data.params["image"]]
        assert run.data.metrics["wd"] == pytest.approx(wd_distance(original, decoded), rel=1e-6)
    assert load_study_config(folder).extra_metrics == ["wd"]  # measured by its next trials too
    csv = (folder / REPORTS_DIR / "per_image.csv").read_text().splitlines()
    wd_column = csv[0].split(",").index("wd")
    assert all(row.split(",")[wd_column] for row in csv[1:])

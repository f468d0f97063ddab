"""Study configs are validated before anything starts, with errors that name the field."""

from pathlib import Path

import pytest
import ray

from study.config import StudyConfigError, load_config, parse_config
from study.data.imageio import ImageLoadError
from study.engine.plan import grid_trials
from study.engine.runner import Study

CONFIGS = Path(__file__).resolve().parents[2] / "study" / "configs"


def kodak_names(count: int) -> list[str]:
    return [f"kodim{i:02d}" for i in range(1, count + 1)]


def test_icip24_is_the_papers_full_design():
    config = load_config(CONFIGS / "icip24.yaml")
    trials = grid_trials(config, kodak_names(24))
    by_codec = {}
    for trial in trials:
        by_codec[trial.codec] = by_codec.get(trial.codec, 0) + 1
    # 4 λ × 5 losses × 24 images per COOL-CHIC version, 3 widths × 5 losses × 24 for NIF.
    assert by_codec["coolchic-v1"] == by_codec["coolchic-v2"] == 480
    assert by_codec["nif"] == 360
    assert {t.preset for t in trials if t.codec == "nif"} == {"paper"}
    assert {t.loss for t in trials if t.codec == "nif"} == {
        "l1",
        "mse",
        "logcosh",
        "lc_ssim(0.01)",
        "l1_ssim(0.2)",
    }
    assert len({t.key for t in trials}) == len(trials)


def test_demo_and_tune_alpha_validate():
    demo = load_config(CONFIGS / "demo.yaml")
    assert {c.preset for c in demo.codecs if c.fitted} == {"debug"}
    assert len(grid_trials(demo, ["kodim01", "kodim23"])) == 54
    search = load_config(CONFIGS / "tune-alpha.yaml").search
    assert search.targets_bpp == [0.25, 0.5, 1.0] and search.tolerance == 0.05


def base(**changes) -> dict:
    config = {
        "name": "t",
        "codecs": [{"name": "coolchic-v1", "lmbdas": [1e-3]}],
        "losses": ["mse"],
    }
    config.update(changes)
    return config


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"codecs": [{"name": "coolchic-v9", "lmbdas": [1]}]}, "codecs.0.name: unknown codec"),
        ({"codecs": [{"name": "nif", "lmbdas": [1e-3]}]}, "lmbdas does not apply to nif"),
        ({"codecs": [{"name": "nif", "configs": [31]}]}, "quote them in YAML"),
        (
            {"codecs": [{"name": "nif", "configs": ["0_32"]}]},
            "unknown configs ['0_32']",
        ),
        ({"codecs": [{"name": "coolchic-v1"}]}, "a grid study needs lmbdas"),
        (
            {"codecs": [{"name": "coolchic-v1", "lmbdas": [-1]}]},
            "λ -1.0 outside the valid range",
        ),
        (
            {"codecs": [{"name": "jpeg", "qualities": [120]}]},
            "quality 120 outside the valid range",
        ),
        ({"codecs": [{"name": "coolchic-v1", "lmbdas": [1], "preset": "x"}]}, "unknown preset"),
        ({"losses": ["mse", "l3"]}, "losses.1: loss spec 'l3': unknown component"),
        ({"images": {"crop": 8}}, "images.crop"),
        ({"resources": {"gpus": -1}}, "resources.gpus"),
        ({"device": "cuda"}, "needs resources.gpus > 0"),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
        ({"name": "a/b"}, "name: use letters"),
        ({"plugins": ["no_such_module_x"]}, "cannot import plugin"),
        ({"search": {"targets_bpp": [0.5]}}, "λ is searched"),
        (
            {"codecs": [{"name": "jpeg"}], "search": {"targets_bpp": [0.5]}},
            "the search tunes INR codecs",
        ),
        (
            {
                "codecs": [{"name": "nif"}],
                "images": {"crop": 64},
                "search": {"targets_bpp": [1], "metric": "ms_ssim_db"},
            },
            "needs images.crop >= 161",
        ),
    ],
)
def test_invalid_configs_name_the_field(changes, expected):
    with pytest.raises(StudyConfigError, match="invalid study config") as caught:
        parse_config(base(**changes), "study.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("study.yaml:")


def test_unreadable_files_are_reported(tmp_path):
    with pytest.raises(StudyConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    with pytest.raises(StudyConfigError, match="not valid YAML"):
        load_config(broken)


def test_an_invalid_config_fails_before_ray_starts(tmp_path, capsys, study_env):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncodecs: [{name: nif, lmbdas: [0.001]}]\n")
    from study.cli import main

    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert "bad.yaml: invalid study config" in error and "codecs.0: lmbdas does not apply" in error
    assert not ray.is_initialized()


def test_a_bad_image_fails_before_ray_starts(tmp_path, write_png, kodim01, study_env):
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "good.png").write_bytes(write_png(kodim01[:64, :64]).read_bytes())
    (folder / "notes.png").write_text("not an image")
    config = parse_config(base(images={"dataset": str(folder)}, storage=str(tmp_path)))
    with pytest.raises(ImageLoadError, match=r"notes\.png"):
        Study(config).run()
    assert not ray.is_initialized()

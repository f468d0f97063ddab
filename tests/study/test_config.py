"""Study configs are validated before anything starts, with errors that name the field."""

from pathlib import Path

import pytest
import ray
import yaml

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


def test_icip24_extended_searches_every_inr_codec_and_loss_family():
    from study.engine.tasks import search_tasks

    codecs = {"coolchic-v1", "coolchic-v2", "nif", "c3"}
    families = {"l1", "mse", "logcosh", "lc_ssim", "l1_ssim", "ms_ssim", "mse_lpips",
                "mse_wasserstein"}  # fmt: skip
    config = load_config(CONFIGS / "icip24-extended.yaml")
    assert {entry.name for entry in config.codecs} == codecs
    assert set(config.losses) == families
    tasks = search_tasks(config)
    assert len(tasks) == len(codecs) * len(families) * 3
    # Families with α take 12 samples per task, the others one rate-matched fit per image.
    assert {task.budget(config.search) for task in tasks} == {1, 12}


def test_demo_and_tune_alpha_validate():
    demo = load_config(CONFIGS / "demo.yaml")
    assert {c.preset for c in demo.codecs if c.fitted} == {"debug"}
    assert len(grid_trials(demo, ["kodim01", "kodim23"])) == 54
    search = load_config(CONFIGS / "tune-alpha.yaml").search
    assert search.targets_bpp == [0.25, 0.5, 1.0] and search.tolerance == 0.05


def test_the_crop_studies_fit_each_codec_on_icip24_cpu_s_pixels_with_the_paper_s_losses():
    # `make crops-codecs` sets them side by side: the same crops, losses and anchors.
    v1 = load_config(CONFIGS / "icip24-cpu.yaml")
    anchors = {(c.name, tuple(c.rates)) for c in v1.codecs if not c.fitted}
    fitted = {}
    for name in ("icip24-v2-crops", "icip24-nif-crops", "icip24-c3-crops"):
        config = load_config(CONFIGS / f"{name}.yaml")
        assert config.images == v1.images and config.losses == v1.losses, name
        assert {(c.name, tuple(c.rates)) for c in config.codecs if not c.fitted} == anchors
        (codec,) = (c for c in config.codecs if c.fitted)
        fitted[codec.name] = codec.preset
    assert fitted == {"coolchic-v2": "paper", "nif": "paper", "c3": "medium"}


def base(**changes) -> dict:
    config = {
        "name": "t",
        "codecs": [{"name": "coolchic-v1", "lmbdas": [1e-3]}],
        "losses": ["mse"],
    }
    config.update(changes)
    return config


def test_the_optional_metrics_switch_reads_its_earlier_name_and_is_written_with_the_new_one(
    tmp_path,
):
    from study.config import dump_config

    assert parse_config(base()).optional_metrics
    earlier = parse_config(base(lpips=False))  # configs and published study.yaml before the rename
    assert not earlier.optional_metrics and "optional_metrics: false" in dump_config(earlier)
    assert not parse_config(base(optional_metrics=False)).optional_metrics
    with pytest.raises(StudyConfigError, match="lpips is the earlier name of optional_metrics"):
        parse_config(base(lpips=False, optional_metrics=True))
    # An override under the current name replaces a file's value under the earlier one.
    config = tmp_path / "earlier.yaml"
    config.write_text(yaml.safe_dump(base(lpips=True)))
    assert not load_config(config, {"optional_metrics": False}).optional_metrics


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
        ({"extra_metrics": ["lpips"]}, "not an opt-in metric: lpips; opt-in metrics: wd"),
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
        # Empty lists would run nothing, or fail every trial.
        ({"losses": []}, "losses: empty list: give at least one value, or leave the key out"),
        ({"seeds": []}, "seeds: empty list"),
        ({"seeds": [-1]}, "seeds.0: Input should be greater than or equal to 0"),
        ({"codecs": [{"name": "coolchic-v1", "lmbdas": []}]}, "codecs.0: lmbdas: empty list"),
        (
            {"codecs": [{"name": "nif", "configs": ["0_31"], "losses": []}]},
            "codecs.0.losses: empty list",
        ),
        (
            {
                "codecs": [{"name": "nif", "configs": []}],
                "losses": ["lc_ssim(0.01)"],
                "search": {"targets_bpp": [0.5]},
            },
            "codecs.0: configs: empty list: give at least one width",
        ),
        ({"images": {"subset": []}}, "images.subset: empty list"),
        ({"images": {"subset": 0}}, "images.subset: expected a count >= 1 (the first N images)"),
        ({"images": {"subset": ["kodim01", "kodim01"]}}, "images named more than once: kodim01"),
        ({"images": {"subset": [1, 8]}}, "quote names that YAML would read as numbers"),
        # One curve per codec and loss: a second entry of a codec must not draw one of its curves.
        (
            {
                "codecs": [
                    {"name": "coolchic-v1", "preset": "debug", "lmbdas": [1e-3]},
                    {"name": "coolchic-v1", "preset": "paper", "lmbdas": [1e-3]},
                ]
            },
            "codecs.1: codecs.0 has coolchic-v1 with mse already, and the study would pool both "
            "entries' fits as one curve; study preset paper in a study of its own",
        ),
        (
            {"codecs": [{"name": "jpeg", "qualities": [30]}, {"name": "jpeg", "qualities": [80]}]},
            "codecs.0 has jpeg already, and the study would pool both entries' fits as one "
            "curve; list all its rate values in one entry",
        ),
    ],
)
def test_invalid_configs_name_the_field(changes, expected):
    with pytest.raises(StudyConfigError, match="invalid study config") as caught:
        parse_config(base(**changes), "study.yaml")
    assert expected in str(caught.value)
    assert str(caught.value).startswith("study.yaml: invalid study config: ")
    assert "\n" not in str(caught.value)  # one problem, one line


def test_several_problems_are_listed_one_per_line():
    with pytest.raises(StudyConfigError) as caught:
        parse_config(base(losses=[], seeds=[]), "study.yaml")
    assert str(caught.value).splitlines() == [
        "study.yaml: invalid study config (2 problems)",
        "  losses: empty list: give at least one value, or leave the key out for its default",
        "  seeds: empty list: give at least one value, or leave the key out for its default",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "no such file"),
        (b"name: t\xff\n", "not UTF-8 text (byte 0xff at offset 7); save it as UTF-8"),
        (
            b"\x7fELF\x02\x01\x01\x00\x00",
            "has NUL bytes (a binary file or UTF-16?), not UTF-8 YAML",
        ),
        (
            b"name: [unclosed\n",
            "not valid YAML (expected ',' or ']', but got '<stream end>' at line 2, column 1)",
        ),
        (b"a: " + b"[" * 100_000 + b"]" * 100_000, "not valid YAML (nested too deeply)"),
        (b"[1, 2]", "expected a YAML mapping at the top level"),
    ],
)
def test_unreadable_files_are_reported(tmp_path, content, expected):
    path = tmp_path / "study.yaml"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(StudyConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}: {expected}"


def test_directories_loops_and_endless_files_are_reported(tmp_path):
    with pytest.raises(StudyConfigError, match=r": is a directory, not a study YAML file$"):
        load_config(tmp_path)
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    with pytest.raises(StudyConfigError, match=r"loop\.yaml: symlink loop$"):
        load_config(tmp_path / "loop.yaml")
    with pytest.raises(StudyConfigError, match=r"/dev/zero: larger than 4 MiB; a study config is"):
        load_config(Path("/dev/zero"))


def test_utf8_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_bytes(
        "\ufeffname: t\nstorage: résultats\ncodecs: [{name: jpeg, qualities: [50]}]\n".encode()
    )
    assert load_config(path).storage == Path("résultats")


def test_an_invalid_config_fails_before_ray_starts(tmp_path, capsys, study_env):
    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ncodecs: [{name: nif, lmbdas: [0.001]}]\n")
    from study.cli import main

    assert main(["run", str(path)]) == 2
    error = capsys.readouterr().err
    assert error == (
        f"inr-study run: error: {path}: invalid study config: codecs.0: lmbdas does not apply to "
        "nif (it takes configs)\n"
    )
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


def test_a_codec_may_be_listed_twice_for_other_losses():
    config = parse_config(base(codecs=[
        {"name": "coolchic-v1", "lmbdas": [1e-3], "losses": ["mse"]},
        {"name": "coolchic-v1", "lmbdas": [4e-3], "losses": ["l1"]},
    ]))  # fmt: skip
    assert [config.losses_for(entry) for entry in config.codecs] == [["mse"], ["l1"]]


def test_one_loss_has_one_name_so_one_fit_has_one_key():
    # A grid's losses under their full names, whatever the spelling; a search's as families.
    spellings = [base(losses=["lc_ssim"]), base(losses=["LC_SSIM(0.010)"]),
                 base(losses=["lc_ssim(0.01)"])]  # fmt: skip
    keys = [{t.key for t in grid_trials(parse_config(c), ["kodim01"])} for c in spellings]
    assert keys[0] == keys[1] == keys[2] and len(keys[0]) == 1
    per_codec = base(codecs=[{"name": "coolchic-v1", "lmbdas": [1e-3], "losses": ["l1_ssim"]}])
    assert parse_config(per_codec).codecs[0].losses == ["l1_ssim(0.2)"]
    with pytest.raises(StudyConfigError, match=r"'lc_ssim' and 'lc_ssim\(0.01\)' name the same"):
        parse_config(base(losses=["lc_ssim", "lc_ssim(0.01)"]))
    search = base(codecs=[{"name": "coolchic-v1"}], losses=["lc_ssim(0.03)", "mse"],
                  search={"targets_bpp": [0.5]})  # fmt: skip
    assert parse_config(search).losses == ["lc_ssim", "mse"]

"""Hostile study configs: ``inr-study run`` refuses each in one line, before Ray starts.

``--validate-only`` checks the dataset, the subset, each image's header and the crop without
decoding pixels; a plain ``run`` reports the same problems with the same words.
"""

from pathlib import Path

import pytest
import ray
from PIL import Image, ImageFile

from study.cli import main
from tests.study.test_imageio import write_png_claiming


@pytest.fixture
def folder(tmp_path, crop64):
    """A folder dataset of two 64x64 images, a and b."""
    path = tmp_path / "images"
    path.mkdir()
    for name in "ab":
        Image.fromarray(crop64).save(path / f"{name}.png")
    return path


@pytest.fixture
def no_pretrained_weights(monkeypatch):
    """A machine without LPIPS or VGG weights, whatever this one has cached."""
    from losses import networks

    monkeypatch.setenv(networks.DISABLE_ENV, "1")
    networks.forget_loaded()
    yield
    networks.forget_loaded()


def run_refused(argv: list[str], capsys) -> str:
    """The one line ``inr-study run`` printed on refusing, without the command's prefix."""
    assert main(["run", *argv]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and not ray.is_initialized()
    (line,) = err.strip().splitlines()
    assert line.startswith("inr-study run: error: ")
    return line.removeprefix("inr-study run: error: ")


@pytest.mark.parametrize(
    ("images", "expected"),
    [
        (
            {"dataset": "nowhere"},
            "images: unknown dataset 'nowhere': neither 'kodak' nor an existing folder of images",
        ),
        (
            {"dataset": "kodak", "subset": ["kodim01", "kodim99"]},
            "images: unknown images kodim99; this dataset has kodim01, kodim02, kodim03",
        ),
        (
            {"dataset": "kodak", "subset": 25},
            "images: image subset 25: this dataset has 24 images, so give 1 to 24 or their names",
        ),
        ({"dataset": "kodak", "subset": []}, "invalid study config: images.subset: empty list"),
        (
            {"dataset": "kodak", "subset": ["kodim01"], "crop": 600},
            "images: {cache}/kodak/kodim01.png: image is 768x512, too small for the 600x600 crop",
        ),
    ],
)
@pytest.mark.parametrize("validate_only", [True, False], ids=["validate-only", "run"])
def test_bad_images_sections_are_refused_before_ray(
    images, expected, validate_only, small_config, write_config, capsys, study_env
):
    path = write_config(small_config(images=images))
    argv = [str(path), "--validate-only"] if validate_only else [str(path)]
    message = run_refused(argv, capsys)
    assert message.startswith(f"{path}: " + expected.format(cache=study_env["INR_STUDY_CACHE"]))


@pytest.mark.parametrize("validate_only", [True, False], ids=["validate-only", "run"])
@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"losses": ["ms_ssim"]},
            "codecs.0 (coolchic-v1) loss 'ms_ssim' on kodim01 (64x64): its ms_ssim term needs a "
            "short side of at least 161 px, got 64",
        ),
        (
            {
                "images": {"dataset": "kodak", "subset": ["kodim01"], "crop": 256},
                "codecs": [{"name": "nif", "configs": ["0_31"], "losses": ["ms_ssim"]}],
            },
            "codecs.0 (nif) loss 'ms_ssim' on kodim01 (256x256): its ms_ssim term needs a short "
            "side of at least 161 px, got 128 per polyphase sub-image",
        ),
        (
            {"losses": ["mse_wasserstein"]},
            # Named as the study names it: its full name, α included.
            "codecs.0 (coolchic-v1) loss 'mse_wasserstein(0.02)' on kodim01 (64x64): its "
            "wasserstein term cannot be computed on this machine: disabled by INR_STUDY_NO_LPIPS",
        ),
    ],
)
def test_losses_that_cannot_train_on_the_images_are_refused_before_ray(
    changes, expected, validate_only, small_config, write_config, capsys, no_pretrained_weights
):
    path = write_config(small_config(**changes))
    argv = [str(path), "--validate-only"] if validate_only else [str(path)]
    assert run_refused(argv, capsys) == f"{path}: {expected}"


@pytest.mark.parametrize("validate_only", [True, False], ids=["validate-only", "run"])
@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("codec=nif", "--where codec=nif matches no trial of the study; its codec values: "
                      "coolchic-v1, jpeg"),
        ("colour=red", "--where colour=...: a trial has no field 'colour'; give one of codec, "),
        ("codec=jpeg,loss=mse", "--where codec=jpeg,loss=mse: no trial of the study has all of "
                                "these at once"),
    ],
)  # fmt: skip
def test_a_where_that_picks_nothing_is_refused_before_ray(
    where, expected, validate_only, small_config, write_config, capsys, study_env
):
    path = write_config(small_config())
    argv = [str(path), "--where", where, *(["--validate-only"] if validate_only else [])]
    assert run_refused(argv, capsys).startswith(expected)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"losses": []}, "losses: empty list: give at least one value"),
        ({"seeds": []}, "seeds: empty list: give at least one value"),
        (
            {"codecs": [{"name": "coolchic-v1", "lmbdas": [1e-3], "losses": []}]},
            "codecs.0.losses: empty list: give at least one value",
        ),
        ({"codecs": [{"name": "coolchic-v1", "lmbdas": []}]}, "codecs.0: lmbdas: empty list"),
    ],
)
def test_empty_lists_are_refused(changes, expected, small_config, write_config, capsys):
    path = write_config(small_config(**changes))
    message = run_refused([str(path), "--validate-only"], capsys)
    assert message.startswith(f"{path}: invalid study config: {expected}")


@pytest.mark.parametrize("validate_only", [True, False], ids=["validate-only", "run"])
@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        (
            "bomb.png",
            lambda path: write_png_claiming(path, 60000, 60000),
            "image is 60000x60000 (3,600,000,000 pixels), over the cap of 67,108,864 pixels",
        ),
        (
            "moving.webp",
            lambda path: Image.new("RGB", (32, 32)).save(
                path, save_all=True, append_images=[Image.new("RGB", (32, 32), "red")]
            ),
            "has 2 frames; inr-study codes still images: extract the frame you want",
        ),
        ("folder.png", lambda path: path.mkdir(), "is a directory, not an image file"),
        ("loop.png", lambda path: path.symlink_to(path.name), "symlink loop"),
    ],
)
def test_bad_image_files_are_refused_before_ray(
    folder, name, write, expected, validate_only, small_config, write_config, capsys
):
    write(folder / name)
    path = write_config(small_config(images={"dataset": str(folder)}))
    argv = [str(path), "--validate-only"] if validate_only else [str(path)]
    assert run_refused(argv, capsys).startswith(f"{folder / name}: {expected}")


def test_a_folder_subset_larger_than_the_folder_is_refused(
    folder, small_config, write_config, capsys
):
    path = write_config(small_config(images={"dataset": str(folder), "subset": 3}))
    assert run_refused([str(path), "--validate-only"], capsys) == (
        f"{path}: images: image subset 3: this dataset has 2 images, so give 1 to 2 or their names"
    )


@pytest.mark.parametrize(
    ("write", "expected"),
    [
        (
            lambda path: path.write_bytes(b"name: t\xff\n"),
            "not UTF-8 text (byte 0xff at offset 7); save it as UTF-8",
        ),
        (lambda path: path.mkdir(), "is a directory, not a study YAML file"),
    ],
)
def test_unreadable_config_files_are_refused(tmp_path, write, expected, capsys):
    path = tmp_path / "study.yaml"
    write(path)
    assert run_refused([str(path), "--validate-only"], capsys) == f"{path}: {expected}"


def test_validate_only_reads_headers_of_the_named_kodak_images_only(
    small_config, write_config, capsys, study_env, monkeypatch
):
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded pixels"))
    path = write_config(small_config())  # kodim01 and kodim23
    assert main(["run", str(path), "--validate-only"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{path}: valid (2 images)\n"
    assert captured.err == ""  # no progress bar
    fetched = sorted(p.name for p in Path(study_env["INR_STUDY_CACHE"]).rglob("*.png"))
    assert fetched == ["kodim01.png", "kodim23.png"]
    assert not ray.is_initialized()


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (b'{"parent_run_id": "ab', "not readable as the study's state (Unterminated string"),
        (b"\xff", "not readable as the study's state ('utf-8' codec can't decode byte 0xff"),
        (b'["ab"]', "expected a JSON object with some of parent_run_id, tracking_uri, experiment"),
        (b'{"parent": "ab"}', "expected a JSON object with some of parent_run_id, tracking_uri"),
        (b'{"parent_run_id": 3, "experiment": "x"}', "parent_run_id must be text or null"),
        (b"[" * 100_000, "nested too deeply to be the study's state"),
    ],
    ids=["truncated", "not-utf8", "not-an-object", "unknown-key", "not-text", "nested"],
)
def test_a_damaged_study_state_is_refused_naming_it(
    tmp_path, small_config, write_config, state, expected, capsys
):
    from study.config import dump_config, load_config

    folder = tmp_path / "studies" / "small"
    folder.mkdir(parents=True)
    (folder / "study.yaml").write_text(dump_config(load_config(write_config(small_config()))))
    (folder / "study.json").write_bytes(state)
    for command in (["report", str(folder)], ["resume", str(folder)]):
        assert main(command) == 2
        error = capsys.readouterr().err
        assert f"error: {folder / 'study.json'}: {expected}" in error, error

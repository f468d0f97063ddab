import argparse
import os

import numpy as np
import pytest
from PIL import Image

from study.commands.cliargs import add_dataset_arguments, dataset_from_arguments
from study.data import datasets
from study.data.datasets import (
    DatasetError,
    ImageOptions,
    ImageRecord,
    crop,
    image_folder,
    kodak,
    load_image,
    resolve_dataset,
    select,
)
from study.data.imageio import load_rgb
from tests.study.test_imageio import unprivileged, write_png_claiming


def test_kodak_mirror_is_copied_and_verified(kodak_records):
    assert [r.name for r in kodak_records] == [f"kodim{i:02d}" for i in range(1, 25)]
    assert all(r.path.is_file() for r in kodak_records)
    assert load_rgb(kodak_records[0].path).shape == (512, 768, 3)


def test_reencoded_mirror_is_accepted_by_pixel_hash(kodak_records, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    from PIL import Image

    for record in kodak_records:
        Image.open(record.path).save(mirror / record.path.name, compress_level=1)
    assert (mirror / "kodim01.png").read_bytes() != kodak_records[0].path.read_bytes()
    assert len(kodak(cache_dir=tmp_path / "cache", mirror=mirror, progress=False)) == 24


def test_corrupt_mirror_copy_is_rejected(kodak_records, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for record in kodak_records:
        (mirror / record.path.name).write_bytes(record.path.read_bytes())
    image = load_rgb(mirror / "kodim05.png").copy()
    image[0, 0] ^= 1
    from PIL import Image

    Image.fromarray(image).save(mirror / "kodim05.png")
    with pytest.raises(DatasetError, match=r"kodim05\.png: checksum mismatch.*Check the mirror"):
        kodak(cache_dir=tmp_path / "cache", mirror=mirror, progress=False)


def test_mirror_missing_a_file_says_which(tmp_path):
    with pytest.raises(DatasetError, match=r"Kodak mirror .*: kodim01\.png is missing"):
        kodak(cache_dir=tmp_path / "cache", mirror=tmp_path, progress=False)


def test_failed_download_explains_how_to_use_a_mirror(tmp_path, monkeypatch):
    monkeypatch.delenv(datasets.KODAK_MIRROR_ENV, raising=False)
    monkeypatch.setattr(datasets, "KODAK_URL", "http://127.0.0.1:9/{name}")
    with pytest.raises(
        DatasetError, match=r"could not download .*kodim01\.png.*--kodak-mirror DIR"
    ):
        kodak(cache_dir=tmp_path, progress=False)
    assert not list(tmp_path.glob("kodak/*.part"))


def test_mirror_from_environment(kodak_records, tmp_path, monkeypatch):
    monkeypatch.setenv(datasets.KODAK_MIRROR_ENV, str(kodak_records[0].path.parent))
    assert len(resolve_dataset("kodak", cache_dir=tmp_path)) == 24


def test_folder_dataset_and_subsets(crop64, write_png, tmp_path):
    for name in ("b", "a", "c"):
        write_png(crop64, f"{name}.png")
    (tmp_path / "readme.txt").write_text("ignored")
    records = image_folder(tmp_path)
    assert [r.name for r in records] == ["a", "b", "c"]
    assert [r.name for r in select(records, 2)] == ["a", "b"]
    assert [r.name for r in select(records, ["c", "a"])] == ["c", "a"]
    with pytest.raises(DatasetError, match=r"unknown images z; this dataset has a, b, c$"):
        select(records, ["z"])
    with pytest.raises(
        DatasetError,
        match=r"unknown dataset 'nowhere': neither 'kodak' nor an existing folder of images$",
    ):
        resolve_dataset("nowhere")


def test_a_folder_lists_jpeg_xl_and_avif_images_too(crop64, tmp_path):
    Image.fromarray(crop64).save(tmp_path / "lossless.jxl", lossless=True)
    Image.fromarray(crop64).save(tmp_path / "lossy.avif", quality=90)
    records = image_folder(tmp_path)
    assert [r.name for r in records] == ["lossless", "lossy"]
    np.testing.assert_array_equal(load_rgb(records[0].path), crop64)
    assert load_rgb(records[1].path).shape == crop64.shape


@pytest.mark.parametrize(
    ("subset", "expected"),
    [
        (4, r"image subset 4: this dataset has 3 images, so give 1 to 3 or their names$"),
        (0, r"image subset 0: this dataset has 3 images"),
        ([], r"empty image subset: name at least one image, or leave it out for all$"),
        (["a", "b", "a"], r"images named more than once: a$"),
    ],
)
def test_bad_subsets_are_errors(tmp_path, subset, expected):
    records = [ImageRecord(name, tmp_path / f"{name}.png") for name in "abc"]
    with pytest.raises(DatasetError, match=expected):
        select(records, subset)


def test_kodak_subset_fetches_only_those_and_refuses_unknown_names_first(kodak_records, tmp_path):
    mirror = kodak_records[0].path.parent
    records = resolve_dataset("kodak", mirror=mirror, cache_dir=tmp_path, subset=2)
    assert [r.name for r in records] == ["kodim01", "kodim02"]
    assert sorted(p.name for p in (tmp_path / "kodak").iterdir()) == ["kodim01.png", "kodim02.png"]
    with pytest.raises(DatasetError, match=r"unknown images kodim99; this dataset has kodim01, "):
        resolve_dataset(
            "kodak", mirror=mirror, cache_dir=tmp_path / "other", subset=["kodim03", "kodim99"]
        )
    assert not list((tmp_path / "other").rglob("*.png"))  # refused before fetching anything


def test_bad_dataset_folders_are_errors(tmp_path, crop64, write_png):
    path = write_png(crop64)
    with pytest.raises(DatasetError, match=r"image\.png: not a folder of images$"):
        resolve_dataset(str(path))
    (tmp_path / "loop").symlink_to("loop")
    with pytest.raises(DatasetError, match=r"loop: symlink loop$"):
        resolve_dataset(str(tmp_path / "loop"))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    with unprivileged(), pytest.raises(DatasetError, match=r"locked: cannot read \(Permission"):
        image_folder(locked)


def test_crop_larger_than_the_image_names_both(crop64, write_png):
    record = ImageRecord("strip", write_png(crop64[:40], "strip.png"))
    assert load_image(record, ImageOptions(crop=40)).shape == (40, 40, 3)
    with pytest.raises(DatasetError) as caught:
        load_image(record, ImageOptions(crop=48))
    assert str(caught.value) == f"{record.path}: image is 64x40, too small for the 48x48 crop"


def test_bomb_in_the_kodak_mirror_is_a_checksum_mismatch(kodak_records, tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for record in kodak_records:
        os.symlink(record.path, mirror / record.path.name)
    (mirror / "kodim05.png").unlink()
    write_png_claiming(mirror / "kodim05.png", 60000, 60000)
    with pytest.raises(DatasetError, match=r"kodim05\.png: checksum mismatch"):
        kodak(cache_dir=tmp_path / "cache", mirror=mirror, progress=False, only=["kodim05"])


def test_crop_anchors(kodim01):
    assert crop(kodim01, 256).shape == (256, 256, 3)
    np.testing.assert_array_equal(crop(kodim01, (10, 20), "top-left"), kodim01[:10, :20])
    np.testing.assert_array_equal(crop(kodim01, 16, "bottom-right"), kodim01[-16:, -16:])
    np.testing.assert_array_equal(crop(kodim01, 16, "center"), kodim01[248:264, 376:392])
    with pytest.raises(ValueError, match=r"crop 600x600 does not fit in a 512x768 image"):
        crop(kodim01, 600)


def test_command_line_crop_and_image_subset_are_checked(kodak_records, tmp_path, capsys):
    parser = argparse.ArgumentParser(prog="tool")
    add_dataset_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--crop", "8"])
    assert "argument --crop: expected a whole number >= 16, got '8'" in capsys.readouterr().err
    kodak_options = [
        "--kodak-mirror",
        str(kodak_records[0].path.parent),
        "--cache-dir",
        str(tmp_path),
    ]
    args = parser.parse_args([*kodak_options, "--images", "kodim02, kodim01"])
    assert [r.name for r in dataset_from_arguments(args)] == ["kodim02", "kodim01"]
    assert sorted(p.name for p in (tmp_path / "kodak").iterdir()) == ["kodim01.png", "kodim02.png"]
    with pytest.raises(DatasetError, match=r"empty image subset"):
        dataset_from_arguments(parser.parse_args([*kodak_options, "--images", ","]))

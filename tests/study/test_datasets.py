import numpy as np
import pytest

from study.data import datasets
from study.data.datasets import DatasetError, crop, image_folder, kodak, resolve_dataset, select
from study.data.imageio import load_rgb


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
    with pytest.raises(DatasetError, match=r"unknown images z; this dataset has a, b, c"):
        select(records, ["z"])
    with pytest.raises(DatasetError, match=r"unknown dataset 'nowhere'"):
        resolve_dataset("nowhere")


def test_crop_anchors(kodim01):
    assert crop(kodim01, 256).shape == (256, 256, 3)
    np.testing.assert_array_equal(crop(kodim01, (10, 20), "top-left"), kodim01[:10, :20])
    np.testing.assert_array_equal(crop(kodim01, 16, "bottom-right"), kodim01[-16:, -16:])
    np.testing.assert_array_equal(crop(kodim01, 16, "center"), kodim01[248:264, 376:392])
    with pytest.raises(ValueError, match=r"crop 600x600 does not fit in a 512x768 image"):
        crop(kodim01, 600)

import csv
import json

import pytest

from inr_models import get_codec_class
from study.commands import baselines
from study.engine.baselines import setting_for_target_bpp


@pytest.fixture
def run(kodak_records, tmp_path):
    def run_baselines(*extra: str):
        out = tmp_path / "out"
        argv = [
            "--kodak-mirror", str(kodak_records[0].path.parent), "--cache-dir", str(tmp_path / "c"),
            "--images", "kodim01,kodim08", "--crop", "192", "--workers", "1",
            "-o", str(out), *extra,
        ]  # fmt: skip
        assert baselines.main(argv) == 0
        return out

    return run_baselines


def test_sweep_and_targets_write_rows_and_compressai_json(run):
    out = run("--codecs", "jpeg,webp", "--settings", "20,60", "--target-bpp", "0.8")
    rows = list(csv.DictReader((out / "per_image.csv").open()))
    assert len(rows) == 2 * 2 * (2 + 1)  # codecs × images × (qualities + targets)
    for row in rows:
        assert float(row["bpp"]) == pytest.approx(8 * int(row["bytes"]) / 192**2)
        assert 0 < float(row["lpips"]) < 1  # LPIPS by default
    targets = [r for r in rows if r["mode"] == "target"]
    assert all(float(r["bpp"]) <= 0.8 for r in targets)

    sweep = json.loads((out / "jpeg.json").read_text())
    assert sweep["name"] == "jpeg"
    assert sweep["results"]["quality"] == [20, 60]
    for key in ("bpp", "psnr-rgb", "ms-ssim-rgb", "msssim-db-rgb", "ssim-rgb", "lpips"):
        assert len(sweep["results"][key]) == 2
    lpips_q20, lpips_q60 = sweep["results"]["lpips"]
    assert lpips_q20 > lpips_q60  # lower quality, larger distance
    jpeg_q20 = [float(r["psnr"]) for r in rows if r["codec"] == "jpeg" and r["rate"] == "20"]
    assert {r["rate_parameter"] for r in rows} == {"quality"}
    assert sweep["results"]["psnr-rgb"][0] == pytest.approx(sum(jpeg_q20) / 2)
    target = json.loads((out / "webp-target-bpp.json").read_text())
    assert target["results"]["target_bpp"] == [0.8]


def test_target_search_picks_the_highest_quality_under_the_rate(crop256):
    jpeg = get_codec_class("jpeg")
    quality = setting_for_target_bpp(jpeg, crop256, 1.0)
    assert jpeg(quality).encode(crop256).bpp(256, 256) <= 1.0
    assert jpeg(quality + 1).encode(crop256).bpp(256, 256) > 1.0
    assert setting_for_target_bpp(jpeg, crop256, 0.001) is None


def test_target_search_follows_the_declared_direction_of_the_axis(crop64):
    from inr_models.base import Codec, Encoded, RateAxis

    class Coarser(Codec):
        """Files shrink as the setting grows (a λ-like axis): 2000 // step bytes."""

        name = "coarser"
        rate_axis = RateAxis(name="step", config_key="steps", label="step", kind=int, default=1,
                             help="", low=1, high=50, rate_increases=False)  # fmt: skip

        def __init__(self, step: int):
            self.step = step

        def encode(self, image):
            return Encoded(bytes(2000 // self.step))

        def decode(self, data):
            raise NotImplementedError

    # 0.5 bpp on 64 × 64 is 256 bytes: step 8 gives 250, step 7 gives 285.
    assert setting_for_target_bpp(Coarser, crop64, 0.5) == 8
    assert setting_for_target_bpp(Coarser, crop64, 0.01) is None  # 40 bytes at best: 0.078 bpp


def test_bad_codec_and_quality_are_refused_before_work(run):
    with pytest.raises(
        SystemExit, match=r"unknown classical codec 'bpg'; valid: avif, jpeg, jxl, webp"
    ):
        run("--codecs", "bpg")
    with pytest.raises(SystemExit, match=r"jpeg quality must lie in \[1, 95\]; got \[99\]"):
        run("--codecs", "jpeg", "--qualities", "50,99")  # the Pillow codecs' name for --settings
    with pytest.raises(SystemExit, match=r"jpeg quality must be integers"):
        run("--codecs", "jpeg", "--settings", "50,high")


def test_rgba_folder_needs_drop_alpha(crop64, tmp_path):
    from PIL import Image

    folder = tmp_path / "rgba"
    folder.mkdir()
    Image.fromarray(crop64).convert("RGBA").save(folder / "logo.png")
    argv = ["--dataset", str(folder), "--codecs", "jpeg", "--qualities", "50",
            "--no-optional-metrics", "--workers", "1", "-o", str(tmp_path / "out")]  # fmt: skip
    with pytest.raises(ValueError, match=r"logo\.png: image has an alpha channel"):
        baselines.main(argv)
    assert baselines.main([*argv, "--drop-alpha"]) == 0
    rows = list(csv.DictReader((tmp_path / "out" / "per_image.csv").open()))
    assert [r["image"] for r in rows] == ["logo"]
    assert rows[0]["lpips"] == ""  # --no-optional-metrics: missing, never a number

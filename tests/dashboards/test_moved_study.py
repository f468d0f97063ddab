"""A study folder copied elsewhere, its image folder left behind, still draws its page and
figures: the crops come from the trials' stored decoded images."""

import shutil

import pytest

from dashboards.cli import main as dashboard
from dashboards.figures import main as figures
from study.cli import main
from study.data.imageio import save_png

pytestmark = pytest.mark.slow


def test_a_moved_study_draws_without_its_image_folder(
    tmp_path, study_env, crop256, small_config, write_config, caplog
):
    images = tmp_path / "my-images"
    images.mkdir()
    save_png(images / "crop.png", crop256)
    config = small_config(codecs=[{"name": "jpeg", "qualities": [20, 60]}])
    config["images"] = {"dataset": str(images)}
    config_path = write_config(config)
    # Built without Ray: one package, run and imported.
    assert main(["shard", str(config_path), "-o", str(tmp_path / "p")]) == 0
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(tmp_path / "w")]) == 0
    study = tmp_path / "first" / "small"
    assert main(["import", str(study), str(tmp_path / "w"), "--config", str(config_path)]) == 0

    moved = shutil.move(study, tmp_path / "elsewhere")
    shutil.rmtree(images)
    page = tmp_path / "page.html"
    assert dashboard([str(moved), "-o", str(page)]) == 0
    assert page.stat().st_size > 0
    out = tmp_path / "figures"
    assert figures([str(moved), "-o", str(out)]) == 0
    assert (out / "visual_crop.png").stat().st_size > 0
    assert "no original beside the crops" in caplog.text

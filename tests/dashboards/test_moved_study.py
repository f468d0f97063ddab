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
    tmp_path, study_env, crop256, small_config, write_config, caplog, capsys
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

    # A reference that is not a CompressAI-format R-D file is refused, naming it, before a page.
    bad = tmp_path / "reference.json"
    for text, problem in (
        (None, "cannot read it (No such file or directory)"),
        (b'{"results": {"bpp": [0.5', "not JSON, so not a CompressAI-format R-D file"),
        (b'{"results": [0.5]}', 'not a CompressAI-format R-D file (no "results" object)'),
        (b'{"results": {"bpp": [0.5, "x"]}}', "results.bpp is not a list of numbers"),
        (b'{"results": {"bpp": [0.5, null]}}', "results.bpp is not a list of numbers"),
        (b"[" * 100_000, "nested too deeply to be an R-D file"),
        (b'{"results": {"bpp": [0.5, 1.0], "psnr-rgb": [30.0]}}', "lists (bpp, psnr-rgb) differ"),
    ):
        bad.unlink(missing_ok=True)
        if text is not None:
            bad.write_bytes(text)
        capsys.readouterr()
        assert main(["dashboard", str(moved), "--reference", str(bad), "-o", str(page)]) == 2
        assert f"error: {bad}: " in (error := capsys.readouterr().err) and problem in error, error

    # A published copy keeps no MLflow store: its page is refused, and no store is opened in it.
    published = tmp_path / "published"  # as `inr-study export` writes one, its reports aside
    published.mkdir()
    shutil.copy(moved / "study.yaml", published)
    (published / "trials.jsonl").write_text("")
    assert main(["dashboard", str(published), "-o", str(page)]) == 2
    assert "a published study keeps no MLflow store" in capsys.readouterr().err
    assert not (published / "mlflow.db").exists()

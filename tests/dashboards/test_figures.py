"""Static R-D figures: one PNG per plotted metric that has values, styled from the declarations."""

import numpy as np
from PIL import Image

from dashboards.data import StudyData
from dashboards.figures import _curves, draw
from dashboards.style import CLASSICAL, FAMILY_COLOURS
from losses import available_families


def _records() -> list[dict]:
    """Two losses of one INR codec and a classical codec on two images; no LPIPS."""
    records = []
    for image, offset in (("kodim01", 0.0), ("kodim23", 2.0)):
        for codec, loss, family, rates in (
            ("coolchic-v1", "mse", "mse", (1e-3, 4e-3, 2e-2)),
            ("coolchic-v1", "lc_ssim(0.01)", "lc_ssim", (1e-3, 4e-3, 2e-2)),
            ("jpeg", None, None, (30, 60, 90)),
        ):
            for step, rate in enumerate(rates):
                records.append(
                    {
                        "codec": codec, "loss": loss, "loss_family": family, "rate": rate,
                        "image": image, "seed": 0, "bpp": 0.2 + 0.3 * step,
                        "psnr": 25 + 3 * step + offset, "ms_ssim_db": 10 + 2 * step, "lpips": None,
                    }
                )  # fmt: skip
    return records


def test_one_figure_per_metric_with_values(tmp_path, capsys):
    written, skipped = draw(StudyData("toy", None, _records()), tmp_path)
    assert [p.name for p in written] == ["rd_psnr.png", "rd_ms_ssim_db.png"]
    assert set(skipped) == {"lpips"}
    for path in written:
        pixels = np.asarray(Image.open(path).convert("RGB"))
        assert pixels.shape[0] > 400 and pixels.std() > 10  # drawn, not blank


def test_curves_take_their_style_from_the_declarations():
    curves = {c["name"]: c for c in _curves(StudyData("toy", None, _records()))}
    families = available_families()
    assert curves["mse"]["style"]["color"] == FAMILY_COLOURS[families.index("mse")]
    assert curves["mse"]["style"]["linestyle"] == "-"
    assert curves["lc_ssim(0.01)"]["style"]["linestyle"] == ":"  # a structural term
    assert curves["jpeg"]["style"]["color"] == CLASSICAL.colour
    assert curves["jpeg"]["style"]["linestyle"] == CLASSICAL.dash.matplotlib
    # Points are the mean over the two images at each setting.
    assert [p["psnr"] for p in curves["mse"]["points"]] == [26, 29, 32]


def test_a_metric_missing_on_one_image_has_no_dataset_point(tmp_path):
    records = _records()
    for record in records:
        if record["image"] == "kodim23":
            record["ms_ssim_db"] = None  # e.g. a crop too small for MS-SSIM
    written, skipped = draw(StudyData("toy", None, records), tmp_path)
    assert [p.name for p in written] == ["rd_psnr.png"]
    assert set(skipped) == {"ms_ssim_db", "lpips"}


def test_a_codec_whose_curves_have_no_point_gets_an_empty_panel(tmp_path):
    records = _records()
    for record in records:
        if record["codec"] == "coolchic-v1" and record["image"] == "kodim23":
            record["psnr"] = None
    written, _ = draw(StudyData("toy", None, records), tmp_path)
    assert "rd_psnr.png" in [p.name for p in written]  # JPEG's curve still has points

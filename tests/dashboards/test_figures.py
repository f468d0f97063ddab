"""Static R-D figures: a panel per plotted metric that has values, styled from the declarations
in the paper's convention."""

import numpy as np
import pytest
from PIL import Image

from dashboards.data import StudyData
from dashboards.figures import _curves, draw
from dashboards.style import CLASSICAL, CODEC_DASHES, GROUP_SHADES


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
                        "rate_parameter": "quality" if loss is None else "lmbda",
                        "image": image, "seed": 0, "bpp": 0.2 + 0.3 * step,
                        "psnr": 25 + 3 * step + offset, "ms_ssim_db": 10 + 2 * step, "lpips": None,
                    }
                )  # fmt: skip
    return records


def test_one_figure_with_a_panel_per_metric_with_values(tmp_path):
    data = StudyData("toy", None, _records(), dataset="kodak", crop=256)
    assert data.scale() == "2 images (kodak, 256-px center crops), 1 seed"
    written, skipped = draw(data, tmp_path)
    assert [p.name for p in written] == ["rd.png"]
    assert set(skipped) == {"lpips"}
    pixels = np.asarray(Image.open(written[0]).convert("RGB"))
    assert pixels.shape[1] > 1.8 * pixels.shape[0] and pixels.std() > 10  # two panels, drawn
    log_written, _ = draw(data, tmp_path / "log", log_rate=True)
    assert not np.array_equal(np.asarray(Image.open(log_written[0]).convert("RGB")), pixels)


def test_curves_follow_the_papers_convention():
    curves = {c["label"]: c["style"] for c in _curves(StudyData("toy", None, _records()))}
    mse, mix = curves["coolchic-v1__mse"], curves["coolchic-v1__lc_ssim(0.01)"]
    assert (mse.group, mse.colour) == ("published", GROUP_SHADES["published"][0])  # green
    assert (mix.group, mix.colour) == ("structural", GROUP_SHADES["structural"][0])  # blue
    assert mix.name == "LogCosh + 0.01·(1 − SSIM)" and mse.name == "MSE"
    assert mix.marker != mse.marker  # base losses LogCosh and MSE
    assert curves["jpeg"].colour == CLASSICAL.colour and curves["jpeg"].dash == CLASSICAL.dash


def test_codecs_share_the_axes_told_apart_by_their_dash():
    from dashboards.style import curve_styles

    curves = [("coolchic-v2", "mse"), ("c3", "mse"), ("c3", "l1"), ("jpeg", None)]
    styles = curve_styles({"codec": codec, "loss": loss} for codec, loss in curves)
    v2, c3 = styles["coolchic-v2__mse"], styles["c3__mse"]
    assert v2.colour == c3.colour and v2.group == "published"  # MSE: both codecs' own loss
    assert {v2.dash, c3.dash} == set(CODEC_DASHES[:2])
    assert v2.name == "coolchic-v2 · MSE" and c3.name == "c3 · MSE"
    assert styles["c3__l1"].group == "pointwise"
    assert styles["c3__l1"].colour == GROUP_SHADES["pointwise"][0]  # red


def test_a_metric_missing_on_one_image_has_no_dataset_point(tmp_path):
    records = _records()
    for record in records:
        if record["image"] == "kodim23":
            record["ms_ssim_db"] = None  # e.g. a crop too small for MS-SSIM
    written, skipped = draw(StudyData("toy", None, records), tmp_path)
    assert [p.name for p in written] == ["rd.png"]
    assert set(skipped) == {"ms_ssim_db", "lpips"}


def test_points_are_the_mean_over_images():
    curves = {c["label"]: c for c in _curves(StudyData("toy", None, _records()))}
    assert [p["psnr"] for p in curves["coolchic-v1__mse"]["points"]] == [26, 29, 32]


def test_curves_of_a_growing_study_are_drawn_over_the_images_they_all_hold(tmp_path):
    assert StudyData("toy", None, _records()).curve_images is None  # both images everywhere
    # MSE has kodim23 at one λ of three (a study still growing): every curve is drawn over
    # kodim01 alone, MSE's whole curve included, not a point over both and two over one.
    records = [
        r for r in _records()
        if not (r["loss"] == "mse" and r["image"] == "kodim23" and r["rate"] != 1e-3)
    ]  # fmt: skip
    data = StudyData("toy", None, records, dataset="kodak", crop=256)
    assert data.curve_images == ["kodim01"]
    curves = {c["label"]: c for c in _curves(data)}
    assert [p["psnr"] for p in curves["coolchic-v1__mse"]["points"]] == [25, 28, 31]
    assert [p["psnr"] for p in curves["jpeg"]["points"]] == [25, 28, 31]  # kodim23's left out
    assert data.scale(of_curves=True) == (
        "kodim01, the one image every curve holds at every rate setting; "
        "study: 2 images (kodak, 256-px center crops), 1 seed"
    )
    assert data.image_set().names == {"kodim01"}  # what a reference curve must match
    # A second seed on kodim01 alone: kodim01 is the only image with both seeds at every setting.
    reseeded = [*_records(), *({**r, "seed": 1} for r in _records() if r["image"] == "kodim01")]
    assert StudyData("toy", None, reseeded).curve_images == ["kodim01"]
    # No image common to every curve: each curve over its own, and the caption says so.
    apart = StudyData(
        "toy", None, [r for r in _records() if (r["codec"] == "jpeg") == (r["image"] == "kodim01")]
    )
    assert apart.curve_images == []
    assert apart.scale(of_curves=True).startswith("each curve's own images (no image is common")
    curves = {c["label"]: c for c in _curves(apart)}
    assert [p["psnr"] for p in curves["jpeg"]["points"]] == [25, 28, 31]  # kodim01's
    assert [p["psnr"] for p in curves["coolchic-v1__mse"]["points"]] == [27, 30, 33]  # kodim23's
    written, _ = draw(apart, tmp_path)
    assert [p.name for p in written] == ["rd.png"]


class _DecodedImages:
    """A run store whose decoded image of a run is a flat image of the run's bpp (as grey)."""

    def artifact(self, record, name, scratch):
        path = scratch / f"{record['codec']}-{record['loss']}-{record['bpp']}.png"
        Image.fromarray(np.full((64, 96, 3), int(record["bpp"] * 100), np.uint8)).save(path)
        return path


def test_the_visual_comparison_takes_each_curves_run_nearest_the_rate(tmp_path):
    from dashboards.crops import decoded_crops
    from dashboards.figures import draw_visual

    data = StudyData("toy", _DecodedImages(), _records())
    original = np.arange(64 * 96 * 3, dtype=np.uint8).reshape(64, 96, 3)
    crops = decoded_crops(data, "kodim01", 0.45, size=16, original=original, corner=(60, 5))
    assert crops[0].caption == "original kodim01"
    assert np.array_equal(crops[0].pixels, original[48:64, 5:21])  # kept inside the image
    captions = [c.caption for c in crops[1:]]
    # Nearest 0.45: 0.5; each caption says how far from the target it is.
    assert captions[0] == "MSE: 0.500 bpp (target 0.450: +11%), PSNR 28 dB, MS-SSIM 12 dB"
    assert captions[1].startswith("LogCosh + 0.01·(1 − SSIM): 0.500 bpp (target 0.450: +11%)")
    assert captions[2].startswith("jpeg: 0.500 bpp")
    assert [c.bpp for c in crops] == [None, 0.5, 0.5, 0.5]
    assert all(c.pixels.shape == (16, 16, 3) and (c.pixels == 50).all() for c in crops[1:])
    path = draw_visual(crops, tmp_path / "visual.png", "kodim01", 0.45)
    assert np.asarray(Image.open(path).convert("RGB")).std() > 10


def test_a_live_page_s_crops_follow_the_study_and_decode_each_run_once(caplog):
    from dashboards.crops import LiveCrops
    from dashboards.data import DashboardError

    class Counted(_DecodedImages):
        decoded, broken = 0, False

        def artifact(self, record, name, scratch):
            if self.broken:
                raise OSError("artifact store unreachable")
            self.decoded += 1
            return super().artifact(record, name, scratch)

    store = Counted()
    records = [{**r, "run_id": f"run-{n}"} for n, r in enumerate(_records())]
    live = LiveCrops(None, None, 0.45, 16)
    assert live(StudyData("toy", store, [])).crops == []  # no run yet: nothing to show
    first = [r for r in records if r["codec"] == "jpeg" and r["image"] == "kodim01"]
    shown = live(StudyData("toy", store, first))
    assert [c.caption.split(":")[0] for c in shown.crops] == ["jpeg"] and store.decoded == 1
    assert live(StudyData("toy", store, first)).key == shown.key and store.decoded == 1
    grown = live(StudyData("toy", store, records))
    assert len(grown.crops) == 3 and grown.image == "kodim01" and store.decoded == 3
    # A look whose files cannot be read keeps what is shown, and says why; a page written once
    # (strict) stops instead.
    store.broken = True
    changed = [{**r, "run_id": r["run_id"] + "-again"} for r in records]
    assert live(StudyData("toy", store, changed)) is grown
    assert "decoded crops not updated: artifact store unreachable" in caplog.text
    with pytest.raises(OSError):
        LiveCrops(None, None, 0.45, 16, strict=True)(StudyData("toy", store, changed))
    # An image asked for before it has a run: the panel waits for it (strict: an error).
    store.broken = False
    waiting = LiveCrops(None, "kodim23", None, 16)
    assert waiting(StudyData("toy", store, first)).waiting
    assert len(waiting(StudyData("toy", store, records)).crops) == 3
    with pytest.raises(DashboardError, match="no grid run on image 'kodim23'"):
        LiveCrops(None, "kodim23", None, 16, strict=True)(StudyData("toy", store, first))


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "half"])
def test_a_crops_bitrate_must_be_a_positive_number(text):
    import argparse

    from dashboards.crops import bitrate

    assert bitrate("0.25") == 0.25
    with pytest.raises(argparse.ArgumentTypeError, match="above 0"):
        bitrate(text)


def test_the_crops_target_is_the_median_rate_of_the_chosen_image():
    from dashboards.crops import default_choice
    from dashboards.data import DashboardError

    records = _records()
    for record in records:
        if record["image"] == "kodim23":
            record["bpp"] *= 2
    data = StudyData("toy", None, records)
    assert default_choice(data) == ("kodim01", 0.5)
    assert default_choice(data, "kodim23") == ("kodim23", 1.0)  # not kodim01's median
    with pytest.raises(DashboardError, match="no grid run on image 'kodim99'"):
        default_choice(data, "kodim99")


def test_a_published_copy_gets_its_figures_and_seed_spread_from_its_table(tmp_path, capsys):
    from dashboards.figures import main
    from study.results.report import write_reports

    records = _records()  # seed 0; MSE refitted with seeds 1 and 2, 2 % and 4 % more bits
    for seed in (1, 2):
        records += [r | {"seed": seed, "bpp": r["bpp"] * (1 + 0.02 * seed)}
                    for r in _records() if r["loss"] == "mse"]  # fmt: skip
    folder = tmp_path / "published"
    write_reports(records, "published", folder / "reports")
    assert main([str(folder), "-o", str(tmp_path / "figures")]) == 0
    assert "no visual comparison" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "figures").iterdir()) == ["rd.png", "seed_spread.png"]

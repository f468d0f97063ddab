"""Reports: dataset-mean R-D points and BD-rate against each codec's original loss."""

import csv
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from study.results.bd import MIN_OVERLAP, bd_rate
from study.results.rd import interpolate_at_bpp, rd_file_name, rd_files, rd_points
from study.results.report import (
    bd_rate_rows,
    classical_rows,
    codec_rows,
    markdown_table,
    read_per_image_csv,
    write_reports,
)


def record(codec, loss, lmbda, image, bpp, psnr, lpips=None):
    return {
        "codec": codec,
        "loss": loss,
        "rate_parameter": "lmbda",
        "lmbda": lmbda,
        "rate": lmbda,
        "image": image,
        "bpp": bpp,
        "psnr": psnr,
        "ms_ssim_db": psnr / 2,
        "lpips": lpips,
    }


def test_rd_points_are_means_over_all_images_only():
    records = [
        record("coolchic-v1", "mse", 1e-3, "a", 1.0, 30.0),
        record("coolchic-v1", "mse", 1e-3, "b", 2.0, 34.0),
        record("coolchic-v1", "mse", 4e-3, "a", 0.5, 27.0),  # image b missing at this λ
    ]
    [point] = rd_points(records)["coolchic-v1__mse"]
    assert point["setting"] == 1e-3
    assert point["bpp"] == 1.5 and point["psnr"] == 32.0


def curve(loss, factor, lpips=True):
    """A log-linear R-D curve; ``factor`` scales the rate at every quality."""
    out = []
    for i, lmbda in enumerate((1e-2, 4e-3, 1e-3, 1e-4)):
        quality = 26.0 + 3 * i
        bpp = factor * 0.25 * 2**i
        out.append(
            {"bpp": bpp, "psnr": quality, "ms_ssim_db": quality / 2, "lpips": 0.5 / (i + 1)}
            | ({} if lpips else {"lpips": None})
            | {"setting": lmbda, "loss": loss}
        )
    return out


def test_bd_rate_recovers_a_known_rate_saving():
    anchor, better = curve("mse", 1.0), curve("l1", 0.8)
    found = bd_rate(anchor, better, "psnr")
    assert found.value == pytest.approx(-20.0, abs=0.01)
    assert found.overlap == 1.0 and found.pruned == ()
    assert (found.bpp_low, found.bpp_high) == pytest.approx((0.2, 2.0))  # 0.8·0.25 … 1.0·2
    assert bd_rate(anchor, better, "lpips").value == pytest.approx(-20.0, abs=0.01)  # lower: better
    assert bd_rate(anchor, curve("x", 1.0, lpips=False), "lpips") is None
    assert bd_rate(anchor[:1], better, "psnr") is None
    # A lossless point (PSNR +inf) lies on no curve: left out, not a crash.
    lossless = [*better, better[-1] | {"bpp": 9.0, "psnr": math.inf}]
    assert bd_rate(anchor, lossless, "psnr").value == found.value
    assert bd_rate(anchor, [p | {"bpp": 0.0} for p in better], "psnr") is None


def test_equal_rate_reference_takes_the_better_of_two_points_at_one_rate_in_any_order():
    # A classical codec's two lowest qualities can make files of one size (JPEG q1 and q2).
    rates, qualities = [0.1, 0.1, 0.4, 1.6], [20.0, 22.0, 30.0, 36.0]
    expected = 22.0 + (30.0 - 22.0) / 2  # halfway in log rate between 0.1 and 0.4
    for order in ([0, 1, 2, 3], [1, 0, 3, 2], [3, 2, 1, 0]):
        found = interpolate_at_bpp([rates[i] for i in order], [qualities[i] for i in order], 0.2)
        assert found == pytest.approx(expected)
    assert math.isnan(interpolate_at_bpp(rates, qualities, 2.0))  # no extrapolation


def test_curves_that_cross_get_a_bd_rate_per_rate_range():
    anchor = curve("mse", 1.0)
    # 20 % fewer bits at the two low-rate points, 25 % more at the two high-rate ones.
    crossing = [p | {"bpp": p["bpp"] * (0.8 if i < 2 else 1.25)} for i, p in enumerate(anchor)]
    found = bd_rate(anchor, crossing, "psnr", by_range=True)
    low, high = found.ranges
    assert low.value < 0 < high.value
    assert low.bpp_low == pytest.approx(0.2) and high.bpp_high == pytest.approx(2.5)
    assert low.bpp_high == pytest.approx(high.bpp_low)  # where the curves meet
    assert low.share + high.share == pytest.approx(1.0)
    # The whole range's BD-rate is the parts' mean log-rate ratio, weighted by their share.
    whole = sum(r.share * math.log1p(r.value / 100) for r in found.ranges)
    assert math.log1p(found.value / 100) == pytest.approx(whole, abs=1e-9)
    assert (
        bd_rate(anchor, curve("l1", 0.8), "psnr", by_range=True).ranges == ()
    )  # better throughout
    # Qualities that do not line up: the overlap's ends fall between points, and the span a cell
    # states is the one its ranges share (the same PCHIP curves).
    shifted = [p | {"psnr": p["psnr"] + 1.0} for p in crossing]
    found = bd_rate(anchor, shifted, "psnr", by_range=True)
    assert found.bpp_low == pytest.approx(min(r.bpp_low for r in found.ranges), rel=1e-12)
    assert found.bpp_high == pytest.approx(max(r.bpp_high for r in found.ranges), rel=1e-12)


def test_bd_rate_is_bjontegaards_pchip_on_the_published_curves():
    """Every per-image comparison of ``icip24-cpu`` against its published loss, in every BD
    metric: our integration (math.log10, for the same bits on every CPU) gives the ``bjontegaard``
    package's ``pchip`` BD-rate on the same operational points."""
    import bjontegaard

    from study.results.bd import _operational

    published = Path(__file__).resolve().parents[2] / "results/icip24-cpu/reports/per_image.csv"
    records = [r for r in read_per_image_csv(published) if r["codec"] == "coolchic-v1"]
    curves = {}
    for r in records:
        curves.setdefault((r["loss"], r["image"]), []).append(r)
    compared = 0
    for (loss, image), test in sorted(curves.items()):
        if loss == "mse":
            continue
        anchor = curves[("mse", image)]
        for metric in ("psnr", "ms_ssim_db", "lpips"):
            ours = bd_rate(anchor, test, metric)
            if ours is None or ours.value is None:
                continue
            a, t = _operational(anchor, metric)[0], _operational(test, metric)[0]
            theirs = bjontegaard.bd_rate(
                [r for r, _ in a],
                [q for _, q in a],
                [r for r, _ in t],
                [q for _, q in t],
                method="pchip",
                require_matching_points=False,
                min_overlap=0,
            )
            assert ours.value == pytest.approx(theirs, rel=1e-11, abs=1e-10), (loss, image, metric)
            compared += 1
    assert compared > 60  # of 96: four losses, eight crops, three metrics; n/a left out


def test_reports_are_the_same_bytes_where_numpy_and_glibc_take_other_code(tmp_path):
    """A published study's reports written again with numpy's SIMD code and glibc's FMA code
    switched off, as on a CPU without them: not a byte may change (DEVELOPERS.md)."""
    published = Path(__file__).resolve().parents[2] / "results" / "icip24-nif-crops"
    copy = tmp_path / published.name
    shutil.copytree(published, copy, ignore=shutil.ignore_patterns("bitstreams"))
    environment = {
        **os.environ,
        "NPY_DISABLE_CPU_FEATURES": "X86_V3 X86_V4 AVX512_ICL AVX512_SPR",
        "GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA,-AVX_Usable,-FMA_Usable,-AVX2_Usable",
    }
    command = f"from study.cli import main; raise SystemExit(main(['report', {str(copy)!r}]))"
    subprocess.run(
        [sys.executable, "-c", command], env=environment, check=True, capture_output=True
    )
    theirs = published / "reports"
    for ours in sorted((copy / "reports").iterdir()):
        assert ours.read_bytes() == (theirs / ours.name).read_bytes(), ours.name
    assert {p.name for p in theirs.iterdir()} == {p.name for p in (copy / "reports").iterdir()}


def test_bd_rate_is_none_without_overlap():
    far = [p | {"psnr": p["psnr"] + 40} for p in curve("l1", 1.0)]
    assert bd_rate(curve("mse", 1.0), far, "psnr") is None


@pytest.mark.parametrize(("shift", "reported"), [(2.9, True), (3.1, False)])
def test_bd_rate_needs_half_the_joint_quality_range(shift, reported):
    """Qualities 26…35 against 26+shift…35+shift: overlap (9 − shift) / (9 + shift)."""
    shifted = [p | {"psnr": p["psnr"] + shift} for p in curve("l1", 1.0)]
    found = bd_rate(curve("mse", 1.0), shifted, "psnr")
    assert MIN_OVERLAP == 0.5
    assert found.overlap == pytest.approx((9 - shift) / (9 + shift))
    assert (found.value is not None) is reported


def test_a_point_its_own_curve_beats_is_dropped_before_the_bd_rate():
    anchor = curve("mse", 1.0)
    # λ 1e-4 ends with more bits and less quality than λ 1e-3: a non-monotonic curve.
    broken = [p | ({"psnr": 30.0} if p["setting"] == 1e-4 else {}) for p in curve("l1", 0.8)]
    found = bd_rate(anchor, broken, "psnr")
    assert found.pruned == ("test",)
    assert found.value == pytest.approx(bd_rate(anchor, broken[:3], "psnr").value)


def records_of(codec, loss, factor, images=("a", "b", "c"), seeds=(0,), jitter=0.0):
    """Trial records whose curve is ``curve(loss, factor)`` on every image (scaled per image)."""
    rows = []
    for n, image in enumerate(images):
        for seed in seeds:
            for point in curve(loss, factor * (1 + n * jitter)):
                rows.append(
                    {
                        "codec": codec,
                        "loss": loss,
                        "image": image,
                        "seed": seed,
                        "rate": point["setting"],
                        "bpp": point["bpp"] * (1 + 0.01 * seed),
                        "psnr": point["psnr"],
                        "ms_ssim_db": point["ms_ssim_db"],
                        "lpips": point["lpips"],
                    }
                )
    return rows


def test_bd_rate_rows_compare_each_loss_with_the_codecs_published_loss():
    records = [
        *records_of("coolchic-v1", "mse", 1.0),
        *records_of("coolchic-v1", "l1", 1.1),
        *records_of("nif", "mse", 1.0),  # NIF's anchor (lc_ssim(0.01)) is absent: no row
        *records_of("jpeg", None, 2.0),
    ]
    [row] = bd_rate_rows(records)
    assert (row["codec"], row["loss"], row["anchor"]) == ("coolchic-v1", "l1", "mse")
    assert math.isclose(row["bd_rate_psnr"], 10.0, abs_tol=0.01)
    images = row["bd_rate_psnr_images"]
    # Every image's own curve is 10 % costlier: a degenerate interval, and with 3 images all on
    # one side, the smallest two-sided signed-rank p-value there is: 2 / 2^3.
    assert images["n"] == 3 and images["mean"] == pytest.approx(10.0, abs=0.01)
    assert images["low"] == pytest.approx(10.0, abs=0.01) == images["high"]
    assert images["p_value"] == pytest.approx(0.25)


def test_the_table_names_every_curve_that_lost_a_dominated_point_the_dataset_means_too():
    records = [*records_of("coolchic-v1", "mse", 1.0), *records_of("coolchic-v1", "l1", 0.8)]
    for row in records:  # every image's λ 1e-4 ends with more bits and less quality
        if row["loss"] == "l1" and row["rate"] == 1e-4:
            row["psnr"] = 30.0
    [row] = bd_rate_rows(records)
    expected = [f"coolchic-v1__l1 {image}" for image in ("a", "b", "c", "dataset mean")]
    assert row["bd_rate_psnr_pruned"] == expected
    assert "it happened on 4 curves: coolchic-v1__l1 a, " in markdown_table([row])


def test_coverage_counts_trials_and_names_the_seed_a_missing_image_lacks(tmp_path):
    from study.engine.trial import TrialSpec
    from study.results.coverage import write_coverage

    planned = [
        TrialSpec(codec="coolchic-v1", image=image, rate=1e-3, loss="mse", seed=seed)
        for image in ("kodim01", "kodim04")
        for seed in (0, 1)
    ]
    planned.append(TrialSpec(codec="jpeg", image="kodim04", rate=50))  # deterministic: seed 0
    (path,) = write_coverage(planned, {planned[0].key, planned[1].key}, tmp_path)
    fitted, anchor = path.read_text().splitlines()[-2:]
    missing = "kodim04 (seed 0), kodim04 (seed 1)"
    assert fitted == f"| coolchic-v1 | mse | lmbda 0.001 | 2 of 4 | {missing} |"
    assert anchor == "| jpeg | — | quality 50 | 0 of 1 | kodim04 |"


def test_every_inr_curve_is_compared_with_every_classical_codec(tmp_path):
    records = [
        *records_of("coolchic-v1", "mse", 1.0),
        *records_of("coolchic-v1", "l1", 1.1),
        *records_of("jpeg", None, 2.0),
        *records_of("avif", None, 0.8),
    ]
    rows = {(r["loss"], r["anchor"]): r for r in classical_rows(records)}
    assert set(rows) == {(loss, c) for loss in ("mse", "l1") for c in ("avif", "jpeg")}
    # Half JPEG's rate at every quality: −50 %; 1.1/0.8 of AVIF's: +37.5 %.
    assert rows["mse", "jpeg"]["bd_rate_psnr"] == pytest.approx(-50.0, abs=0.01)
    assert rows["l1", "avif"]["bd_rate_psnr"] == pytest.approx(37.5, abs=0.01)
    assert rows["l1", "avif"]["bd_rate_psnr_images"]["n"] == 3
    written = {p.name for p in write_reports(records, "toy", tmp_path)}
    assert {"bd_rate_classical.md", "bd_rate_classical.csv", "bd_rate.md"} <= written
    assert "against each classical codec" in (tmp_path / "bd_rate_classical.md").read_text()
    # Without a classical codec there is no such table.
    only_inr = [r for r in records if r["codec"] == "coolchic-v1"]
    assert "bd_rate_classical.md" not in {
        p.name for p in write_reports(only_inr, "toy", tmp_path / "x")
    }


def test_curves_of_different_images_are_compared_over_the_images_both_hold(tmp_path):
    # Images a, b, c cost 1, 1.5 and 2 times as many bits; COOL-CHIC has c at two λ of four (a
    # study still growing), JPEG all three: JPEG's mean over three would cost it 1.5/1.25 more.
    grown = records_of("coolchic-v1", "mse", 1.0, jitter=0.5)
    partial = [r for r in grown if r["image"] != "c" or r["rate"] in (1e-2, 4e-3)]
    records = [*partial, *records_of("jpeg", None, 2.0, jitter=0.5)]
    [row] = classical_rows(records)
    assert row["curve_images"] == ["a", "b"]
    assert row["bd_rate_psnr"] == pytest.approx(-50.0, abs=0.01)  # half the bits on a and on b
    # Image by image, c's two points are compared too (too little overlap there for a BD-rate).
    assert (row["bd_rate_psnr_images"]["n"], row["bd_rate_psnr_images"]["compared"]) == (2, 3)
    write_reports(records, "toy", tmp_path)
    table = (tmp_path / "bd_rate_classical.md").read_text()
    assert "compares their means over the images both hold at every rate setting" in table
    assert "bpp; over a, b) |" in table
    with (tmp_path / "bd_rate_classical.csv").open() as f:
        assert next(csv.DictReader(f))["curve_images"] == "a; b"
    # The curve's R-D file is the whole curve over the images with every setting, and says so.
    rd_file = json.loads((tmp_path / "coolchic-v1__mse.json").read_text())
    assert len(rd_file["results"]["bpp"]) == 4
    assert rd_file["results"]["bpp"][0] == pytest.approx(0.25 * (1 + 1.5) / 2)  # a and b
    assert (
        "2 images (a, b: those with every rate setting, of the 3 it holds)"
        in (rd_file["description"])
    )
    # Curves of the same images are compared as rd_points draws them, and the tables say nothing.
    [whole] = classical_rows([*grown, *records_of("jpeg", None, 2.0, jitter=0.5)])
    assert "curve_images" not in whole
    write_reports([*grown, *records_of("jpeg", None, 2.0)], "toy", tmp_path / "whole")
    whole_table = (tmp_path / "whole" / "bd_rate_classical.md").read_text()
    assert "both hold" not in whole_table
    with (tmp_path / "whole" / "bd_rate_classical.csv").open() as f:
        assert "curve_images" not in next(csv.reader(f))
    # No image in common: the curve cell says so.
    apart = [
        *records_of("coolchic-v1", "mse", 1.0, images=("a",)),
        *records_of("jpeg", None, 2.0, images=("b",)),
    ]
    [alone] = classical_rows(apart)
    assert alone["curve_images"] == [] and alone["bd_rate_psnr"] is None
    assert "n/a (no image both hold at every rate setting)" in markdown_table([alone])


def test_each_inr_codec_is_compared_with_every_older_one_at_the_same_loss(tmp_path):
    records = [
        *records_of("coolchic-v2", "mse", 1.0),
        *records_of("c3", "mse", 0.8),
        *records_of("c3", "l1", 0.7),  # no older codec trained with L1: no row
        *records_of("coolchic-v1", "mse", 1.25),
        *records_of("jpeg", None, 2.0),
    ]
    rows = {(r["codec"], r["anchor"]): r for r in codec_rows(records)}
    assert set(rows) == {("coolchic-v2", "coolchic-v1"), ("c3", "coolchic-v1"),
                         ("c3", "coolchic-v2")}  # fmt: skip
    assert rows["c3", "coolchic-v2"]["bd_rate_psnr"] == pytest.approx(-20.0, abs=0.01)
    assert rows["c3", "coolchic-v2"]["bd_rate_psnr_images"]["n"] == 3
    assert rows["coolchic-v2", "coolchic-v1"]["bd_rate_psnr"] == pytest.approx(-20.0, abs=0.01)
    written = {p.name for p in write_reports(records, "toy", tmp_path)}
    assert {"bd_rate_codecs.md", "bd_rate_codecs.csv"} <= written
    assert "registered before it" in (tmp_path / "bd_rate_codecs.md").read_text()


def test_a_codec_comparison_states_each_curves_budget(tmp_path):
    records = [*records_of("coolchic-v2", "mse", 1.0), *records_of("c3", "mse", 0.8)]
    for n, r in enumerate(records):
        v2 = r["codec"] == "coolchic-v2"
        r |= {"preset": "short", "encode_seconds": 100.0 + n}
        r |= {"final_model_iterations": 2359 if v2 else 3000, "warmup_iterations": 924 if v2 else 0}
    write_reports(records, "toy", tmp_path)
    with (tmp_path / "budgets.csv").open() as f:
        rows = {r["codec"]: r for r in csv.DictReader(f)}
    assert rows["c3"]["fits"] == "12"
    assert float(rows["c3"]["final_model_iterations_median"]) == 3000
    assert float(rows["coolchic-v2"]["warmup_iterations_max"]) == 924
    assert float(rows["coolchic-v2"]["encode_seconds_min"]) == 100
    table = (tmp_path / "bd_rate_codecs.md").read_text()
    assert "| c3 | short | mse | 12 | 3,000 | 0 | 118 [112–123] |" in table
    with (tmp_path / "per_image.csv").open() as f:
        assert {r["warmup_iterations"] for r in csv.DictReader(f)} == {"924", "0"}


def test_per_image_statistics_on_a_known_spread():
    records = [*records_of("coolchic-v1", "mse", 1.0, images="abcdefgh"),
               *records_of("coolchic-v1", "l1", 0.9, images="abcdefgh", jitter=0.01)]  # fmt: skip
    [row] = bd_rate_rows(records)
    images = row["bd_rate_psnr_images"]
    assert images["n"] == 8 and images["p_value"] == pytest.approx(2 / 2**8)
    assert images["low"] < images["mean"] < images["high"] < 0
    table = markdown_table([row])
    assert "per image" in table and "p = 0.00781, Holm 0.0234 (n = 8)" in table  # 3 metrics
    assert "over the 3 p-values of this table" in table and "overlap 100%" in table


def test_repeated_seeds_are_averaged_with_their_spread():
    records = records_of("coolchic-v1", "mse", 1.0, seeds=(0, 1, 2))
    points = rd_points(records)["coolchic-v1__mse"]
    assert len(points) == 4 and {p["seeds"] for p in points} == {3}
    first = next(p for p in points if p["setting"] == 1e-2)
    assert first["bpp"] == pytest.approx(0.25 * 1.01)  # mean of ×1.00, ×1.01, ×1.02
    assert first["bpp_seed_std"] == pytest.approx(0.25 * 0.01)


def test_equal_rate_compares_each_rate_setting_with_the_classical_sweep_at_its_bpp(tmp_path):
    from study.results.equal_rate import equal_rate_rows
    from study.results.report import _classical

    # JPEG needs twice the rate for the same quality: at an INR point's bpp it is one curve step
    # (3 dB, one LPIPS step) worse; below JPEG's lowest rate there is nothing to compare.
    records = [*records_of("coolchic-v1", "mse", 1.0), *records_of("jpeg", None, 2.0)]
    rows = {r["rate"]: r for r in equal_rate_rows(records, ["psnr", "lpips"], _classical)}
    assert set(rows) == {1e-2, 4e-3, 1e-3, 1e-4}
    assert rows[1e-2]["psnr"] is None and rows[1e-2]["bpp"] == pytest.approx(0.25)
    at_half_bpp = rows[4e-3]
    assert at_half_bpp["anchor"] == "jpeg" and at_half_bpp["bpp"] == pytest.approx(0.5)
    assert at_half_bpp["psnr"]["mean"] == pytest.approx(3.0)
    assert (at_half_bpp["psnr"]["better"], at_half_bpp["psnr"]["n"]) == (3, 3)
    assert at_half_bpp["lpips"]["mean"] == pytest.approx(0.25 - 0.5)  # lower: better
    assert at_half_bpp["lpips"]["better"] == 3
    write_reports(records, "s", tmp_path)
    table = (tmp_path / "equal_rate_classical.md").read_text()
    row = (
        "| coolchic-v1 | mse | 0.004 | 0.500 | jpeg | +3.00 [boot +3.00, +3.00; t +3.00, +3.00], "
        "p = 0.25, Holm 1 (n = 3) | 3/3 |"
    )
    assert row in table
    assert not (tmp_path / "equal_rate.md").exists()  # one loss: nothing to compare it with


def test_equal_rate_against_the_published_loss_averages_its_seeds(tmp_path):
    # L1 spends 1.1× MSE's rate for the same quality; MSE ran with two seeds (bpp +1 % on the
    # second): at L1's bpp, MSE's seed-mean curve is slightly better.
    records = [*records_of("coolchic-v1", "mse", 1.0, seeds=(0, 1)),
               *records_of("coolchic-v1", "l1", 1.1)]  # fmt: skip
    write_reports(records, "s", tmp_path)
    rows = list(csv.DictReader((tmp_path / "equal_rate.csv").open()))
    assert {(r["loss"], r["anchor"]) for r in rows} == {("l1", "mse")}
    middle = next(r for r in rows if float(r["rate"]) == 1e-3)
    expected = -3 * math.log2(1.1 / 1.005)  # 3 dB per doubling of the rate
    assert float(middle["psnr_mean"]) == pytest.approx(expected, rel=1e-6)
    assert (middle["psnr_better"], middle["psnr_n"]) == ("0", "3")


QUALITIES = {1e-2: 10, 4e-3: 20, 1e-3: 30, 1e-4: 40}  # a JPEG sweep on the same settings


def test_a_published_per_image_csv_gives_the_same_reports_again(tmp_path):
    records = [
        *records_of("coolchic-v1", "mse", 1.0, seeds=(0, 1)),
        *records_of("coolchic-v1", "l1", 1.1, jitter=0.02),
        *[r | {"rate_parameter": "quality", "rate": QUALITIES[r["rate"]]}
          for r in records_of("jpeg", None, 2.0)],
    ]  # fmt: skip
    for r in records:
        r.setdefault("rate_parameter", "lmbda")
    first = {p.name: p.read_bytes() for p in write_reports(records, "s", tmp_path / "a")}
    again = read_per_image_csv(tmp_path / "a" / "per_image.csv")
    second = {p.name: p.read_bytes() for p in write_reports(again, "s", tmp_path / "b")}
    assert first == second and "seed_spread.md" in first


def test_two_seeds_of_one_configuration_give_its_noise_floor(tmp_path):
    # Seed 1's rates are 1 % above seed 0's at every quality: a BD-rate of +1 % on every image.
    records = records_of("coolchic-v1", "mse", 1.0, images="abcd", seeds=(0, 1))
    from study.results.seeds import seed_spread_rows

    [psnr] = [row for row in seed_spread_rows(records, ["psnr"])]
    assert psnr["pairs"][(0, 1)] == pytest.approx(1.0, abs=1e-6)
    assert psnr["floor"] == pytest.approx(1.0, abs=1e-6) and psnr["n"] == 4
    assert psnr["image_sd"] == pytest.approx(0.0, abs=1e-6)
    write_reports(records, "s", tmp_path)
    assert "| 0, 1 | 0 vs 1: +1.00 % | 1.00 % |" in (tmp_path / "seed_spread.md").read_text()


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("jpeg", "jpeg.json"),
        ("coolchic-v1__mse", "coolchic-v1__mse.json"),
        ("coolchic-v1__lc_ssim(0.01)", "coolchic-v1__lc_ssim-0.01.json"),
        ("c3__l1:0.8+ssim:0.2", "c3__l1-0.8_ssim-0.2.json"),
        ("nif__lc_ssim(1e+10)", "nif__lc_ssim-1e_10.json"),  # not lc_ssim(1e-10)'s name
    ],
)
def test_rd_files_are_named_without_shell_quoting(label, name):
    assert rd_file_name(label) == name and re.fullmatch(r"[A-Za-z0-9._-]+", name)
    assert rd_file_name(name.removesuffix(".json")) == name  # a new name stays as it is


def test_rd_files_under_their_earlier_names_are_still_read(tmp_path):
    from study.results.table import get_metric

    records = records_of("coolchic-v1", "lc_ssim(0.01)", 1.0)
    fresh = tmp_path / "fresh" / "coolchic-v1__lc_ssim-0.01.json"
    write_reports(records, "toy", fresh.parent)
    document = json.loads(fresh.read_text())
    assert document["name"] == "coolchic-v1__lc_ssim(0.01)"  # CompressAI's format, as before
    assert get_metric("ms_ssim_db").definition_sentence() in document["description"]

    # An earlier version's report: named by the label itself, worded differently.
    folder = tmp_path / "earlier"
    folder.mkdir()
    earlier = folder / "coolchic-v1__lc_ssim(0.01).json"
    earlier.write_text(json.dumps(document | {"description": "older words"}))
    assert rd_files(folder) == {fresh.name: earlier}

    # Reported again there, the file takes its new name and leaves no twin under the old one.
    write_reports(records, "toy", folder)
    assert rd_files(folder) == {fresh.name: folder / fresh.name} and not earlier.exists()


def test_an_opt_in_metric_is_reported_where_the_records_carry_it(tmp_path):
    # WD is computed only by studies that ask for it: reports of the others keep their columns.
    records = [*records_of("coolchic-v1", "mse", 1.0), *records_of("coolchic-v1", "l1", 1.1)]
    for r in records:
        r.setdefault("rate_parameter", "lmbda")
    without = {p.name: p.read_text() for p in write_reports(records, "s", tmp_path / "a")}
    assert "wd" not in without["per_image.csv"].splitlines()[0].split(",")
    assert (
        "WD" not in without["bd_rate.md"] and "wasserstein" not in without["coolchic-v1__l1.json"]
    )

    for r in records:
        r["wd"] = 0.1 / r["psnr"]
    written = {p.name: p.read_text() for p in write_reports(records, "s", tmp_path / "b")}
    assert "wd" in written["per_image.csv"].splitlines()[0].split(",")
    assert "| LPIPS: curve | per image | WD: curve | per image |" in written["bd_rate.md"]
    [row] = bd_rate_rows(records)
    assert row["bd_rate_wd"] == pytest.approx(row["bd_rate_psnr"])  # the same curves, reshaped
    document = json.loads(written["coolchic-v1__l1.json"])
    assert len(document["results"]["wasserstein-distortion"]) == 4
    again = read_per_image_csv(tmp_path / "b" / "per_image.csv")
    rewritten = {p.name: p.read_text() for p in write_reports(again, "s", tmp_path / "c")}
    assert rewritten == written

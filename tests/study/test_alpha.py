"""The α tables of a match-mode search, from its fits alone."""

import csv

import pytest

from study.results.alpha import alpha_rows, matched_fits, off_target, reseeded, task_target
from study.results.alpha_tables import write_alpha_tables
from study.results.report import read_per_image_csv, write_reports

TASK = "coolchic-v1/lc_ssim/0.5bpp"


def fit(alpha, image, bpp, lpips, psnr=30.0, key=None, family="lc_ssim", rate=1e-3):
    return {
        "search": TASK.replace("lc_ssim", family), "codec": "coolchic-v1", "loss_family": family,
        "alpha": alpha, "image": image, "bpp": bpp, "lpips": lpips, "psnr": psnr,
        "trial_key": key or f"{family}-{alpha}-{image}-{bpp}", "rate_parameter": "lmbda",
        "rate": rate,
    }  # fmt: skip


def fits():
    # Per image, a first fit off target and the matched one; α 0.1 is best in LPIPS on all three
    # images, by 0.02, 0.04 and 0.06 against the published 0.01.
    records = []
    for image, shift in (("a", 0.0), ("b", 0.01), ("c", 0.02)):
        records += [
            fit(0.0, image, 0.80, 0.30 + shift),
            fit(0.0, image, 0.51, 0.20 + shift),
            fit(0.01, image, 0.49, 0.18 + shift),
            fit(0.01, image, 0.30, 0.40),
            fit(0.1, image, 0.505, 0.16 - shift),
        ]
    return records


def test_the_matched_fit_is_the_closest_to_the_target_and_the_best_alpha_is_on_target():
    assert task_target(TASK) == 0.5 and task_target("nif/l1_ssim/pareto") is None
    matched = matched_fits(fits(), tolerance=0.05)
    assert len(matched) == 9 and all(f["reached"] for f in matched)
    assert {f["bpp"] for f in matched if f["alpha"] == 0.0} == {0.51}

    rows = alpha_rows(matched, "lpips", ["lpips", "psnr"])
    assert [r["alpha"] for r in rows] == [0.0, 0.01, 0.1]
    best = [r for r in rows if r["best"]]
    assert [r["alpha"] for r in best] == [0.1]
    default, zero = best[0]["vs_default"], best[0]["vs_zero"]
    assert best[0]["vs_default_alpha"] == 0.01  # the family's declared α
    assert default.mean == pytest.approx(0.04) and default.n == 3  # lower LPIPS: > 0
    assert default.t_low < 0.04 < default.t_high
    assert zero.mean == pytest.approx(0.06)
    # 0.04 ± 0.05 over three images cannot tell 0.1 from 0.01; 0.06 ± 0.05 tells it from 0.
    assert best[0]["as_good"] == [0.01]


def test_each_miss_is_listed_with_the_fits_nearest_the_target(tmp_path):
    jump = [fit(0.03, "a", 0.556, 0.2, rate=0.01407), fit(0.03, "a", 0.464, 0.2, rate=0.01418),
            fit(0.03, "a", 0.80, 0.3, rate=0.005)]  # fmt: skip
    jump += [fit(0.03, image, 0.5, 0.2) for image in "bc"]
    above = [fit(0.2, image, 0.60, 0.01, rate=0.02) for image in "abc"]  # 20 % over, none under
    still = [fit(0.3, "a", 0.9, 0.1)]  # a sample fitted on one image so far: not listed yet
    records = fits() + jump + above + still
    matched = matched_fits(records, 0.05)
    missed = off_target(matched, alpha_rows(matched, "lpips", ["lpips"]))
    assert [(m["alpha"], m["image"], m["fits"]) for m in missed] == [
        (0.03, "a", 3), (0.2, "a", 1), (0.2, "b", 1), (0.2, "c", 1),
    ]  # fmt: skip
    assert (missed[0]["above"]["rate"], missed[0]["below"]["rate"]) == (0.01407, 0.01418)
    assert missed[1]["below"] is None
    write_alpha_tables(records, tmp_path, "lpips", ["lpips"], 0.05)
    table = (tmp_path / "alpha.md").read_text()
    assert (
        "| coolchic-v1/lc_ssim/0.5bpp | 0.03 | a | 3 | λ 0.01407: 0.556 bpp | λ 0.01418: " in table
    )
    assert "| coolchic-v1/lc_ssim/0.5bpp | 0.2 | a | 1 | λ 0.02: 0.600 bpp | none |" in table
    # The columns carry each metric's unit and direction, as every table does.
    assert "| task | α | images (on target) | bpp | LPIPS (lower is better) |" in table


def test_a_fit_of_a_further_seed_counts_and_is_named(tmp_path):
    straddled = [fit(0.03, "a", 0.556, 0.2, rate=0.01407), fit(0.03, "a", 0.464, 0.2, rate=0.01418)]
    further = {**fit(0.03, "a", 0.505, 0.19, rate=0.0141, key="s1"), "seed": 1}
    records = fits() + straddled + [further] + [fit(0.03, i, 0.5, 0.2) for i in "bc"]
    matched = matched_fits(records, 0.05)
    assert [f["trial_key"] for f in reseeded(matched)] == ["s1"]
    write_alpha_tables(records, tmp_path, "lpips", ["lpips"], 0.05)
    table = (tmp_path / "alpha.md").read_text()
    assert "| coolchic-v1/lc_ssim/0.5bpp | 0.03 | a | 1 (0) | λ 0.0141: 0.505 bpp |" in table
    assert "## Off target" not in table


def test_an_alpha_off_target_on_some_image_cannot_be_best(tmp_path):
    records = fits() + [fit(0.2, image, 0.60, 0.01) for image in "abc"]  # 20 % above 0.5 bpp
    rows = alpha_rows(matched_fits(records, 0.05), "lpips", ["lpips"])
    off = next(r for r in rows if r["alpha"] == 0.2)
    assert off["on_target"] == 0 and not off["best"]
    assert next(r for r in rows if r["best"])["alpha"] == 0.1

    # On a study of four images, three fitted are not every image: no α is best yet.
    rows = alpha_rows(matched_fits(fits(), 0.05), "lpips", ["lpips"], images=list("abcd"))
    assert not any(r["best"] for r in rows) and {r["of"] for r in rows} == {4}
    # The default α off target on one image: no difference against it at matched rate.
    shifted = [r for r in fits() if (r["alpha"], r["image"], r["bpp"]) != (0.01, "c", 0.49)]
    rows = alpha_rows(matched_fits(shifted, 0.05), "lpips", ["lpips"])
    best = next(r for r in rows if r["best"])
    assert best["vs_default"] is None and best["as_good"] == [] and best["vs_zero"].n == 3

    # The published copy's per_image.csv keeps each fit's task: the same tables again.
    for record in records:
        record.update(rate_parameter="lmbda", rate=1e-3, preset="paper", loss="lc_ssim")
    write_reports(records, "s", tmp_path / "a")
    again = read_per_image_csv(tmp_path / "a" / "per_image.csv")
    first = write_alpha_tables(records, tmp_path / "a", "lpips", ["lpips", "psnr"], 0.05)
    second = write_alpha_tables(again, tmp_path / "b", "lpips", ["lpips", "psnr"], 0.05)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    table = (tmp_path / "a" / "alpha.md").read_text()
    assert "| coolchic-v1/lc_ssim/0.5bpp | **0.1** | 3 of 3 (3) |" in table
    assert "α 0.01 (ICIP 2024 study): +0.0400 [" in table and "n 3" in table
    assert "| α 0.01 |" in table  # as good as the best


def test_each_architecture_and_rate_gets_each_family_s_best_and_the_better_family(tmp_path):
    l1 = [fit(0.2, image, 0.5, 0.19 - shift, family="l1_ssim")
          for image, shift in (("a", 0.0), ("b", 0.01), ("c", 0.02))]  # fmt: skip
    l1 += [fit(0.0, image, 0.7, 0.10, family="l1_ssim") for image in "abc"]  # off target
    write_alpha_tables(fits() + l1, tmp_path, "lpips", ["lpips"], 0.05)
    table = (tmp_path / "alpha.md").read_text()
    section = table[table.index("## Per architecture and rate") :]
    # LogCosh + 0.1·SSIM (0.15) beats the L1 family's best, α 0.2 (0.18), by 0.03 on each image.
    assert (
        "| coolchic-v1 | 0.5 bpp | α 0.2: 0.1800 | α 0.1 (as good: 0.01): 0.1500 | "
        "lc_ssim α 0.1; against l1_ssim α 0.2: +0.0300 [+0.0300, +0.0300], n 3 (better) |"
    ) in section, section

    # A family without α (one sample: the loss itself) takes its place beside the others.
    mse = [fit(None, image, 0.5, 0.155, family="mse") for image in "abc"]
    write_alpha_tables(fits() + mse, tmp_path, "lpips", ["lpips"], 0.05)
    table = (tmp_path / "alpha.md").read_text()
    assert "| coolchic-v1/mse/0.5bpp | **—** | 3 of 3 (3) |" in table
    assert (
        "| coolchic-v1 | 0.5 bpp | α 0.1 (as good: 0.01): 0.1500 | no α: 0.1550 | lc_ssim α 0.1; "
        "against mse no α: +0.0050 [-0.0198, +0.0298], n 3 (not told apart) |"
    ) in table, table


def test_a_best_chosen_before_every_planned_alpha_is_in_is_the_best_so_far(tmp_path):
    grid = {"lc_ssim": [0.0, 0.01, 0.1, 0.3], "l1_ssim": [0.2]}
    l1 = [fit(0.2, image, 0.5, 0.17, family="l1_ssim") for image in "abc"]
    # An α outside the grid (fitted before the grid changed) is not one of the grid's in.
    shrunk = alpha_rows(matched_fits(fits(), 0.05), "lpips", ["lpips"], grid={"lc_ssim": [0, 0.3]})
    assert {(r["alphas_in"], r["alphas_planned"]) for r in shrunk} == {(1, 2)}
    rows = alpha_rows(matched_fits(fits() + l1, 0.05), "lpips", ["lpips"], grid=grid)
    assert {(r["family"], r["alphas_in"], r["alphas_planned"]) for r in rows} == {
        ("lc_ssim", 3, 4),  # α 0.3 not fitted yet
        ("l1_ssim", 1, 1),
    }
    write_alpha_tables(fits() + l1, tmp_path, "lpips", ["lpips"], 0.05, grid=grid)
    table = (tmp_path / "alpha.md").read_text()
    assert (
        "| coolchic-v1/lc_ssim/0.5bpp | **0.1** (so far: 3 of 4 α on target) | 3 of 3 (3) |"
        in table
    )
    assert "| coolchic-v1/l1_ssim/0.5bpp | **0.2** | 3 of 3 (3) |" in table
    assert (
        "| α 0.2: 0.1700 | α 0.1 (as good: 0.01; so far: 3 of 4 α on target): 0.1500 | so far: "
        in table
    )
    with (tmp_path / "alpha.csv").open() as f:
        counts = [(r["family"], r["alphas_in"], r["alphas_planned"]) for r in csv.DictReader(f)]
    assert counts == [("l1_ssim", "1", "1")] + [("lc_ssim", "3", "4")] * 3

    # Without a grid (α searched, or a table of fits alone) a best is never "so far".
    write_alpha_tables(fits() + l1, tmp_path, "lpips", ["lpips"], 0.05)
    table = (tmp_path / "alpha.md").read_text()
    assert "so far: 3" not in table and "| so far" not in table
    # A family measured at that rate with no α on target yet could still win: "so far".
    l1_off = [fit(0.2, image, 0.7, 0.1, family="l1_ssim") for image in "abc"]
    write_alpha_tables(fits() + l1_off, tmp_path, "lpips", ["lpips"], 0.05)
    assert (
        "| coolchic-v1 | 0.5 bpp | α 0.1 (as good: 0.01): 0.1500 | no α on target yet | "
        "so far: lc_ssim α 0.1 |" in (tmp_path / "alpha.md").read_text()
    )


def test_the_alpha_figure_draws_each_codec_and_family_from_the_table(tmp_path):
    from dashboards.figures import alpha_figure_metrics, draw_alpha

    columns = ["task", "bpp", "lpips", "psnr", "ms_ssim_db", "wd", "best", "as_good"]
    assert alpha_figure_metrics(columns) == ["lpips", "ms_ssim_db"]
    assert alpha_figure_metrics(["bpp", "ms_ssim_db", "psnr", "lpips", "best"]) == [
        "ms_ssim_db",
        "lpips",
    ]
    assert alpha_figure_metrics(["bpp", "psnr", "best"]) == ["psnr"]

    assert draw_alpha(tmp_path, tmp_path / "figures") is None  # not a search: no figure
    write_alpha_tables(fits(), tmp_path / "reports", "lpips", ["lpips", "psnr"], 0.05)
    path = draw_alpha(tmp_path, tmp_path / "figures")
    assert path.name == "alpha.png" and path.stat().st_size > 10_000
    grid = {"lc_ssim": [0.0, 0.01, 0.1, 0.3]}  # the best so far: an open star
    write_alpha_tables(fits(), tmp_path / "reports", "lpips", ["lpips"], 0.05, grid=grid)
    assert draw_alpha(tmp_path, tmp_path / "so-far").read_bytes() != path.read_bytes()
    # No α on target on every image yet: nothing at matched rate to draw.
    off_target = [fit(0.2, image, 0.60, 0.01) for image in "abc"] + [fit(0.1, "a", 0.5, 0.1)]
    off_target.append(fit(0.1, "b", 0.7, 0.1))
    write_alpha_tables(off_target, tmp_path / "reports", "lpips", ["lpips"], 0.05)
    assert draw_alpha(tmp_path, tmp_path / "other") is None

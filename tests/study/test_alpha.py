"""The α tables of a match-mode search, from its fits alone."""

import pytest

from study.results.alpha import alpha_rows, matched_fits, task_target, write_alpha_tables
from study.results.report import read_per_image_csv, write_reports

TASK = "coolchic-v1/lc_ssim/0.5bpp"


def fit(alpha, image, bpp, lpips, psnr=30.0, key=None):
    return {
        "search": TASK, "codec": "coolchic-v1", "loss_family": "lc_ssim", "alpha": alpha,
        "image": image, "bpp": bpp, "lpips": lpips, "psnr": psnr,
        "trial_key": key or f"{alpha}-{image}-{bpp}",
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
    published, zero = best[0]["vs_published"], best[0]["vs_zero"]
    assert best[0]["vs_published_alpha"] == 0.01  # the family's declared α
    assert published.mean == pytest.approx(0.04) and published.n == 3  # lower LPIPS: > 0
    assert published.t_low < 0.04 < published.t_high
    assert zero.mean == pytest.approx(0.06)


def test_an_alpha_off_target_on_some_image_cannot_be_best(tmp_path):
    records = fits() + [fit(0.2, image, 0.60, 0.01) for image in "abc"]  # 20 % above 0.5 bpp
    rows = alpha_rows(matched_fits(records, 0.05), "lpips", ["lpips"])
    off = next(r for r in rows if r["alpha"] == 0.2)
    assert off["on_target"] == 0 and not off["best"]
    assert next(r for r in rows if r["best"])["alpha"] == 0.1

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
    assert "α 0.01: +0.0400 [" in table and "n 3" in table


def test_the_alpha_figure_draws_each_codec_and_family_from_the_table(tmp_path):
    from dashboards.figures import draw_alpha

    assert draw_alpha(tmp_path, tmp_path / "figures") is None  # not a search: no figure
    write_alpha_tables(fits(), tmp_path / "reports", "lpips", ["lpips", "psnr"], 0.05)
    path = draw_alpha(tmp_path, tmp_path / "figures")
    assert path.name == "alpha.png" and path.stat().st_size > 10_000

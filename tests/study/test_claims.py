"""The paper's claims, judged on a study's records by one rule (study/results/claims*.py)."""

import csv
from dataclasses import replace
from pathlib import Path

import pytest

from study.results.claims import FAILS, HOLDS, UNDECIDED, UNTESTABLE, judge, judge_claims
from study.results.claims_file import ClaimsFileError, load_claims
from study.results.claims_report import write_claims
from study.results.claims_without import judge_without_each_image
from study.results.report import read_per_image_csv

ROOT = Path(__file__).parents[2]
# The published COOL-CHIC v1 study: 160 fits on 8 Kodak crops, JPEG and AVIF on the same crops.
V1_STUDY = ROOT / "results" / "icip24-cpu" / "reports" / "per_image.csv"
# COOL-CHIC v2 on the same crops (growing: read on the three complete since 2026-12-07), and
# the three crop studies combined.
V2_STUDY = ROOT / "results" / "icip24-v2-crops" / "reports" / "per_image.csv"
V2_WHOLE = ("kodim01", "kodim04", "kodim07")
CROPS_CODECS = ROOT / "results" / "icip24-crops-codecs" / "reports" / "per_image.csv"


@pytest.fixture(scope="module")
def v1_verdicts():
    return {v.claim.id: v for v in judge_claims(read_per_image_csv(V1_STUDY))[1]}


def test_the_packaged_claims_name_known_codecs_losses_and_metrics():
    source, claims = load_claims()
    assert "ICIP 2024" in source
    assert {c.codec for c in claims} == {"coolchic-v1", "coolchic-v2", "nif"}
    assert all(c.checks and c.says for c in claims)


@pytest.mark.parametrize(
    ("expect", "low", "high", "verdict"),
    [
        ("better", 0.5, 9.0, HOLDS),  # clear of zero, ahead
        ("better", -9.0, -0.5, FAILS),  # behind
        ("better", -2.0, 3.0, FAILS),  # inside ±5: on par, not better
        ("better", -2.0, 9.0, UNDECIDED),
        ("worse", -9.0, -0.5, HOLDS),
        ("worse", 0.5, 9.0, FAILS),
        ("on_par", -4.0, 4.9, HOLDS),
        ("on_par", 5.5, 9.0, FAILS),  # wholly beyond the margin
        ("on_par", 1.0, 9.0, UNDECIDED),
        ("not_better", -30.0, 3.0, HOLDS),  # at most 3 ahead: inside the margin
        ("not_better", 6.0, 9.0, FAILS),
        ("not_better", -1.0, 9.0, UNDECIDED),
        ("not_worse", -3.0, 30.0, HOLDS),
        ("not_worse", -9.0, -6.0, FAILS),
    ],
)
def test_a_line_is_judged_on_its_interval_and_the_margin(expect, low, high, verdict):
    assert judge(expect, low, high, margin=5.0) == verdict


def test_v1_claims_are_judged_as_the_published_study_reads_them(v1_verdicts):
    # Claim 5 of results/README.md: L1 + SSIM loses 0.91 dB [0.53, 1.30] of PSNR at 2 bpp.
    ssim_psnr = v1_verdicts["v1-ssim-psnr"]
    assert ssim_psnr.outcome == "does not hold"
    [line] = [
        x
        for x in ssim_psnr.lines
        if x.loss == "l1_ssim(0.2)" and x.by == "equal_rate" and x.rate == 0.004
    ]
    assert line.verdict == FAILS and line.why == "behind"
    assert line.summary["n"] == 6 and -1.31 < line.summary["t_low"] < line.summary["t_high"] < -0.52
    # Claim 1: neither LogCosh's closeness nor MSE's lead can be told apart with 8 images.
    assert v1_verdicts["v1-psnr"].outcome == "undecided"
    # Claim 4: AVIF ahead of every loss in PSNR, each on all 8 images' BD-rates.
    avif = [x for x in v1_verdicts["v1-avif"].lines if x.metric == "psnr"]
    assert len(avif) == 5 and {x.verdict for x in avif} == {HOLDS}
    # An L1 + SSIM BD-rate in LPIPS needs curves that overlap: MSE's and its barely do.
    lpips = v1_verdicts["v1-lpips"].lines
    [bd] = [
        x for x in lpips if x.loss == "l1_ssim(0.2)" and x.against == "mse" and x.by == "bd_rate"
    ]
    assert bd.verdict == UNTESTABLE and bd.summary is None
    # At 0.27 bpp JPEG's sweep reaches down to it on 5 of the 8 crops, and the line says so.
    jpeg = [x for x in lpips if x.against == "jpeg" and x.loss == "lc_ssim(0.01)"]
    [low] = [x for x in jpeg if x.rate == 0.004]
    assert (low.summary["n"], low.summary["compared"]) == (5, 8) and low.verdict == HOLDS


@pytest.fixture(scope="module")
def v1_without(v1_verdicts):
    return judge_without_each_image(read_per_image_csv(V1_STUDY), list(v1_verdicts.values()))


def test_a_verdict_is_judged_again_without_each_image(v1_verdicts, v1_without):
    assert sorted(v1_without.judged) == [
        "kodim01", "kodim04", "kodim07", "kodim10", "kodim13", "kodim16", "kodim19", "kodim22",
    ]  # fmt: skip
    # L1 + SSIM's PSNR loss against MSE stands without any one crop.
    assert v1_without.outcome_changes(v1_verdicts["v1-ssim-psnr"]) == []
    # kodim01 alone keeps the PSNR claim undecided: LogCosh's and LogCosh + SSIM's BD-rates.
    assert v1_without.outcome_changes(v1_verdicts["v1-psnr"]) == [("kodim01", "holds in part")]
    # LogCosh + SSIM's MS-SSIM lead at 0.27 bpp (+0.92 dB [+0.06, +1.79]) holds on the eight
    # crops; without any one of five of them the interval reaches past zero.
    [line] = [
        x
        for x in v1_verdicts["v1-ms-ssim"].lines
        if x.loss == "lc_ssim(0.01)" and x.by == "equal_rate" and x.rate == 0.004
    ]
    assert line.verdict == HOLDS
    changes = v1_without.line_changes(line)
    assert [image for image, _ in changes] == [
        "kodim01",
        "kodim10",
        "kodim13",
        "kodim19",
        "kodim22",
    ]
    assert {verdict for _, verdict in changes} == {UNDECIDED}


def test_an_equal_rate_line_is_judged_again_at_its_own_setting():
    # v2's MS-SSIM-against-AVIF claim looks at 0.9-2 bpp. Without kodim01, MSE's λ 5e-4 fits
    # average 0.85 bpp and its λ 1e-4 ones come into the range: judged by the range again, the
    # line would change setting, not evidence. It is judged at λ 5e-4 still, on two crops.
    records = [r for r in read_per_image_csv(V2_STUDY) if r["image"] in V2_WHOLE]
    verdicts = judge_claims(records)[1]
    [claim] = [v for v in verdicts if v.claim.id == "v2-ms-ssim-avif"]
    [line] = [x for x in claim.lines if x.loss == "mse" and x.rate == 0.0005]
    assert line.verdict == HOLDS and line.summary["n"] == 3
    without = judge_without_each_image(records, verdicts)
    assert ("kodim01", UNDECIDED) in without.line_changes(line)
    others = [r for r in records if r["image"] != "kodim01"]
    by_range = {v.claim.id: v for v in judge_claims(others)[1]}["v2-ms-ssim-avif"]
    assert 0.0005 not in {x.rate for x in by_range.lines if x.loss == "mse"}


def test_claims_of_several_codecs_keep_their_own_numbers(v1_verdicts):
    # The three crop studies combined: v1's lines there are v1's alone, although v2's claims
    # make the same comparisons (loss, anchor, metric) on v2's curves.
    combined = {v.claim.id: v for v in judge_claims(read_per_image_csv(CROPS_CODECS))[1]}
    for claim, verdict in v1_verdicts.items():
        alone = [(x.loss, x.against, x.metric, x.rate, x.verdict) for x in verdict.lines]
        assert [
            (x.loss, x.against, x.metric, x.rate, x.verdict) for x in combined[claim].lines
        ] == alone
        means = [x.summary and x.summary["mean"] for x in combined[claim].lines]
        assert means == [x.summary and x.summary["mean"] for x in verdict.lines]
    assert {x.codec for x in combined["v2-psnr"].lines} == {"coolchic-v2"}


def test_fewer_than_three_images_have_nothing_to_leave_out(v1_verdicts, tmp_path):
    two = [r for r in read_per_image_csv(V1_STUDY) if r["image"] in ("kodim01", "kodim04")]
    verdicts = judge_claims(two)[1]
    assert judge_without_each_image(two, verdicts).judged == {}
    write_claims(two, tmp_path)
    assert "without one image" not in (tmp_path / "claims.md").read_text().lower()


def test_claims_report_lists_every_claim_and_line(tmp_path):
    written = write_claims(read_per_image_csv(V1_STUDY), tmp_path)
    assert sorted(p.name for p in written) == ["claims.csv", "claims.md"]
    page = (tmp_path / "claims.md").read_text()
    assert "| [v1-ssim-psnr](#v1-ssim-psnr) | conclusion |" in page
    assert "**does not hold**" in page and "±0.01 LPIPS" in page
    assert "| **undecided** | 0 / 0 / 4 / 0 | kodim01 → holds in part |" in page
    with (tmp_path / "claims.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert {r["claim"] for r in rows} == {
        "v1-psnr", "v1-ms-ssim", "v1-lpips", "v1-avif", "v1-ssim-psnr",
    }  # fmt: skip
    assert all(r["verdict"] in (HOLDS, FAILS, UNDECIDED, UNTESTABLE) for r in rows)
    assert {r["outcome_without_one_image"] for r in rows if r["claim"] == "v1-psnr"} == {
        "kodim01 → holds in part"
    }
    [row] = [
        r
        for r in rows
        if r["claim"] == "v1-ms-ssim" and r["loss"] == "lc_ssim(0.01)" and r["rate"] == "0.004"
    ]
    assert row["codec"] == "coolchic-v1" and row["verdict_without_one_image"] == (
        "kodim01 → undecided; kodim10 → undecided; kodim13 → undecided; kodim19 → undecided; "
        "kodim22 → undecided"
    )


def test_what_a_study_lacks_is_said_not_dropped():
    # Without JPEG, the LPIPS claim's JPEG half is untested, not passed over.
    records = [r for r in read_per_image_csv(V1_STUDY) if r["codec"] != "jpeg"]
    lpips = {v.claim.id: v for v in judge_claims(records)[1]}["v1-lpips"]
    untested = [x for x in lpips.lines if x.against == "jpeg"]
    assert untested and {x.why for x in untested} == {"this study holds no jpeg curve"}
    assert {x.verdict for x in untested} == {UNTESTABLE}
    assert lpips.outcome == "mixed"  # as before: the MSE lines decide it


def test_a_study_no_claim_speaks_of_gets_no_claims_page(tmp_path):
    classical_only = [r for r in read_per_image_csv(V1_STUDY) if r["loss"] is None]
    assert write_claims(classical_only, tmp_path) == []
    assert not (tmp_path / "claims.md").exists()


GOOD_CHECK = "{by: bd_rate, losses: [logcosh], against: mse, metrics: [psnr], expect: on_par}"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("claims: [\n", "cannot be read as YAML"),
        ("- 1\n", "exactly the keys"),
        (f"source: s\nclaims:\n  - {{id: a, codec: jpeg, says: x, checks: [{GOOD_CHECK}]}}\n",
         "no INR codec"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [mse], against: l1, metrics: [psnr], expect: best}]}\n",
         "'expect' one of"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [mse], against: l1, metrics: [bpp], expect: better}]}\n",
         "metric 'bpp' has no BD-rate"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [nonsense], against: l1, metrics: [psnr], expect: better}]}\n",
         "unknown"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [mse], against: l1, metrics: [psnr], expect: better, "
         "bpp: [0, 1]}]}\n",
         "at equal rate only"),
        (f"source: s\nclaims:\n  - {{id: a, codec: nif, says: x, checks: [{GOOD_CHECK}]}}\n"
         f"  - {{id: a, codec: nif, says: y, checks: [{GOOD_CHECK}]}}\n",
         "appears twice"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: equal_rate, losses: [mse], against: l1, metrics: [psnr], expect: better, "
         "bpp: [yes, 2]}]}\n",
         "low < high"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: equal_rate, losses: [mse], against: l1, metrics: [psnr], expect: better, "
         "bpp: [2, 1]}]}\n",
         "low < high"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [mse, mse], against: l1, metrics: [psnr], expect: better}]}\n",
         "twice"),
        ("source: s\nclaims:\n  - {id: a, codec: nif, says: x, checks: "
         "[{by: bd_rate, losses: [mse], against: null, metrics: [psnr], expect: better}]}\n",
         "'against' is a loss spec"),
    ],
)  # fmt: skip
def test_a_bad_claims_file_is_refused_naming_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "claims.yaml"
    path.write_text(text)
    with pytest.raises(ClaimsFileError, match=problem) as error:
        load_claims(path)
    assert str(path) in str(error.value)


def test_a_claim_holds_only_where_every_line_with_something_to_compare_holds():
    from study.results.claims import Line, Verdict

    _, claims = load_claims()
    line = Line("c", "nif", "mse", "jpeg", "lpips", "equal_rate", "better", summary=None)

    def outcome(*verdicts):
        return Verdict(claims[0], tuple(replace(line, verdict=v) for v in verdicts)).outcome

    assert outcome(HOLDS, HOLDS) == "holds"
    assert outcome(HOLDS, UNTESTABLE) == "holds where testable"
    assert outcome(HOLDS, UNDECIDED) == "holds in part"
    assert outcome(HOLDS, UNDECIDED, UNTESTABLE) == "holds in part where testable"
    assert outcome(HOLDS, FAILS) == "mixed"
    assert outcome(FAILS, UNDECIDED, UNTESTABLE) == "does not hold"
    assert outcome(UNDECIDED) == "undecided"
    assert outcome(UNTESTABLE) == "not testable here"


def test_a_rate_range_no_setting_falls_in_is_shown_untested(tmp_path):
    path = tmp_path / "claims.yaml"
    path.write_text(
        "source: s\nclaims:\n  - {id: low, codec: coolchic-v1, says: x, checks: "
        "[{by: equal_rate, losses: [lc_ssim], against: jpeg, metrics: [lpips], "
        "bpp: [null, 0.01], expect: better}]}\n"
    )
    [verdict] = judge_claims(read_per_image_csv(V1_STUDY), path)[1]
    [line] = verdict.lines
    assert line.verdict == UNTESTABLE and "bpp range" in line.why
    assert verdict.outcome == "not testable here"

"""A curve's label, written and read in one place (study/results/labels.py)."""

import pytest

from study.results.labels import curve_label, label_parts, record_label


@pytest.mark.parametrize(
    ("record", "label", "parts"),
    [
        ({"codec": "jpeg", "loss": None}, "jpeg", ("jpeg", "")),
        ({"codec": "avif"}, "avif", ("avif", "")),  # a classical record may carry no loss
        ({"codec": "webp", "loss": ""}, "webp", ("webp", "")),  # nor an empty one
        (
            {"codec": "c3", "loss": "l1:0.8+ssim:0.2"},
            "c3__l1:0.8+ssim:0.2",
            ("c3", "l1:0.8+ssim:0.2"),
        ),
        (
            {"codec": "coolchic-v1", "loss": "lc_ssim(0.01)"},
            "coolchic-v1__lc_ssim(0.01)",
            ("coolchic-v1", "lc_ssim(0.01)"),
        ),
    ],
)
def test_a_curve_label_reads_back_as_its_codec_and_loss(record, label, parts):
    assert record_label(record) == label
    assert label_parts(label) == parts
    assert curve_label(*parts) == label

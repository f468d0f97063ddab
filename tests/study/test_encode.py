"""``inr-study encode``'s defaults: a quick preset, the GPU when there is one, and a time estimate
measured on the first fitting steps."""

import json

import torch

from inr_models import get_codec_class
from study.commands import encode


def _defaults(codec: str):
    return encode.build_parser(get_codec_class(codec)).parse_args(["a.png", "-o", "a.inr"])


def test_each_codec_defaults_to_its_quick_preset_on_the_device_torch_sees():
    presets = {codec: _defaults(codec).preset for codec in ("c3", "coolchic-v2", "nif")}
    # The declared quick presets, not the papers' 110,000 and 9,100 iterations; NIF's own is short.
    assert presets == {"c3": "short", "coolchic-v2": "short", "nif": "paper"}
    assert _defaults("c3").device == "auto"


def test_encode_says_how_long_the_fit_will_take(crop64, write_png, tmp_path, capsys):
    image = write_png(crop64, "crop.png")
    argv = [str(image), "-o", str(tmp_path / "crop.inr"), "--preset", "debug", "--quiet",
            "--no-optional-metrics", "--threads", "1"]  # fmt: skip
    assert encode.main(argv) == 0
    captured = capsys.readouterr()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    assert json.loads(captured.out)["device"] == device
    lines = captured.err.splitlines()
    assert f"c3: loss mse, λ 0.001, preset debug (40 iterations), seed 0 on {device}" in lines[0]
    [estimate] = [line for line in lines if "of fitting" in line]
    assert estimate.startswith("c3: about ") and ": 40 iterations × " in estimate
    assert estimate.endswith(f" s per iteration, as measured on {device}")

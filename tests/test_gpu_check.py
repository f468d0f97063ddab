"""The GPU check script, rehearsed on this machine's CPU: every step writes its file."""

import json
from pathlib import Path

import pytest

from tests.conftest import KODAK_MIRROR

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_gpu_check_rehearses_on_the_cpu(tmp_path, monkeypatch):
    if KODAK_MIRROR is None:
        pytest.skip("needs a local Kodak folder")
    # In this process (its workers import the script by name, as they do when it runs alone).
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_check

    out = tmp_path / "out"
    argv = ["--kodak", str(KODAK_MIRROR), "--out", str(out), "--rehearse", "--minutes", "0.5"]
    assert gpu_check.main(argv) == 0
    for name in ("environment", "correctness", "speed", "packing", "batching", "trials"):
        content = json.loads((out / f"{name}.json").read_text())
        assert "error" not in content, content
    correctness = json.loads((out / "correctness.json").read_text())
    for row in correctness:
        if row["codec"] != "nif":  # NIF's float decode has a documented tolerance
            assert row["decoded_on_cpu_identical"], row
    batching = json.loads((out / "batching.json").read_text())
    rows = {(r["codec"], r["processes"], r["batch"]) for r in batching["rows"]}
    assert {("coolchic-v2", 1, 2), ("c3", 2, 2)} <= rows
    assert set(batching["paper_design_gpu_hours"]) == {"coolchic-v1", "coolchic-v2"}
    packing = json.loads((out / "packing.json").read_text())
    assert packing["packed_files_equal_the_single_trial"], packing  # seeded, 1 thread each
    [trial] = json.loads((out / "trials.json").read_text())  # the budget allows one
    assert (out / "trials" / trial["file"]).exists()
    environment = json.loads((out / "environment.json").read_text())
    assert set(environment["pretrained_unavailable"].values()) == {None}  # make setup's weights
    assert 0 < trial["lpips"] < 1

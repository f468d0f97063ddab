"""A published copy (``results/NAME``: its config, ``trials.jsonl``, reports, files; no MLflow
store) is not a study folder: every command that works on a study's store refuses it, writing
nothing in it, and says how to recreate one."""

import shutil
from pathlib import Path

from study.cli import main

PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "icip24-cpu"


def test_commands_on_a_study_store_refuse_a_published_copy(tmp_path, capsys):
    # A copy, so that a store wrongly opened in it would show, outside the repository.
    published = tmp_path / PUBLISHED.name
    published.mkdir()
    for name in ("study.yaml", "trials.jsonl"):
        shutil.copy(PUBLISHED / name, published)
    out = tmp_path / "out"
    for command in (
        ["run", str(published / "study.yaml"), "--storage", str(tmp_path)],
        ["mlflow", str(published), "--no-serve"],
        ["resume", str(published)],
        ["rescore", str(published)],
        ["export", str(published), "-o", str(out)],
        ["import", str(published), str(tmp_path)],
    ):
        assert main(command) == 2, command
        error = capsys.readouterr().err
        assert f"{published}: a published study keeps no MLflow store" in error, error
        assert f"recreate it first: inr-study rebuild {published} --storage DIR" in error
    assert sorted(p.name for p in published.iterdir()) == ["study.yaml", "trials.jsonl"]
    assert not out.exists()

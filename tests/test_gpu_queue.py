"""The GPU queue rehearsed on this machine's CPU: prepared, run by its script as the lent machine
would run it, imported, and then found done."""

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

from study.engine.package import FAILED_DIR
from study.engine.tracking import study_store
from study.layout import load_study_config

ROOT = Path(__file__).resolve().parents[1]
SMALL_IMAGES = {"dataset": "kodak", "subset": ["kodim01", "kodim23"], "crop": 64}


@pytest.mark.slow
def test_the_gpu_queue_rehearses_on_the_cpu(
    tmp_path, study_env, small_config, write_config, capsys, monkeypatch
):
    jpeg = [{"name": "jpeg", "qualities": [30, 80]}]
    # LPIPS measured: the machine is sent no weights for it, so import measures it here.
    config = write_config(small_config(codecs=jpeg, optional_metrics=True))
    # Another study with the same trials (as the crop studies share their anchors).
    other = write_config(
        small_config(name="other", codecs=jpeg, images=SMALL_IMAGES, optional_metrics=True)
    )
    queue = tmp_path / "queue.yaml"
    entries = [
        {"config": str(config), "where": "image=kodim23", "published": str(tmp_path / "pub")},
        {"config": str(config), "published": str(tmp_path / "pub")},
        {"config": str(other), "where": "image=kodim23", "published": str(tmp_path / "pub2")},
    ]
    entries[2]["stow"] = True  # as the full-size entries: its files go to git history
    queue.write_text(yaml.safe_dump(entries))
    work, out, storage = tmp_path / "gpu-work", tmp_path / "out", tmp_path / "studies"

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))  # as the GPU check's test loads it
    import gpu_queue

    def queue_command(*args: str) -> str:  # in this process: no second start of the stack
        gpu_queue.main(["--queue", str(queue), "--failures", str(tmp_path / "failed.jsonl"), *args])
        done = capsys.readouterr()
        return done.out + done.err

    prepared = queue_command(
        "prepare", "--work", str(work), "--rehearse", "--minutes", "2", "--storage", str(storage)
    )
    # The second entry leaves out what the first queued; the other study gets its own trials.
    assert "00-small: 2 trials" in prepared and "01-small: 2 trials" in prepared, prepared
    assert "02-other: 2 trials" in prepared, prepared
    out.mkdir()
    # Two fits trained together per process, as a GPU check that finds batching pays sets it.
    rehearsal = {**study_env, "INSTALL": "0", "PYTHON": sys.executable, "DEVICE": "cpu"}
    rehearsal["BATCH"] = "2"
    rehearsal["OUT"] = str(out)
    subprocess.run(["bash", str(work / "run.sh")], cwd=ROOT, env=rehearsal, check=True)
    assert sorted(p.name for p in out.glob("*.tar")) == [
        "00-small-pack-0.tar", "01-small-pack-0.tar", "02-other-pack-0.tar",
    ]  # fmt: skip
    # Where the files that come back would be more than the device tool returns, none starts.
    full = tmp_path / "full"
    full.mkdir()
    for number in range(gpu_queue.RETURNED_FILES - 1):  # environment.json makes it full
        (full / f"earlier-{number}").touch()
    subprocess.run(["bash", str(work / "run.sh")], cwd=ROOT, env={**rehearsal, "OUT": str(full)},
                   check=True)  # fmt: skip
    assert len(list(full.iterdir())) == gpu_queue.RETURNED_FILES and not list(full.glob("*.tar"))
    imported = queue_command("import", str(out), "--storage", str(storage))
    assert "4 trials imported from 2 archives" in imported, imported
    assert "2 trials imported from 1 archives" in imported, imported
    assert imported.count("inr-study stow") == 1 and f"stow {tmp_path / 'pub2'}" in imported
    # No weights travel for these losses: LPIPS of every trial is measured here, from its file.
    assert "weights: none carried" in prepared, prepared
    assert imported.count("metric values measured here") == 2, imported
    for name, trials in (("small", 4), ("other", 2)):
        folder = storage / name
        assert len(study_store(folder, load_study_config(folder)).finished_keys()) == trials
    again = queue_command("prepare", "--work", str(work), "--rehearse", "--storage", str(storage))
    assert again.count("every selected trial is already done") == 3, again
    assert "nothing to queue: every entry is done" in again, again

    # A package whose every fit failed there sends back only their traces: each is named, the
    # study is left as it was, and the import says it recorded nothing.
    failed = tmp_path / "failed"
    failed.mkdir()
    with tarfile.open(failed / "02-other-pack-0.tar", "w") as archive:
        trace = b"Traceback (most recent call last):\ntorch.OutOfMemoryError: CUDA out of memory"
        member = tarfile.TarInfo(f"{FAILED_DIR}/0123abcd.txt")
        member.size = len(trace)
        archive.addfile(member, io.BytesIO(trace))
    back = ["--queue", str(queue), "--failures", str(tmp_path / "failed.jsonl")]
    back += ["import", str(failed), "--storage", str(storage)]
    assert gpu_queue.main(back) == 1
    printed = capsys.readouterr().out
    assert f"failed there: {failed}/02-other-pack-0.tar:{FAILED_DIR}/0123abcd.txt: " in printed
    assert "torch.OutOfMemoryError: CUDA out of memory" in printed
    assert "no trial results in" in printed


def _failed_archive(folder: Path, key: str, error: str, run: str) -> Path:
    """What a lent machine sends back for a package whose one fit failed there."""
    folder.mkdir()
    environment = {"gpu": "NVIDIA H100 80GB HBM3", "run": run}
    (folder / "environment.json").write_text(json.dumps(environment))
    with tarfile.open(folder / "00-small-pack-0.tar", "w") as archive:
        trace = f"Traceback (most recent call last):\n{error}".encode()
        member = tarfile.TarInfo(f"{FAILED_DIR}/{key}.txt")
        member.size = len(trace)
        archive.addfile(member, io.BytesIO(trace))
    return folder


def test_a_trial_that_failed_in_two_runs_is_left_out(
    tmp_path, study_env, small_config, write_config, capsys, monkeypatch
):
    config = write_config(small_config(codecs=[{"name": "jpeg", "qualities": [30, 80]}]))
    queue = tmp_path / "queue.yaml"
    queue.write_text(yaml.safe_dump([{"config": str(config), "published": str(tmp_path / "pub")}]))
    ledger, work, storage = tmp_path / "failed.jsonl", tmp_path / "gpu-work", tmp_path / "studies"
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_queue

    from study.engine.package import read_package

    def queue_command(*args: str) -> str:
        gpu_queue.main(["--queue", str(queue), "--failures", str(ledger), *args])
        return capsys.readouterr().out

    def prepare(*args: str) -> str:
        return queue_command("prepare", "--work", str(work), "--rehearse", "--storage",
                             str(storage), *args)  # fmt: skip

    assert "00-small: 4 trials" in prepare()
    key = read_package(work / "packages" / "00-small").trials[0].key
    error = "RuntimeError: no kernel image is available for execution on the device"
    first = _failed_archive(tmp_path / "first", key, error, run="a" * 32)
    imported = queue_command("import", str(first), "--storage", str(storage))
    assert f"1 failed fits added to {ledger}" in imported, imported
    # The same run imported again counts once.
    assert "failed fits added" not in queue_command("import", str(first), "--storage", str(storage))
    assert "00-small: 4 trials" in prepare()
    # Another run, sending back the very same trace, counts again.
    second = _failed_archive(tmp_path / "second", key, error, run="b" * 32)
    queue_command("import", str(second), "--storage", str(storage))
    lines = [json.loads(line) for line in ledger.read_text().splitlines()]
    assert [(e["key"], e["run"], e["machine"]) for e in lines] == [
        (key, run, "NVIDIA H100 80GB HBM3") for run in ("a" * 32, "b" * 32)
    ]
    given_up = prepare()
    assert "small: 1 left out, each failed in 2 or more runs there" in given_up, given_up
    assert f"{key}: failed in 2 runs; last: {error}" in given_up
    assert "00-small: 3 trials" in given_up
    assert key not in {spec.key for spec in read_package(work / "packages" / "00-small").trials}
    assert "00-small: 4 trials" in prepare("--retry-failed")

    ledger.write_text(ledger.read_text() + "\n")  # a blank line is no damage
    assert "00-small: 3 trials" in prepare()
    ledger.write_text('{"study": "small", "key": 1}\n')
    with pytest.raises(SystemExit, match=r"failed\.jsonl:1: not a failure line"):
        prepare()


def test_the_carry_budget_counts_a_shared_weight_file_once(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    from gpu_queue import CarryBudget

    shared, other = tmp_path / "vgg16.part0", tmp_path / "alexnet.part0"
    shared.write_bytes(bytes(40))
    other.write_bytes(bytes(40))
    budget = CarryBudget(100)
    assert budget.cost(30, {shared}) == 70
    budget.take(30, {shared})
    # A second package training with the same network adds only its own bytes ...
    assert budget.cost(10, {shared}) == 10
    budget.take(10, {shared})
    # ... one with another network adds that network's file, here past what is left (20).
    assert budget.cost(10, {shared, other}) == 50 > budget.left == 20


def test_every_queued_study_is_published_where_git_keeps_it(monkeypatch):
    """A copy published into a git-ignored folder is lost at the commit, and with it the trials a
    lent machine ran (``.gitignore`` keeps study outputs local except the published ones)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_queue

    records = sorted({f"{entry['published']}/trials.jsonl" for entry in gpu_queue.load_queue()})
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *records], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == []

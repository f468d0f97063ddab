"""Studies that travel: shard a study, run its parts anywhere with `work`, import them; keep a
published study's files and rebuild it from them."""

import csv
import io
import json
import re
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from study.cli import main
from study.config import load_config
from study.engine.package import (
    FAILED_DIR,
    MAX_TRACE_BYTES,
    RESULT_FILE,
    TRIALS_DIR,
    fit_summary,
    read_package,
)
from study.engine.sharding import ShardError, shard
from study.engine.tracking import study_store
from study.layout import REPORTS_DIR, load_study_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SLURM_SCRIPT = ROOT / "study" / "cluster" / "slurm-work.sbatch"
# Measurements of an execution, not of a trial's outcome: two runs of one trial differ in them.
MEASURED_COLUMNS = {"encode_seconds", "decode_seconds", "peak_memory_mb"} | {
    f"encode_seconds_{part}" for part in ("median", "min", "max")
}  # budgets.csv's wall times
MEASURED_KEYS = {"encoding_time", "decoding_time"}


def records(folder: Path) -> dict[str, dict]:
    store = study_store(folder, load_study_config(folder))
    return {record["trial_key"]: record for record in store.records()}


def outcome(record: dict) -> dict:
    """What a trial computed (rate and quality), without what its execution measured."""
    return {k: record.get(k) for k in ("bpp", "bytes", "psnr", "ssim", "ms_ssim", "lpips")}


def report_without_measurements(path: Path) -> str:
    """A report file as text, the measured columns (CSV) and keys (JSON) left out."""
    if path.suffix == ".csv":
        rows = list(csv.DictReader(path.open()))
        return json.dumps([{k: v for k, v in r.items() if k not in MEASURED_COLUMNS} for r in rows])
    if path.suffix == ".json":
        document = json.loads(path.read_text())
        for key in MEASURED_KEYS:
            document.get("results", {}).pop(key, None)
        return json.dumps(document)
    # A markdown table's budget section states wall times (budgets.md, under bd_rate_codecs.md).
    return path.read_text().split("Budget per fit")[0]


def test_parts_run_anywhere_then_import_and_resume_like_ray(
    tmp_path, study_env, small_config, write_config, capsys
):
    config_path = write_config(small_config(seeds=[3]))
    packages, work = tmp_path / "packages", tmp_path / "work"
    assert main(["shard", str(config_path), "-o", str(packages), "--parts", "3"]) == 0
    assert sorted(p.name for p in packages.iterdir()) == ["part-0", "part-1", "part-2"]

    # Part 0 as a Slurm array task would run it (the script, by index, no Slurm).
    environment = {**study_env, "SLURM_ARRAY_TASK_ID": "0", "INR_STUDY_CONCURRENT": "2"}
    environment["INR_STUDY"] = str(Path(sys.executable).parent / "inr-study")
    subprocess.run(
        ["bash", str(SLURM_SCRIPT), str(packages), str(work)], env=environment, check=True
    )
    # Part 1 in a process that must import neither Ray nor MLflow.
    check = (
        "import sys; from study.cli import main; "
        f"code = main(['work', {str(packages / 'part-1')!r}, '-o', {str(work / 'part-1')!r}]); "
        "assert not {'ray', 'mlflow'} & set(sys.modules), 'work imported Ray or MLflow'; "
        "sys.exit(code)"
    )
    subprocess.run([sys.executable, "-c", check], env=study_env, check=True)
    # Part 2 is left to the study's own driver.
    assert main(["work", str(packages / "part-2"), "-o", str(work / "part-2"), "--pack"]) == 0
    capsys.readouterr()
    # A rerun finds every trial done.
    # Each codec's trials on an image in one part while the parts stay even (three trials at
    # most): COOL-CHIC's on kodim01 in part 0, on kodim23 in part 1, JPEG's on kodim01 in part 2;
    # JPEG's two on kodim23 split between parts 0 and 1.
    assert main(["work", str(packages / "part-1"), "-o", str(work / "part-1")]) == 0
    assert "0 trials finished now, 3 earlier" in capsys.readouterr().out

    imported = tmp_path / "imported" / "small"
    args = ["import", str(imported), str(work / "part-0"), str(work / "part-1")]
    assert main([*args, "--config", str(config_path)]) == 0
    assert "6 trials imported" in capsys.readouterr().out
    # Resuming runs only what no imported part brought, on Ray; here only JPEG's at quality 30
    # (part 2 holds its kodim01 trial), scheduled anew: kept in the folder's config.
    picked = ["--where", "codec=jpeg,rate=30", "--max-concurrent", "1"]
    assert main(["resume", str(imported), *picked]) == 0
    assert "2 trials (picked of 8), 1 already finished, 1 to run" in capsys.readouterr().out
    assert "max_concurrent: 1\n" in (imported / "study.yaml").read_text()
    # Part 2's results now repeat a trial the study has: refused, nothing written.
    assert main(["import", str(imported), str(work / "part-2" / "pack-0.tar")]) == 2
    error = capsys.readouterr().err
    assert error.count("already recorded in this study") == 1 and "nothing imported" in error
    # A growing work output is imported again and again: what the study holds is left out.
    again = [str(work / "part-2" / "pack-0.tar"), str(work / "part-0"), "--skip-recorded"]
    assert main(["import", str(imported), *again]) == 0  # the last trial: reports complete
    assert "1 trials imported, 4 already recorded left out" in capsys.readouterr().out

    # The same study run by Ray alone: the same trials, the same figures, the same reports.
    assert main(["run", str(config_path)]) == 0
    by_ray = tmp_path / "studies" / "small"
    ours, theirs = records(imported), records(by_ray)
    assert ours.keys() == theirs.keys() and len(ours) == 8
    for key in ours:
        assert outcome(ours[key]) == outcome(theirs[key]), ours[key]["codec"]
    names = sorted(p.name for p in (by_ray / REPORTS_DIR).iterdir())
    assert names == sorted(p.name for p in (imported / REPORTS_DIR).iterdir())
    for name in names:  # equal to the byte, the measured times left out
        ray_file, imported_file = by_ray / REPORTS_DIR / name, imported / REPORTS_DIR / name
        assert report_without_measurements(ray_file) == report_without_measurements(
            imported_file
        ), name


def test_work_fits_a_batch_together_and_records_each_trial(
    tmp_path, small_config, write_config, study_env, capsys
):
    config = small_config()
    config["images"]["subset"] = ["kodim01"]
    config_path = write_config(config)
    assert main(["shard", str(config_path), "-o", str(tmp_path / "p")]) == 0
    out = tmp_path / "w"
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(out), "--batch", "2"]) == 0
    assert "4 trials finished now" in capsys.readouterr().out
    results = [json.loads(p.read_text()) for p in (out / TRIALS_DIR).glob(f"*/{RESULT_FILE}")]
    # Each codec's two trials ran as one batch: COOL-CHIC's fits trained together.
    assert sorted(r["spec"]["codec"] for r in results) == ["coolchic-v1"] * 2 + ["jpeg"] * 2
    assert {r["provenance"]["fit_batch"] for r in results} == {2}
    # Where it ran names the CPU and whether it has AVX-512 (numpy's arithmetic can differ there).
    assert all(re.search(r"\((no )?AVX-512\)$", r["provenance"]["device_name"]) for r in results)
    fits = [r for r in results if r["spec"]["codec"] == "coolchic-v1"]
    assert {r["metrics"]["fit_batch"] for r in fits} == {2}
    folder = str(tmp_path / "s" / "small")
    assert main(["import", folder, str(out), "--config", str(config_path), "--no-report"]) == 0


def test_import_names_the_fits_that_failed_and_a_rerun_retries_them(
    tmp_path, small_config, write_config, study_env, capsys
):
    config = small_config(
        plugins=["diverging_codec"],
        codecs=[
            {"name": "jpeg", "qualities": [50]},
            {"name": "always-diverges", "qualities": [50]},
        ],
    )
    config["images"]["subset"] = ["kodim01"]
    config_path = write_config(config)
    assert main(["shard", str(config_path), "-o", str(tmp_path / "p")]) == 0
    out = tmp_path / "w"
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(out)]) == 1
    (trace,) = (out / FAILED_DIR).iterdir()
    capsys.readouterr()

    folder = str(tmp_path / "s" / "small")
    assert main(["import", folder, str(out), "--config", str(config_path), "--no-report"]) == 0
    printed = capsys.readouterr()
    assert "1 trials imported" in printed.out
    assert "1 fit failed there, with nothing to import" in printed.err
    assert f"{trace}: inr_models.base.DivergedError: loss became NaN" in printed.err
    # The rerun retries it (and fails again): its trace is the one left.
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(out), "--pack"]) == 1
    assert "0 trials finished now, 1 earlier, 1 failed" in capsys.readouterr().out
    assert list((out / FAILED_DIR).iterdir()) == [trace]
    # Packed, the trace travels with the finished trial: an import from the archive names it.
    archive = out / "pack-0.tar"
    with tarfile.open(archive) as members:
        assert sorted(m.name.split("/")[0] for m in members) == [FAILED_DIR] + [TRIALS_DIR] * 2
    again = ["import", folder, str(archive), "--skip-recorded", "--no-report"]
    assert main(again) == 0
    printed = capsys.readouterr()
    assert "0 trials imported, 1 already recorded left out" in printed.out
    assert f"{archive}:{FAILED_DIR}/{trace.name}: inr_models.base.DivergedError" in printed.err
    # A trace too long for one is no trace: the archive is refused, naming the member.
    forged = tmp_path / "forged.tar"
    with tarfile.open(forged, "w") as members:
        member = tarfile.TarInfo(f"{FAILED_DIR}/{trace.name}")
        member.size = MAX_TRACE_BYTES + 1
        members.addfile(member, io.BytesIO(b"x" * member.size))
    assert main(["import", folder, str(forged), "--no-report"]) == 2
    assert f"unexpected member '{FAILED_DIR}/{trace.name}'" in capsys.readouterr().err


def test_imported_runs_look_like_engine_runs_and_rebuild(
    tmp_path, study_env, small_config, write_config, capsys
):
    config = small_config(codecs=[{"name": "coolchic-v1", "preset": "debug", "lmbdas": [2e-2]}])
    config["images"]["subset"] = ["kodim01"]
    config_path = write_config(config)
    assert main(["shard", str(config_path), "-o", str(tmp_path / "p")]) == 0
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(tmp_path / "w")]) == 0
    # A result cannot pass itself off as another study's or rename its run.
    (result,) = (tmp_path / "w" / TRIALS_DIR).glob(f"*/{RESULT_FILE}")
    record = json.loads(result.read_text())
    record["provenance"].update({"inr_study.study": "other", "mlflow.runName": "x"})
    result.write_text(json.dumps(record))
    folder = tmp_path / "s" / "small"
    assert main(["import", str(folder), str(tmp_path / "w"), "--config", str(config_path)]) == 0
    store = study_store(folder, load_study_config(folder))
    (run,) = store.finished_runs()
    tags = run.data.tags
    assert tags["executor"] == "work" and tags["device"] == "cpu" and tags["host"]
    assert tags["mlflow.parentRunId"] and tags["inr_study.study"] == "small"
    assert run.info.run_name == "coolchic-v1 mse lmbda=0.02 kodim01"
    # MLflow's Created and Duration say when and how long the trial ran, not the import.
    ran = run.info.end_time - run.info.start_time
    assert abs(ran / 1000 - float(tags["seconds"])) < 0.01
    assert (
        time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(run.info.start_time / 1000))
        == (tags["started"])
    )
    artifacts = {a.path for a in store.client.list_artifacts(run.info.run_id)}
    assert artifacts == {"bitstream.bin", "decoded.png", "trial.json"}
    history = store.client.get_metric_history(run.info.run_id, "validation.loss")
    assert len(history) > 1 and history[0].step < history[-1].step
    assert run.inputs.dataset_inputs[0].dataset.digest

    # Published with its trials, it rebuilds to the same reports; a changed report is found.
    published = tmp_path / "published"
    shutil.copytree(folder / REPORTS_DIR, published / REPORTS_DIR)
    assert main(["export", str(folder), "-o", str(published)]) == 0
    assert {p.name for p in published.iterdir()} == {
        "reports", "study.yaml", "trials.jsonl", "bitstreams",
    }  # fmt: skip
    assert "storage" not in (published / "study.yaml").read_text()  # no path of this machine
    # Never into the study folder itself (its trials.jsonl would make it a published copy) nor
    # over another study's published copy (whose files it would replace).
    assert main(["export", str(folder), "-o", str(folder)]) == 2
    assert f"-o {folder}: a study folder" in capsys.readouterr().err
    other = shutil.copytree(published, tmp_path / "other")
    config = other / "study.yaml"
    config.write_text(config.read_text().replace("name: small", "name: other"))
    assert main(["export", str(folder), "-o", str(other)]) == 2
    assert "the published copy of study 'other', not of 'small'" in capsys.readouterr().err
    assert main(["export", str(folder), "-o", str(published)]) == 0  # its own: published again
    # What is published is done: shard leaves it out, and reads it without making a store.
    args = ["shard", str(config_path), "-o", str(tmp_path / "again-p")]
    assert main([*args, "--skip-done", str(published)]) == 2
    assert "every selected trial is already done" in capsys.readouterr().err
    assert not (published / "mlflow.db").exists()
    capsys.readouterr()
    assert main(["rebuild", str(published), "--storage", str(tmp_path / "rebuilt")]) == 0
    assert "byte-identical to the published ones" in capsys.readouterr().out
    table = published / REPORTS_DIR / "per_image.csv"
    table.write_text(table.read_text().replace("kodim01", "kodim02"))
    # A number moved in its last digits (another machine's arithmetic) is told from a changed row.
    curve = sorted((published / REPORTS_DIR).glob("coolchic*.json"))[0]
    document = json.loads(curve.read_text())
    document["results"]["bpp"][0] *= 1 + 1e-12
    curve.write_text(json.dumps(document))
    assert main(["rebuild", str(published), "--storage", str(tmp_path / "again")]) == 1
    lines = capsys.readouterr().out.splitlines()[1:]
    assert lines == [
        "reports differ from the published ones:",
        f"  {curve.name}: 1 number differs, by at most 1e-12 relative (/results/bpp[0]); all "
        "else equal",
        "  per_image.csv: differs from line 2 (2 lines here, 2 published)",
    ]


def _work_output(tmp_path, config_path, name="p") -> Path:
    assert main(["shard", str(config_path), "-o", str(tmp_path / name)]) == 0
    out = tmp_path / f"{name}-out"
    assert main(["work", str(tmp_path / name / "part-0"), "-o", str(out)]) == 0
    return out


def _trial(out: Path, codec: str, index: int = 0) -> Path:
    folders = sorted(
        p.parent
        for p in (out / TRIALS_DIR).glob(f"*/{RESULT_FILE}")
        if json.loads(p.read_text())["spec"]["codec"] == codec
    )
    return folders[index]


def _refused(tmp_path, config_path, capsys, *sources) -> str:
    folder = tmp_path / "study" / "small"
    code = main(["import", str(folder), *map(str, sources), "--config", str(config_path)])
    assert code == 2 and not folder.exists()  # nothing half-written remains
    return capsys.readouterr().err


def test_import_refuses_tampered_swapped_truncated_foreign_and_repeated_results(
    tmp_path, study_env, small_config, write_config, capsys
):
    config = small_config()
    config["images"]["subset"] = ["kodim01"]
    config_path = write_config(config)
    out = _work_output(tmp_path, config_path)
    capsys.readouterr()

    tampered = shutil.copytree(_trial(out, "coolchic-v1"), tmp_path / "tampered")
    data = bytearray((tampered / "bitstream.bin").read_bytes())
    data[len(data) // 2] ^= 0x40
    (tampered / "bitstream.bin").write_bytes(bytes(data))
    error = _refused(tmp_path, config_path, capsys, tampered)
    assert f"refused {tampered}: its " in error

    first, second = _trial(out, "coolchic-v1", 0), _trial(out, "coolchic-v1", 1)
    swapped = shutil.copytree(first, tmp_path / "swapped")
    shutil.copy(second / RESULT_FILE, swapped / RESULT_FILE)
    error = _refused(tmp_path, config_path, capsys, swapped)
    assert f"refused {swapped}: its file has" in error

    # Truncated, its record changed to agree with the shorter file: the decoder says no.
    truncated = shutil.copytree(first, tmp_path / "truncated")
    data = (truncated / "bitstream.bin").read_bytes()[:-40]
    (truncated / "bitstream.bin").write_bytes(data)
    record = json.loads((truncated / RESULT_FILE).read_text())
    height, width = record["metrics"]["height"], record["metrics"]["width"]
    record["metrics"].update(bytes=len(data), bpp=8.0 * len(data) / (height * width))
    (truncated / RESULT_FILE).write_text(json.dumps(record))
    error = _refused(tmp_path, config_path, capsys, truncated)
    assert f"refused {truncated}: its file does not decode here" in error

    # Its rate's breakdown must be its file's too.
    misbroken = shutil.copytree(first, tmp_path / "misbroken")
    record = json.loads((misbroken / RESULT_FILE).read_text())
    record["metrics"]["network_bits"] += 32
    (misbroken / RESULT_FILE).write_text(json.dumps(record))
    error = _refused(tmp_path, config_path, capsys, misbroken)
    assert f"refused {misbroken}: its figures are not its file's: its file's network_bits" in error

    other = {**config, "name": "other", "codecs": [{"name": "jpeg", "qualities": [55]}]}
    foreign = _work_output(tmp_path, write_config(other), "foreign")
    error = _refused(tmp_path, config_path, capsys, _trial(foreign, "jpeg"))
    assert "a trial of study 'other', not of 'small'" in error

    error = _refused(tmp_path, config_path, capsys, out, first)
    assert f"refused {first}: repeated: the same trial as {first}" in error
    assert error.count("\nrefused ") == 1 and "1 of 5 results refused" in error

    # The untouched results go in; one recorded before rates were broken down gets its file's.
    record = json.loads((first / RESULT_FILE).read_text())
    parts = {k: record["metrics"].pop(k) for k in list(record["metrics"]) if "_bits" in k}
    assert set(parts) >= {"header_bits", "network_bits", "latent_bits", "network_bits_arm"}
    (first / RESULT_FILE).write_text(json.dumps(record))
    assert main(["import", str(tmp_path / "s"), str(out), "--config", str(config_path)]) == 0
    stored = records(tmp_path / "s")[first.name]
    assert {k: stored[k] for k in parts} == parts


def test_rebuild_reproduces_a_published_study(tmp_path, study_env, capsys):
    published = ROOT / "results" / "icip24-cpu"
    # Two processes check the 344 files (the parallel path of import and rebuild).
    assert main(["rebuild", str(published), "--storage", str(tmp_path), "--jobs", "2"]) == 0
    out = capsys.readouterr().out
    assert "344 trials rebuilt" in out and "byte-identical to the published ones" in out


def test_shard_refuses_searches_and_leaves_out_what_is_done(
    tmp_path, study_env, small_config, write_config, capsys
):
    coolchic = [{"name": "coolchic-v1", "preset": "debug", "search_range": [1e-3, 2e-2]}]
    open_alpha = {"mode": "match", "targets_bpp": [1.0], "trials": 1, "fit_budget": 2}
    pareto = {"mode": "pareto", "alpha": [0.0, 0.5], "trials": 2}
    for search in (open_alpha, pareto):
        config = small_config(codecs=coolchic, losses=["lc_ssim"], search=search)
        assert main(["shard", str(write_config(config)), "-o", str(tmp_path / "p")]) == 2
        assert "needs its driver (inr-study run)" in capsys.readouterr().err

    config_path = write_config(small_config())
    out = tmp_path / "jpeg"
    assert main(["shard", str(config_path), "-o", str(out), "--where", "codec=jpeg"]) == 0
    # A study folder (or a published copy) is no work output: work never writes into one.
    study_folder = tmp_path / "a-study"
    study_folder.mkdir()
    shutil.copy(config_path, study_folder / "study.yaml")
    assert main(["work", str(out / "part-0"), "-o", str(study_folder)]) == 2
    assert f"-o {study_folder}: holds a study (study.yaml)" in capsys.readouterr().err
    assert sorted(p.name for p in study_folder.iterdir()) == ["study.yaml"]
    assert main(["work", str(out / "part-0"), "-o", str(tmp_path / "done")]) == 0
    earlier = tmp_path / "earlier"
    shutil.copytree(out / "part-0", earlier)
    document = json.loads((earlier / "package.json").read_text())
    (earlier / "package.json").write_text(json.dumps({**document, "format": "inr-study-package/1"}))
    assert main(["work", str(earlier), "-o", str(tmp_path / "never")]) == 2
    assert "format 'inr-study-package/1'" in capsys.readouterr().err  # made by an earlier version
    rest = tmp_path / "rest"
    args = ["shard", str(config_path), "-o", str(rest), "--skip-done", str(tmp_path / "done")]
    assert main(args) == 0
    specs = json.loads((rest / "part-0" / "package.json").read_text())["trials"]
    assert {s["codec"] for s in specs} == {"coolchic-v1"} and len(specs) == 4
    # An image at a time, its rates together: a run cut short leaves whole images.
    assert [(s["image"], s["rate"]) for s in specs] == [
        ("kodim01", 2e-2), ("kodim01", 1e-3), ("kodim23", 2e-2), ("kodim23", 1e-3),
    ]  # fmt: skip
    # Dealt to two parts, each holds whole images (a part that runs alone leaves them whole too).
    halves = tmp_path / "halves"
    assert main([*args[:3], str(halves), *args[4:], "--parts", "2"]) == 0
    for part, image in enumerate(("kodim01", "kodim23")):
        specs = json.loads((halves / f"part-{part}" / "package.json").read_text())["trials"]
        assert [(s["image"], s["rate"]) for s in specs] == [(image, 2e-2), (image, 1e-3)]
    # Trials left out (the GPU queue's: those that failed on lent machines) are not packaged;
    # where that leaves nothing, the refusal says so rather than calling them done.
    everything = {spec.key for spec in read_package(rest / "part-0").trials}
    failed = read_package(halves / "part-0").trials[0].key
    config, done = load_config(config_path), [tmp_path / "done"]
    (part,) = shard(config, tmp_path / "fewer", skip_done=done, leave_out={failed})
    assert {spec.key for spec in read_package(part).trials} == everything - {failed}
    # A growing study lacks different settings on different images: each image still goes whole
    # to one part (dealt a trial at a time, kodim01's second rate landed in the other part).
    kodim23_first = read_package(halves / "part-1").trials[0].key
    uneven = shard(config, tmp_path / "uneven", parts=2, skip_done=done, leave_out={kodim23_first})
    dealt = [[(s.image, s.rate) for s in read_package(part).trials] for part in uneven]
    assert dealt == [[("kodim01", 2e-2), ("kodim01", 1e-3)], [("kodim23", 1e-3)]]
    # In one part, the image that lacks the fewest trials goes first: nearly whole curves first.
    (one,) = shard(config, tmp_path / "one", skip_done=done, leave_out={kodim23_first})
    assert [(s.image, s.rate) for s in read_package(one).trials] == [
        ("kodim23", 1e-3), ("kodim01", 2e-2), ("kodim01", 1e-3),
    ]  # fmt: skip
    with pytest.raises(ShardError, match=r"every selected trial not yet done is left out \(4\)"):
        shard(config, tmp_path / "none", skip_done=done, leave_out=everything)
    args = ["shard", str(config_path), "-o", str(tmp_path / "x"), "--where", "codec=nif"]
    assert main(args) == 2
    assert "codec=nif matches no trial of the study" in capsys.readouterr().err


def test_a_matched_search_travels_as_matches_and_its_driver_replays_what_came_back(
    tmp_path, study_env, small_config, write_config, capsys
):
    config = small_config(
        name="matched",
        # As the engine's own matching test: 192 px keeps debug fits' rates from jumping.
        images={"dataset": "kodak", "subset": ["kodim01"], "crop": 192},
        codecs=[{"name": "coolchic-v1", "preset": "debug"}],
        losses=["lc_ssim"],
        search={"targets_bpp": [0.5], "alphas": {"lc_ssim": [0.1, 0.4]}, "fit_budget": 12},
    )
    config_path, packages, work = write_config(config), tmp_path / "packages", tmp_path / "work"
    assert main(["shard", str(config_path), "-o", str(packages), "--parts", "2"]) == 0
    assert "2 matches in 2 packages" in capsys.readouterr().out
    document = json.loads((packages / "part-0" / "package.json").read_text())
    assert document["trials"] == [] and document["fits"] == []
    assert document["matches"] == [
        {"search": "coolchic-v1/lc_ssim/0.5bpp", "alpha": 0.1, "image": "kodim01"}
    ]
    # No time to fit: the match stops before its first fit, and a later run goes on.
    part_0 = ["work", str(packages / "part-0"), "-o", str(work / "part-0")]
    assert main([*part_0, "--minutes", "0"]) == 0
    assert "1 stopped for time, 0 failed; 0 fits made now" in capsys.readouterr().out
    # Fitted where neither Ray, MLflow nor Optuna is installed (a lent GPU machine).
    check = (
        "import sys; from study.cli import main; "
        f"code = main({part_0!r}); "
        "assert not {'ray', 'mlflow', 'optuna'} & set(sys.modules), 'work imported them'; "
        "sys.exit(code)"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], env=study_env, check=True, capture_output=True, text=True
    )
    assert "1 matches, 1 on target" in done.stdout, done.stdout + done.stderr
    assert main(part_0) == 0  # done: its fits are read back, none made again
    assert (
        "1 on target, 0 closest (the target not reached), 0 stopped for time, 0 failed; 0 fits"
        in capsys.readouterr().out
    )

    # Sharded again after part 0 came back: only α 0.4 is left, starting from α 0.1's fits.
    rest = tmp_path / "rest"
    assert main(["shard", str(config_path), "-o", str(rest), "--skip-done", str(work)]) == 0
    document = json.loads((rest / "part-0" / "package.json").read_text())
    assert [m["alpha"] for m in document["matches"]] == [0.4]
    # A match whose next fit is left out (failed on lent machines) is not packaged: here α 0.1's
    # first fit, so only α 0.4 is.
    first = min((work / "part-0" / TRIALS_DIR).iterdir(), key=lambda f: f.stat().st_mtime_ns)
    (part,) = shard(load_config(config_path), tmp_path / "fewer", leave_out={first.name})
    assert [match.alpha for match in read_package(part).matches] == [0.4]
    fitted = len(list((work / "part-0" / TRIALS_DIR).iterdir()))
    assert len(document["fits"]) == fitted
    # A package whose earlier fits are not what a match reads is refused, naming the problem.
    hostile = tmp_path / "hostile"
    shutil.copytree(rest / "part-0", hostile)
    (hostile / "package.json").write_text(json.dumps({**document, "fits": [{"bpp": "x"}]}))
    assert main(["work", str(hostile), "-o", str(tmp_path / "never")]) == 2
    assert "an earlier fit is not an object with the expected fields" in capsys.readouterr().err
    twice = {**document, "matches": document["matches"] * 2}
    (hostile / "package.json").write_text(json.dumps(twice))
    assert main(["work", str(hostile), "-o", str(tmp_path / "never")]) == 2
    assert "a match is listed twice" in capsys.readouterr().err
    off_grid = {**document, "matches": [{**document["matches"][0], "alpha": 0.3}]}
    (hostile / "package.json").write_text(json.dumps(off_grid))
    assert main(["work", str(hostile), "-o", str(tmp_path / "never")]) == 1
    assert "α=0.3 kodim01: not a match of study matched" in capsys.readouterr().err
    # A study without crops records no image variant (MLflow keeps no empty value): still read.
    assert fit_summary({**document["fits"][0], "image_variant": None})["image_variant"] == ""
    assert main(["work", str(rest / "part-0"), "-o", str(work / "rest")]) == 0
    assert "1 matches, 1 on target" in capsys.readouterr().out

    imported = tmp_path / "studies" / "matched"
    args = ["import", str(imported), str(work / "part-0"), str(work / "rest")]
    assert main([*args, "--config", str(config_path)]) == 0
    table = (imported / REPORTS_DIR / "alpha.md").read_text()
    assert table.count("| 1 of 1 (1) |") == 2, table  # each α on target on the image
    # Nothing is left to package, and the study's driver replays both samples fitting nothing.
    assert (
        main(["shard", str(config_path), "-o", str(tmp_path / "x"), "--skip-done", str(imported)])
        == 2
    )
    assert "every selected match is already done" in capsys.readouterr().err
    before = records(imported)
    assert main(["resume", str(imported), "--local-cpus", "1"]) == 0
    assert "2 samples to run on 1 images each" in capsys.readouterr().out
    assert records(imported).keys() == before.keys()


def test_a_package_names_the_pretrained_networks_its_fits_train_with(
    tmp_path, study_env, small_config, write_config
):
    from study.engine.package import read_package
    from study.engine.sharding import package_networks

    coolchic = [{"name": "coolchic-v1", "preset": "debug", "lmbdas": [2e-2]}]
    grid = small_config(codecs=coolchic, losses=["mse", "mse:1+lpips:0.1"])
    search = {"targets_bpp": [0.5], "alphas": {"mse_wasserstein": [0.1], "lc_ssim": [0.01]}}
    searched = [{"name": "coolchic-v1", "preset": "debug", "search_range": [1e-3, 2e-2]}]
    matched = small_config(
        name="matched",
        codecs=searched,
        losses=["mse_wasserstein", "lc_ssim"],
        search=search,
        optional_metrics=True,  # LPIPS measured, by a network no fit trains with
    )
    found = {}
    for config in (grid, matched):
        out = tmp_path / config["name"]
        assert main(["shard", str(write_config(config)), "-o", str(out)]) == 0
        found[config["name"]] = package_networks(read_package(out / "part-0"))
    # The metric's network (lpips-alex) is not the matched study's: import measures LPIPS.
    assert found == {"small": {"lpips-alex"}, "matched": {"vgg16-relu4_3"}}


def test_a_partial_study_says_what_it_lacks_and_its_published_copy_reports_alike(
    tmp_path, study_env, small_config, write_config, capsys
):
    config_path = write_config(small_config())
    shard = ["shard", str(config_path), "-o", str(tmp_path / "p"), "--where", "codec=jpeg"]
    assert main(shard) == 0
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(tmp_path / "w")]) == 0
    folder = tmp_path / "s" / "small"
    assert main(["import", str(folder), str(tmp_path / "w"), "--config", str(config_path)]) == 0
    coverage = (folder / REPORTS_DIR / "coverage.md").read_text()
    assert coverage.startswith("# Partial study: 4 of 8 planned trials recorded")
    assert "| coolchic-v1 | mse | lmbda 0.02 | 0 of 2 | kodim01, kodim23 |" in coverage
    assert "| jpeg | — | quality 80 | 2 of 2 | none |" in coverage

    # `report` on the published copy reads its per_image.csv (no store made there): same files.
    published = tmp_path / "published"
    shutil.copytree(folder / REPORTS_DIR, published / REPORTS_DIR)
    assert main(["export", str(folder), "-o", str(published)]) == 0
    before = {p.name: p.read_bytes() for p in (published / REPORTS_DIR).iterdir()}
    assert main(["report", str(published)]) == 0
    after = {p.name: p.read_bytes() for p in (published / REPORTS_DIR).iterdir()}
    assert after == before and "coverage.md" in after
    assert not (published / "mlflow.db").exists()


def test_ray_packs_trials_onto_shared_gpus(tmp_path, study_env, small_config, write_config):
    """Fake GPUs on local Ray: a quarter GPU per trial gives eight trials at a time on two,
    each told its GPU through CUDA_VISIBLE_DEVICES (trials of two seconds each, on the CPU)."""
    config = small_config(
        plugins=["slow_codec"],
        codecs=[{"name": "slow-jpeg", "qualities": [20, 40, 60, 80]}],
        resources={"cpus": 0.25, "gpus": 0.25},
        device="cpu",
    )
    assert main(["run", str(write_config(config)), "--local-gpus", "2"]) == 0
    folder = tmp_path / "studies" / "small"
    runs = study_store(folder, load_study_config(folder)).finished_runs()
    assert len(runs) == 8
    shares = [run.data.tags["cuda_visible_devices"] for run in runs]
    assert set(shares) == {"0", "1"}

    def most_at_once(chosen) -> int:
        events = sorted(
            [(run.info.start_time, 1) for run in chosen]
            + [(run.info.end_time, -1) for run in chosen]
        )
        running = peak = 0
        for _, change in events:
            running += change
            peak = max(peak, running)
        return peak

    assert 4 < most_at_once(runs) <= 8  # more than one trial per GPU, never more than 8
    for share in ("0", "1"):
        assert most_at_once([r for r, s in zip(runs, shares, strict=True) if s == share]) <= 4


def _publish(tmp_path, config: dict, write_config) -> Path:
    """A study run by shard / work / import and published with its trials."""
    name = config["name"]
    config_path = write_config(config)
    out = _work_output(tmp_path, config_path, name)
    folder = tmp_path / "s" / name
    assert main(["import", str(folder), str(out), "--config", str(config_path)]) == 0
    published = tmp_path / "published" / name
    shutil.copytree(folder / REPORTS_DIR, published / REPORTS_DIR)
    assert main(["export", str(folder), "-o", str(published)]) == 0
    return published


def test_studies_of_the_same_images_combine_into_one_set_of_reports(
    tmp_path, study_env, small_config, write_config, capsys
):
    jpeg = {"name": "jpeg", "qualities": [30, 80]}
    first = _publish(tmp_path, small_config(name="first", codecs=[jpeg]), write_config)
    second = small_config(
        name="second", codecs=[{"name": "coolchic-v1", "preset": "debug", "lmbdas": [2e-2]}, jpeg]
    )
    second["images"]["subset"] = ["kodim01"]
    second = _publish(tmp_path, second, write_config)
    combined = tmp_path / "combined"
    assert main(["combine", str(first), str(second), "-o", str(combined)]) == 0
    assert "3 trials of 2 studies on 1 shared images (kodim01)" in capsys.readouterr().out
    rows = (combined / REPORTS_DIR / "per_image.csv").read_text().splitlines()[1:]
    assert sorted(row.split(",")[0] for row in rows) == ["coolchic-v1", "jpeg", "jpeg"]
    # A study given twice, or combined reports written over a study's own: refused.
    assert main(["combine", str(first), str(first), "-o", str(tmp_path / "no")]) == 2
    assert "a published study is given twice" in capsys.readouterr().err
    before = (first / REPORTS_DIR / "per_image.csv").read_bytes()
    assert main(["combine", str(first), str(second), "-o", str(first)]) == 2
    assert f"-o {first}: holds a study" in capsys.readouterr().err
    assert (first / REPORTS_DIR / "per_image.csv").read_bytes() == before

    other = shutil.copytree(first, tmp_path / "published" / "other")
    config = other / "study.yaml"
    config.write_text(config.read_text().replace("crop: 64", "crop: 96"))
    assert main(["combine", str(first), str(other), "-o", str(tmp_path / "no")]) == 2
    assert "prepare their images differently" in capsys.readouterr().err
    # The same codec and loss at another preset would be averaged into one curve: refused.
    faster = shutil.copytree(second, tmp_path / "published" / "faster")
    table = faster / REPORTS_DIR / "per_image.csv"
    rows = list(csv.DictReader(table.open()))
    for row in rows:
        if row["preset"] == "debug":  # another trial: another key
            row["preset"], row["trial_key"] = "short", row["trial_key"][::-1]
    with table.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    assert main(["combine", str(second), str(faster), "-o", str(tmp_path / "no")]) == 2
    assert f"coolchic-v1 with mse at debug ({second}), short ({faster})" in capsys.readouterr().err

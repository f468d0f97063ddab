"""A published study's files kept in git history (`inr-study stow`), out of the working tree, and
read back from there by rebuild and export: only once committed, never from a clone that lacks
the history, and never trusting the list of kept files."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from study.cli import main
from study.layout import BITSTREAMS_DIR, HISTORY_FILE, REPORTS_DIR

pytestmark = pytest.mark.slow


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch) -> Path:
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "inr-study tests")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "tests@localhost")
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "README.md").write_text("results\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "--quiet", "-m", "start")
    return repo


@pytest.fixture
def study(tmp_path, study_env, small_config, write_config, repo) -> tuple[Path, Path, Path]:
    """A study folder of two JPEG trials on one crop, its published copy in ``repo``, and its
    config."""
    config = small_config(codecs=[{"name": "jpeg", "qualities": [30, 80]}])
    config["images"]["subset"] = ["kodim01"]
    config_path = write_config(config)
    assert main(["shard", str(config_path), "-o", str(tmp_path / "p")]) == 0
    assert main(["work", str(tmp_path / "p" / "part-0"), "-o", str(tmp_path / "w")]) == 0
    folder = tmp_path / "s" / "small"
    assert main(["import", str(folder), str(tmp_path / "w"), "--config", str(config_path)]) == 0
    published = repo / "results" / "small"
    shutil.copytree(folder / REPORTS_DIR, published / REPORTS_DIR)
    assert main(["export", str(folder), "-o", str(published)]) == 0
    return folder, published, config_path


def test_stowed_files_leave_the_tree_and_the_study_rebuilds_from_history(
    tmp_path, study, repo, capsys
):
    folder, published, config_path = study
    files = sorted((published / BITSTREAMS_DIR).glob("*.bin"))
    assert len(files) == 2
    # Only committed files move: stowing first would lose them.
    assert main(["stow", str(published)]) == 2
    assert "not committed byte for byte as they are" in capsys.readouterr().err
    assert all(path.exists() for path in files) and not (published / HISTORY_FILE).exists()

    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "publish")
    (repo / ".git" / "info" / "exclude").write_text("*.json\n")  # listed all the same
    assert main(["stow", str(published)]) == 0
    assert "2 files" in capsys.readouterr().out
    assert not any((published / BITSTREAMS_DIR).glob("*.bin"))
    staged = git(repo, "status", "--porcelain").splitlines()
    assert sorted(line[:2] for line in staged) == ["A ", "D ", "D "]
    git(repo, "commit", "--quiet", "-m", "stow")
    kept = json.loads((published / HISTORY_FILE).read_text())["files"]
    assert sorted(kept) == [path.stem for path in files]
    assert main(["stow", str(published)]) == 0  # nothing left to move
    assert "no files in the working tree to stow (2 in history)" in capsys.readouterr().out

    assert main(["rebuild", str(published), "--storage", str(tmp_path / "rebuilt")]) == 0
    assert "byte-identical to the published ones" in capsys.readouterr().out
    # Published again, the kept files are checked against their digests, not written back.
    listed = (published / HISTORY_FILE).read_bytes()
    assert main(["export", str(folder), "-o", str(published)]) == 0
    assert "(2 more kept in git history)" in capsys.readouterr().out
    assert not any((published / BITSTREAMS_DIR).glob("*.bin"))
    assert (published / HISTORY_FILE).read_bytes() == listed
    # A stowed trial whose file is not the study's comes back into the tree, to be committed.
    document = json.loads(listed)
    changed = sorted(document["files"])[0]
    document["files"][changed]["sha256"] = "0" * 64
    (published / HISTORY_FILE).write_text(json.dumps(document))
    assert main(["export", str(folder), "-o", str(published)]) == 0
    assert "(1 more kept in git history)" in capsys.readouterr().out
    assert [p.stem for p in (published / BITSTREAMS_DIR).glob("*.bin")] == [changed]
    assert sorted(json.loads((published / HISTORY_FILE).read_text())["files"]) == sorted(
        set(document["files"]) - {changed}
    )
    git(repo, "checkout", "--", ".")
    (published / BITSTREAMS_DIR / f"{changed}.bin").unlink()

    # A clone without the history gets one clear error, and no study folder.
    shallow = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", repo.as_uri(), str(shallow)], check=True
    )
    storage = tmp_path / "from-shallow"
    assert main(["rebuild", str(shallow / "results" / "small"), "--storage", str(storage)]) == 2
    error = capsys.readouterr().err
    assert "2 of its 2 files kept in git history" in error and "git fetch --unshallow" in error
    assert not (storage / "small").exists()
    # What is done is read from the records alone: a shallow clone still shards what is left.
    shard = ["shard", str(config_path), "-o", str(tmp_path / "left")]
    assert main([*shard, "--skip-done", str(shallow / "results" / "small")]) == 2
    assert "every selected trial is already done" in capsys.readouterr().err
    # Nor outside any repository, nor inside another.
    loose = shutil.copytree(published, tmp_path / "loose")
    assert main(["rebuild", str(loose), "--storage", str(tmp_path / "from-loose")]) == 2
    assert "is in no git repository" in capsys.readouterr().err
    git(loose, "init", "--quiet")
    assert main(["rebuild", str(loose), "--storage", str(tmp_path / "from-other")]) == 2
    assert "this repository's history does not hold them" in capsys.readouterr().err


@pytest.mark.parametrize("how", ["never-committed", "index-differs", "clean-filter"])
def test_stow_moves_nothing_unless_every_file_is_committed_byte_for_byte(study, repo, capsys, how):
    _, published, _ = study
    files = sorted((published / BITSTREAMS_DIR).glob("*.bin"))
    if how != "never-committed":
        if how == "clean-filter":  # what is committed is not the file's bytes
            (repo / ".gitattributes").write_text("*.bin filter=pad\n")
            git(repo, "config", "filter.pad.clean", "sh -c 'cat; echo'")
        git(repo, "add", "-A")
        git(repo, "commit", "--quiet", "-m", "publish")
    if how == "index-differs":  # staged, then the file put back as committed
        original = files[0].read_bytes()
        files[0].write_bytes(original + b"x")
        git(repo, "add", "--", str(files[0]))
        files[0].write_bytes(original)
    before = git(repo, "status", "--porcelain")
    assert main(["stow", str(published)]) == 2
    assert "not committed byte for byte as they are" in capsys.readouterr().err
    assert all(path.exists() for path in files) and not (published / HISTORY_FILE).exists()
    assert git(repo, "status", "--porcelain") == before


def _tree(repo: Path) -> str:
    return git(repo, "rev-parse", "HEAD^{tree}").strip()


def _other_blob(repo: Path) -> str:
    """The blob of another file of the repository (the study's config)."""
    return git(repo, "rev-parse", "HEAD:results/small/study.yaml").strip()


@pytest.mark.parametrize(
    "tamper, says",
    [
        (lambda kept, key, repo: kept[key].update(sha256="0" * 64), "is not the file listed"),
        (lambda kept, key, repo: kept[key].update(bytes=2**40), "is no trial's file"),
        (lambda kept, key, repo: kept[key].update(blob="HEAD"), "is not a git object id"),
        (lambda kept, key, repo: kept[key].update(blob=_other_blob(repo)), "is not a blob of"),
        (lambda kept, key, repo: kept[key].update(blob=_tree(repo)), "is not a blob of"),
        (lambda kept, key, repo: kept[key].update(extra=1), "its blob, bytes and sha256"),
        (lambda kept, key, repo: kept.update({"../etc": kept.pop(key)}), "expected a trial key"),
    ],
    ids=["digest", "size", "blob-id", "other-blob", "tree", "extra-field", "key"],
)
def test_a_tampered_list_of_kept_files_is_refused_with_its_reason(
    tmp_path, study, repo, capsys, tamper, says
):
    _, published, _ = study
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "publish")
    assert main(["stow", str(published)]) == 0
    document = json.loads((published / HISTORY_FILE).read_text())
    tamper(document["files"], sorted(document["files"])[0], repo)
    (published / HISTORY_FILE).write_text(json.dumps(document))
    storage = tmp_path / "rebuilt"
    assert main(["rebuild", str(published), "--storage", str(storage)]) == 2
    error = capsys.readouterr().err
    assert HISTORY_FILE in error and says in error
    assert not (storage / "small").exists()


def test_stow_refuses_a_folder_that_is_no_published_study(tmp_path, capsys):
    assert main(["stow", str(tmp_path)]) == 2
    assert f"{tmp_path}: not a published study (no trials.jsonl) to stow" in capsys.readouterr().err


def test_a_list_of_kept_files_nested_deeply_is_refused(tmp_path, capsys):
    (tmp_path / "trials.jsonl").write_text("")
    (tmp_path / HISTORY_FILE).write_text("[" * 100_000)
    assert main(["stow", str(tmp_path)]) == 2
    assert "nested too deeply" in capsys.readouterr().err

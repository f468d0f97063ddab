"""A published study's files kept in its git repository's history, out of the working tree.

Full-size studies have more files than a working tree should carry (a lent GPU machine is sent
the whole tree). ``stow`` takes a published study's committed ``bitstreams/KEY.bin`` out of the
tree and lists each in ``bitstreams-history.json``: the git blob that holds it, its size and its
SHA-256. ``HistoryFiles`` reads them back through ``git cat-file`` for ``import`` and ``rebuild``,
each size checked before it is read and each file's digest before it is used. A clone without the
history (``git clone --depth 1``) gets a clear error, not a partial study.
"""

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from study.engine.keys import is_trial_key
from study.errors import InputError
from study.layout import BITSTREAMS_DIR, HISTORY_FILE, TRIALS_FILE, is_published_copy

HISTORY_FORMAT = "inr-study-bitstream-history/1"
# At about 150 bytes an entry, room for some 100,000 files: far more than any study has.
MAX_HISTORY_BYTES = 16 * 2**20
_BLOB = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # SHA-1 or SHA-256 repositories
_SHA256 = re.compile(r"[0-9a-f]{64}")
ENTRY_FIELDS = {"blob", "bytes", "sha256"}


class HistoryError(InputError):
    """Files kept in history that cannot be listed, stowed or read back."""


@dataclass(frozen=True)
class Kept:
    blob: str
    bytes: int
    sha256: str


# Never ask for credentials, never fetch a missing blob on demand (a partial clone, git >= 2.45):
# a file not in this clone is an error here, not a hang or a thousand network round trips.
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_NO_LAZY_FETCH": "1"}


def _require_git(folder: Path) -> None:
    if shutil.which("git") is None:
        raise HistoryError(f"{folder}: its files are kept in git history: install git")


def _git(folder: Path, *args: str, data: bytes | None = None) -> bytes:
    _require_git(folder)
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), *args],
            input=data,
            capture_output=True,
            check=True,
            env={**os.environ, **_GIT_ENV},
        )
    except subprocess.CalledProcessError as error:
        raise HistoryError(f"{folder}: git {args[0]}: {_git_said(error.stderr)}") from None
    return done.stdout


def _git_said(stderr: bytes) -> str:
    """git's own error line ("fatal: ...", "error: ..."), not the hints that follow it."""
    lines = stderr.decode(errors="replace").strip().splitlines()
    errors = [line for line in lines if line.startswith(("fatal:", "error:"))]
    return (errors or lines or ["failed"])[0]


def read_history(published: Path, limit: int) -> dict[str, Kept]:
    """The files ``published`` keeps in history (none without a list), every field checked."""
    path = Path(published) / HISTORY_FILE
    if not path.is_file():
        return {}
    if path.stat().st_size > MAX_HISTORY_BYTES:
        raise HistoryError(f"{path}: {path.stat().st_size} bytes, too large for a list of files")
    try:
        document = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HistoryError(f"{path}: not JSON ({error})") from None
    except RecursionError:
        raise HistoryError(f"{path}: nested too deeply to be a list of files") from None
    if not isinstance(document, dict) or document.get("format") != HISTORY_FORMAT:
        raise HistoryError(f"{path}: not a list of kept files (format {HISTORY_FORMAT!r})")
    files = document.get("files")
    if not isinstance(files, dict):
        raise HistoryError(f"{path}: 'files' must map trial keys to kept files")
    kept = {}
    for key, entry in files.items():
        where = f"{path}: {key[:40]!r}"
        if not is_trial_key(key) or not isinstance(entry, dict) or set(entry) != ENTRY_FIELDS:
            raise HistoryError(f"{where}: expected a trial key and its blob, bytes and sha256")
        blob, size, digest = entry["blob"], entry["bytes"], entry["sha256"]
        if not isinstance(blob, str) or not _BLOB.fullmatch(blob):
            raise HistoryError(f"{where}: blob {blob!r} is not a git object id")
        if type(size) is not int or not 0 < size <= limit:
            raise HistoryError(f"{where}: {size!r} bytes is no trial's file")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise HistoryError(f"{where}: sha256 {digest!r} is not a SHA-256 digest")
        kept[key] = Kept(blob, size, digest)
    return kept


def write_history(published: Path, kept: dict[str, Kept]) -> None:
    """The list of kept files, sorted (a stable file to commit); none: no list at all."""
    path = Path(published) / HISTORY_FILE
    if not kept:
        path.unlink(missing_ok=True)
        return
    files = {key: vars(kept[key]) for key in sorted(kept)}
    path.write_text(json.dumps({"format": HISTORY_FORMAT, "files": files}, indent=1) + "\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class HistoryFiles:
    """Reads the files a published study keeps in history, from the repository holding it."""

    def __init__(self, published: Path, limit: int):
        self.published = Path(published)
        self.kept = read_history(self.published, limit)

    def __contains__(self, key: str) -> bool:
        return key in self.kept

    def read(self, key: str) -> bytes:
        """A listed file, its blob's type and size checked first (``check``)."""
        kept = self.kept[key]
        data = _git(self.published, "cat-file", "blob", kept.blob)
        if sha256(data) != kept.sha256:
            where = f"{self.published / HISTORY_FILE}: {key}"
            raise HistoryError(f"{where}: blob {kept.blob} is not the file listed (SHA-256)")
        return data

    def check(self) -> None:
        """Every listed blob is in this clone, a blob of the size listed, before any is read:
        one clear error for a clone without the history, or a list that names other objects."""
        if not self.kept:
            return
        _require_git(self.published)  # before a failing git reads as "no repository"
        try:
            shallow = _git(self.published, "rev-parse", "--is-shallow-repository").strip()
        except HistoryError:
            raise HistoryError(
                f"{self.published}: its files are kept in git history ({HISTORY_FILE}), and it "
                "is in no git repository: use it inside a clone of the repository that holds it"
            ) from None
        ids = "".join(f"{kept.blob}\n" for kept in self.kept.values()).encode()
        answers = _git(self.published, "cat-file", "--batch-check", data=ids).decode()
        missing = 0
        for (key, kept), answer in zip(self.kept.items(), answers.splitlines(), strict=True):
            if answer.endswith(" missing"):
                missing += 1
            elif answer != f"{kept.blob} blob {kept.bytes}":
                where = f"{self.published / HISTORY_FILE}: {key}"
                raise HistoryError(f"{where}: {kept.blob} is not a blob of {kept.bytes} bytes")
        if not missing:
            return
        why = (
            "a shallow clone lacks them; fetch the history first (git fetch --unshallow)"
            if shallow == b"true"
            else "this repository's history does not hold them (a copy of the study inside "
            "another repository, or history rewritten after they were stowed)"
        )
        raise HistoryError(
            f"{self.published}: {missing} of its {len(self.kept)} files kept in git history "
            f"({HISTORY_FILE}) are not in this clone: {why}"
        )


@dataclass(frozen=True)
class Stowed:
    files: int
    bytes: int
    kept: int  # all the study keeps in history now


def _head_blobs(published: Path, names: list[str]) -> dict[str, str]:
    """The blob HEAD holds at each of ``names`` (paths relative to ``published``) it has."""
    try:
        _git(published, "rev-parse", "--verify", "--quiet", "HEAD")
    except HistoryError:  # a repository with no commit yet, or none at all
        _git(published, "rev-parse", "--git-dir")
        return {}
    listed = _git(published, "ls-tree", "-z", "HEAD", "--", *names).split(b"\0")
    blobs = {}
    for line in filter(None, listed):  # "MODE TYPE BLOB\tPATH", PATH relative to the folder
        meta, path = line.decode().split("\t", 1)
        blobs[path] = meta.split()[2]
    return blobs


def _stowable(path: Path, limit: int) -> int:
    """The size of ``path``, a regular file named KEY.bin within ``limit`` (checked before git
    or this process reads it)."""
    if not is_trial_key(path.stem):
        raise HistoryError(f"{path}: not a trial's file (expected KEY.bin)")
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or not 0 < info.st_size <= limit:
        raise HistoryError(f"{path}: not a trial's file (a regular file of at most {limit} bytes)")
    return info.st_size


def stow(published: Path, limit: int) -> Stowed:
    """Move ``published``'s ``bitstreams/*.bin`` out of the working tree into the list of files
    kept in history. Every file must be committed byte for byte as it is (in HEAD and the index,
    no filter between), or nothing moves. Stages the change (the list written, the files
    removed) for the next commit."""
    published = Path(published)
    if not is_published_copy(published):
        raise HistoryError(f"{published}: not a published study (no {TRIALS_FILE}) to stow")
    folder = published / BITSTREAMS_DIR
    files = sorted(folder.glob("*.bin")) if folder.is_dir() else []
    kept = read_history(published, limit)
    if not files:
        return Stowed(0, 0, len(kept))
    sizes = [_stowable(path, limit) for path in files]
    names = [f"{BITSTREAMS_DIR}/{path.name}" for path in files]
    committed = _head_blobs(published, names)
    # The raw bytes' blob (no eol conversion or clean filter): what rebuild will read back.
    on_disk = _git(published, "hash-object", "--no-filters", "--", *names).decode().split()
    staged = _git(published, "diff", "--cached", "--name-only", "-z", "HEAD", "--", *names)
    changed = [n for n, blob in zip(names, on_disk, strict=True) if committed.get(n) != blob]
    changed += [name.decode() for name in staged.split(b"\0") if name]
    if changed:
        raise HistoryError(
            f"{folder}: {len(set(changed))} of its {len(files)} files are not committed byte for "
            f"byte as they are ({Path(changed[0]).name}, ...): commit the published study first "
            "(with no eol conversion or filter on its files), then stow it"
        )
    for path, name, size in zip(files, names, sizes, strict=True):
        kept[path.stem] = Kept(committed[name], size, sha256(path.read_bytes()))
    # The list first: were the removal to fail, the files would be in both places, never in none.
    write_history(published, kept)
    _git(published, "add", "--force", "--", HISTORY_FILE)
    _git(published, "rm", "--quiet", "--", *names)
    return Stowed(len(files), sum(sizes), len(kept))

"""Trial results brought to a study from elsewhere, read without trusting them.

A source is any of: one trial's folder (``result.json`` + ``bitstream.bin``), the output folder
of ``inr-study work`` (``trials/KEY/...``), an archive of ``work --pack`` (``pack-N.tar``), or a
published study (``trials.jsonl`` + ``bitstreams/KEY.bin``, or the file ``inr-study stow`` keeps
in git history). Archives are read member by member into memory, never extracted; every size is
checked before it is read.
"""

import tarfile
from dataclasses import dataclass
from pathlib import Path

from study.engine.history import HistoryFiles
from study.engine.keys import is_trial_key
from study.engine.package import FAILED_DIR, MAX_TRACE_BYTES, RESULT_FILE, TRIALS_DIR
from study.engine.record import MAX_RECORD_BYTES, RecordError, TrialRecord
from study.engine.trial import BITSTREAM_NAME
from study.errors import InputError
from study.layout import BITSTREAMS_DIR, TRIALS_FILE

# No trial's file comes near this (a full-size Kodak image at 24 bpp is 1.2 MB).
MAX_BITSTREAM_BYTES = 64 * 2**20


@dataclass(frozen=True)
class Incoming:
    where: str  # names the result in messages: a folder, or an archive and its member
    record: TrialRecord | None
    bitstream: bytes | None
    problem: str | None = None  # why it cannot even be read


def _refused(where: str, problem: str) -> Incoming:
    return Incoming(where, None, None, problem)


def _read(where: str, record_text: bytes | None, bitstream: bytes | None) -> Incoming:
    if record_text is None:
        return _refused(where, f"no {RESULT_FILE}")
    try:
        record = TrialRecord.loads(record_text, where)
    except RecordError as error:
        return _refused(where, str(error).removeprefix(f"{where}: "))
    if bitstream is None:
        return _refused(where, f"no {BITSTREAM_NAME}")
    return Incoming(where, record, bitstream)


def _file(path: Path, limit: int) -> bytes | None:
    if not path.is_file():
        return None
    if path.stat().st_size > limit:
        raise InputError(f"{path}: {path.stat().st_size} bytes, more than a trial's file may be")
    return path.read_bytes()


def _trial_folder(folder: Path) -> Incoming:
    try:
        return _read(
            str(folder),
            _file(folder / RESULT_FILE, MAX_RECORD_BYTES),
            _file(folder / BITSTREAM_NAME, MAX_BITSTREAM_BYTES),
        )
    except InputError as error:
        return _refused(str(folder), str(error))


def _archive(path: Path) -> list[Incoming]:
    members: dict[str, dict[str, bytes]] = {}
    limits = {RESULT_FILE: MAX_RECORD_BYTES, BITSTREAM_NAME: MAX_BITSTREAM_BYTES}
    try:
        with tarfile.open(path, "r:") as archive:
            for member in archive:
                parts = member.name.split("/")
                if _is_trace(member):  # a failed fit's: named by `failed_fits`, not imported
                    continue
                if len(parts) != 3 or parts[0] != TRIALS_DIR or parts[2] not in limits:
                    return [_refused(str(path), f"unexpected member {member.name!r}")]
                if not member.isfile() or member.size > limits[parts[2]]:
                    return [_refused(str(path), f"member {member.name!r} is not a trial's file")]
                members.setdefault(parts[1], {})[parts[2]] = archive.extractfile(member).read()
    except (tarfile.TarError, OSError, EOFError) as error:
        return [_refused(str(path), f"not a readable archive ({error})")]
    return [
        _read(f"{path}:{TRIALS_DIR}/{key}", files.get(RESULT_FILE), files.get(BITSTREAM_NAME))
        for key, files in sorted(members.items())
    ]


def _is_trace(member: tarfile.TarInfo) -> bool:
    parts = member.name.split("/")
    return (
        len(parts) == 2
        and parts[0] == FAILED_DIR
        and parts[1].endswith(".txt")
        and member.isfile()
        and member.size <= MAX_TRACE_BYTES
    )


def _published_lines(folder: Path) -> list[tuple[str, TrialRecord | str]]:
    """Each line of a published study's ``trials.jsonl``: where it is, and its record or why it
    cannot be read."""
    read = []
    lines = (folder / TRIALS_FILE).read_bytes().splitlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{folder / TRIALS_FILE}:{number}"
        try:
            read.append((where, TrialRecord.loads(line, where)))
        except RecordError as error:
            read.append((where, str(error).removeprefix(f"{where}: ")))
    return read


def published_records(folder: Path) -> list[TrialRecord]:
    """The readable trial records of a published study, its files left unread (what is done)."""
    return [item for _, item in _published_lines(Path(folder)) if isinstance(item, TrialRecord)]


def _published(folder: Path) -> list[Incoming]:
    kept = HistoryFiles(folder, MAX_BITSTREAM_BYTES)
    kept.check()
    found = []
    for where, record in _published_lines(folder):
        if not isinstance(record, TrialRecord):
            found.append(_refused(where, record))
            continue
        try:
            bitstream = _file(folder / BITSTREAMS_DIR / f"{record.key}.bin", MAX_BITSTREAM_BYTES)
            if bitstream is None and record.key in kept:
                bitstream = kept.read(record.key)
        except InputError as error:
            found.append(_refused(where, str(error)))
            continue
        if bitstream is None:
            found.append(_refused(where, f"no {BITSTREAMS_DIR}/{record.key}.bin"))
        else:
            found.append(Incoming(where, record, bitstream))
    return found


def read_sources(paths: list[Path]) -> list[Incoming]:
    """Every trial result in ``paths``, each read or with the reason it cannot be."""
    found: list[Incoming] = []
    for path in map(Path, paths):
        if path.is_file() and tarfile.is_tarfile(path):
            found += _archive(path)
        elif (path / TRIALS_FILE).is_file():
            found += _published(path)
        elif (path / RESULT_FILE).is_file():
            found.append(_trial_folder(path))
        elif (path / TRIALS_DIR).is_dir():
            found += [
                _trial_folder(p)
                for p in sorted((path / TRIALS_DIR).iterdir())
                if p.is_dir() and not p.name.startswith(".")  # a trial still being written
            ]
        else:
            found.append(_refused(str(path), "no trial results here"))
    return found


@dataclass(frozen=True)
class FailedFit:
    """A fit that failed where it ran: its trace (``where``, shown printable: an archive's text
    is not trusted), its trial key (the trace's name; None where that is not a key) and the
    trace's last line (printable too)."""

    where: str
    key: str | None
    error: str

    def __str__(self) -> str:
        return f"{self.where}: {self.error}"


def failed_fits(paths: list[Path]) -> list[FailedFit]:
    """The fits a work output or archive in ``paths`` tried and failed. They have no result to
    import; the next ``inr-study work`` on that output, or a package of what is left, retries
    them."""
    found = []
    for path in map(Path, paths):
        if path.is_file() and tarfile.is_tarfile(path):
            found += _archived_failures(path)
        elif (path / FAILED_DIR).is_dir():
            for trace in sorted((path / FAILED_DIR).glob("*.txt")):
                error = _last_line(trace.read_bytes())
                found.append(FailedFit(str(trace), _key(trace.stem), error))
    return found


def _archived_failures(path: Path) -> list[FailedFit]:
    try:
        with tarfile.open(path, "r:") as archive:
            return [
                FailedFit(
                    f"{path}:{_printable(member.name)}",
                    _key(member.name.split("/")[1].removesuffix(".txt")),
                    _last_line(archive.extractfile(member).read()),
                )
                for member in archive
                if _is_trace(member)
            ]
    except (tarfile.TarError, OSError, EOFError):
        return []  # `read_sources` says why the archive cannot be read


def _key(name: str) -> str | None:
    return name if is_trial_key(name) else None


def _last_line(trace: bytes) -> str:
    lines = trace.decode(errors="replace").strip().splitlines()
    return _printable(lines[-1]) if lines else "no trace written"


def _printable(text: str) -> str:
    """``text`` with control characters (a terminal's escape sequences) written as escapes."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

"""The GPU queue's record of the fits that failed on lent machines (``gpu_failures.jsonl`` beside
the queue, committed with the imports): ``import`` adds every failed fit a run's archives name,
and ``prepare`` leaves out a trial once it has failed in GIVE_UP_AFTER runs of the queue (device
calls, on one lent machine or several). A fit that fails the same way every time (an operation
the GPU lacks, memory it never has at the queue's packing) then stops taking each loan's minutes;
``prepare --retry-failed`` queues it again (after a fix, or with a lower ``--concurrent``).
"""

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

GIVE_UP_AFTER = 2
FIELDS = ("study", "key", "run", "machine", "when", "error")
RUN_ID = re.compile(r"[0-9a-f]{32}")  # what the run script writes (uuid4().hex)
MAX_ENVIRONMENT_BYTES = 4096


@dataclass(frozen=True)
class QueueRun:
    """One run of the queue's script on a lent machine: its id and the GPU it found."""

    id: str
    machine: str


def queue_run(files: Path) -> QueueRun:
    """The run that sent back ``files``, as its ``environment.json`` names it. Where that file is
    missing or not what the script writes, the run is named by its archives' digest, the
    machine "unknown"."""
    files = Path(files)
    environment = {}
    path = files / "environment.json"
    try:
        if path.stat().st_size <= MAX_ENVIRONMENT_BYTES:
            environment = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        pass
    if not isinstance(environment, dict):
        environment = {}
    run, gpu = environment.get("run"), environment.get("gpu")
    if not (isinstance(run, str) and RUN_ID.fullmatch(run)):
        digest = hashlib.sha256()
        for archive in sorted(files.glob("*-pack-*.tar")):
            digest.update(archive.read_bytes())
        run = digest.hexdigest()[:32]
    machine = gpu[:100] if isinstance(gpu, str) and gpu.isprintable() else "unknown"
    return QueueRun(run, machine)


class FailureLedger:
    """The record: one JSON line per fit that failed in one run (FIELDS)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def entries(self) -> list[dict]:
        """Every line, each checked (blank ones skipped); a damaged record stops the queue,
        naming the line, rather than be read as fewer failures."""
        if not self.path.exists():
            return []
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise SystemExit(f"{self.path}: not UTF-8 text; mend or remove it") from None
        found = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (ValueError, RecursionError):
                entry = None
            if not isinstance(entry, dict) or not all(
                isinstance(entry.get(field), str) for field in FIELDS
            ):
                raise SystemExit(
                    f"{self.path}:{number}: not a failure line (a JSON object with "
                    f"{', '.join(FIELDS)}); mend or remove it"
                )
            found.append(entry)
        return found

    def add(self, study: str, failures: list, run: QueueRun) -> int:
        """Record ``failures`` (incoming.FailedFit) of ``study`` in ``run``; importing the same
        run again adds nothing, nor does a trace not named by a trial key. Returns how many
        were new."""
        known = {(e["study"], e["key"], e["run"]) for e in self.entries()}
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
        new: dict[str, dict] = {}
        for failure in failures:
            if failure.key is not None and (study, failure.key, run.id) not in known:
                values = (study, failure.key, run.id, run.machine, when, failure.error)
                new[failure.key] = dict(zip(FIELDS, values, strict=True))
        if new:
            with self.path.open("a", encoding="utf-8") as ledger:
                ledger.writelines(json.dumps(entry) + "\n" for entry in new.values())
        return len(new)

    def given_up(self, study: str) -> dict[str, tuple[int, str]]:
        """The trials of ``study`` that failed in GIVE_UP_AFTER runs or more: key -> (runs,
        the last error)."""
        runs: dict[str, set[str]] = {}
        last: dict[str, str] = {}
        for entry in self.entries():
            if entry["study"] == study:
                runs.setdefault(entry["key"], set()).add(entry["run"])
                last[entry["key"]] = entry["error"]
        return {key: (len(r), last[key]) for key, r in runs.items() if len(r) >= GIVE_UP_AFTER}

"""The GPU queue's record of the fits that failed on lent machines (``gpu_failures.jsonl`` beside
the queue, committed with the imports): ``import`` adds every failed fit an archive names, and
``prepare`` leaves out a trial once it has failed on GIVE_UP_AFTER lent machines. A fit that fails
the same way everywhere (an operation the GPU lacks, memory it never has at the queue's packing)
then stops taking each loan's minutes; ``prepare --retry-failed`` queues it again (after a fix,
or with a lower ``--concurrent``).
"""

import hashlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

GIVE_UP_AFTER = 2
FIELDS = ("study", "key", "run", "machine", "when", "error")
TRIAL_KEY = re.compile(r"[0-9a-f]{16}")  # TrialSpec.key: what an archive's trace is named by
MAX_ENVIRONMENT_BYTES = 4096


class FailureLedger:
    def __init__(self, path: Path):
        self.path = Path(path)

    def entries(self) -> list[dict]:
        if not self.path.exists():
            return []
        found = []
        for number, line in enumerate(self.path.read_text().splitlines(), 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
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

    def add(self, study: str, archive: Path, failures: list, machine: str) -> int:
        """Record ``failures`` (incoming.FailedFit) of ``study`` from one archive, one run of
        one lent machine, named by the archive's digest so that importing it again adds
        nothing. Traces not named by a trial key are not recorded. Returns how many were new."""
        run = hashlib.sha256(Path(archive).read_bytes()).hexdigest()[:16]
        known = {(e["study"], e["key"], e["run"]) for e in self.entries()}
        when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
        new = [
            dict(zip(FIELDS, (study, f.key, run, machine, when, f.error), strict=True))
            for f in failures
            if TRIAL_KEY.fullmatch(f.key) and (study, f.key, run) not in known
        ]
        if new:
            with self.path.open("a") as ledger:
                ledger.writelines(json.dumps(entry) + "\n" for entry in new)
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


def machine_name(files: Path) -> str:
    """The GPU the run script found (its ``environment.json``), printable and short; "unknown"
    where the file is missing or not what the script writes."""
    path = Path(files) / "environment.json"
    try:
        if path.stat().st_size > MAX_ENVIRONMENT_BYTES:
            return "unknown"
        gpu = json.loads(path.read_bytes()).get("gpu")
    except (OSError, ValueError, AttributeError):
        return "unknown"
    if not isinstance(gpu, str) or not gpu.isprintable():
        return "unknown"
    return gpu[:100]

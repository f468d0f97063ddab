"""The local Ray instance of one study driver: its own temporary folder, its own token, and the
clean-up of what a killed driver of the same study left running.

A local study never attaches to another Ray instance (a stale ``ray_current_cluster`` file or
``RAY_ADDRESS`` cannot redirect it): it starts Ray in a fresh temporary folder of its own. Ray's
listeners (GCS, raylet, object manager, workers) bind to every interface; token authentication,
with a token made for this run and known only to this driver's processes, makes them refuse any
client without it. This module needs no Ray: it prepares the environment and finds processes.
"""

import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from study.layout import RAY_SESSION_FILE

log = logging.getLogger(__name__)

AUTH_MODE_ENV = "RAY_AUTH_MODE"
AUTH_TOKEN_ENV = "RAY_AUTH_TOKEN"
# Variables that would point a local run at another Ray instance.
REDIRECTING_ENV = ("RAY_ADDRESS",)


@dataclass(frozen=True)
class LocalSession:
    folder: Path
    # Ray's temporary folder, short because Ray puts its sockets there (Unix socket paths are
    # limited to about 100 bytes).
    temp_dir: Path
    # The variables this session changed, as they were, to restore afterwards.
    saved_env: dict[str, str | None]


def prepare(folder: Path) -> LocalSession:
    """Environment and temporary folder of a new local Ray instance for the study in ``folder``;
    cleans up after a killed driver of the same study first."""
    clean_up_after_killed_driver(folder)
    names = (*REDIRECTING_ENV, AUTH_MODE_ENV, AUTH_TOKEN_ENV)
    saved = {name: os.environ.get(name) for name in names}
    for name in REDIRECTING_ENV:
        os.environ.pop(name, None)
    os.environ[AUTH_MODE_ENV] = "token"
    os.environ[AUTH_TOKEN_ENV] = secrets.token_hex(32)
    temp_dir = Path(tempfile.mkdtemp(prefix="inr-ray-"))
    record = {"pid": os.getpid(), "temp_dir": str(temp_dir)}
    (Path(folder) / RAY_SESSION_FILE).write_text(json.dumps(record) + "\n")
    return LocalSession(Path(folder), temp_dir, saved)


def finish(session: LocalSession) -> None:
    """After a clean shutdown: forget the session, remove its folder, restore the environment."""
    (session.folder / RAY_SESSION_FILE).unlink(missing_ok=True)
    shutil.rmtree(session.temp_dir, ignore_errors=True)
    for name, value in session.saved_env.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def processes_using(path: str) -> list[int]:
    """Pids of processes whose command line mentions ``path`` (Linux /proc; none elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if path in command and int(entry.name) != os.getpid():
            pids.append(int(entry.name))
    return pids


def _with_descendants(pids: list[int]) -> list[int]:
    """``pids`` and every process below them: Ray's agents rename themselves (``ray::…``), so
    only their parent's command line still names the folder."""
    children = defaultdict(list)
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            # The parent pid is the second field after the command name, which may hold spaces.
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children[parent].append(int(entry.name))
    found, pending = list(dict.fromkeys(pids)), list(pids)
    while pending:
        for child in children[pending.pop()]:
            if child not in found and child != os.getpid():
                found.append(child)
                pending.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_processes_using(path: str) -> int:
    """Stop the processes whose command line mentions ``path`` and every process they started
    (SIGTERM, then SIGKILL after 5 s); returns how many there were. Unlike ``ray stop``, which
    stops every Ray process of the user, this touches one Ray instance: the one started with
    ``path`` as its folder."""
    pids = _with_descendants(processes_using(path))
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)


def clean_up_after_killed_driver(folder: Path) -> int:
    """Stop the Ray processes of a session whose driver is gone; returns how many were stopped.

    Called with the study lock held, so the recorded driver is not running any more (a live one
    would hold the lock): whatever still runs in its Ray folder is left over.
    """
    path = Path(folder) / RAY_SESSION_FILE
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return 0
    temp_dir = record.get("temp_dir")
    if not temp_dir or not temp_dir.startswith(tempfile.gettempdir()):
        return 0  # not a folder this module made: touch nothing
    stopped = stop_processes_using(temp_dir)
    if stopped:
        log.info(
            "stopped %d Ray processes left running by a killed driver (pid %s)",
            stopped,
            record.get("pid"),
        )
    shutil.rmtree(temp_dir, ignore_errors=True)
    path.unlink(missing_ok=True)
    return stopped

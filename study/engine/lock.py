"""One driver per study folder: ``run`` and ``resume`` hold an exclusive lock on the folder.

The lock is an OS file lock (``filelock``, fcntl on Linux), so the kernel releases it when its
holder dies, however it dies: a lock left by a killed driver is simply free, and the next driver
takes it over. Beside it, a small JSON file says who holds it (pid, host, since), for the message a
second driver gets and for the notice when a dead driver's lock is taken over.
"""

import json
import logging
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from study.errors import InputError
from study.layout import LOCK_FILE, LOCK_HOLDER_FILE, refuse_published_copy

log = logging.getLogger(__name__)


class StudyBusyError(InputError):
    """Another driver is running this study."""


def _holder(folder: Path) -> dict:
    try:
        return json.loads((folder / LOCK_HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "another process"
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')}, since {since}"


@contextmanager
def study_lock(folder: Path) -> Iterator[None]:
    """Hold the study folder for this driver; StudyBusyError at once if another holds it."""
    folder = Path(folder)
    refuse_published_copy(folder)  # nothing written in one, not even the lock
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise StudyBusyError(
            f"{folder}: this study is already running ({_describe(_holder(folder))}); "
            "wait for it, or stop it, before running or resuming it again"
        ) from None
    previous = _holder(folder)
    if previous:
        log.info("taking over the study from a driver that stopped (%s)", _describe(previous))
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.time()}
    (folder / LOCK_HOLDER_FILE).write_text(json.dumps(holder) + "\n")
    try:
        yield
    finally:
        (folder / LOCK_HOLDER_FILE).unlink(missing_ok=True)
        lock.release()

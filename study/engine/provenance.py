"""Where and with what code a trial ran: recorded with every trial, whichever executor ran it."""

import functools
import os
import platform
import socket
import subprocess
from pathlib import Path

GIT_COMMIT_ENV = "INR_STUDY_GIT_COMMIT"


def git_commit() -> str:
    """The code's commit: INR_STUDY_GIT_COMMIT when the submitter set it (``ray job submit`` and
    work packages carry the working tree without ``.git``), else ``git rev-parse HEAD`` of this
    checkout."""
    if os.environ.get(GIT_COMMIT_ENV):
        return os.environ[GIT_COMMIT_ENV]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def code_tags(commit: str) -> dict[str, str]:
    """A run's code version: our tag, MLflow's (its Version column) and a source name that starts
    with it, so MLflow's Source column shows it too."""
    name = f"{commit[:7]} inr-study" if commit != "unknown" else "inr-study (commit unknown)"
    return {"git_commit": commit, "mlflow.source.git.commit": commit, "mlflow.source.name": name}


def machine(device: str) -> dict:
    """The host, the torch device and the software a trial ran with."""
    import torch

    cuda = torch.cuda.is_available() and device.startswith("cuda")
    return {
        "host": socket.gethostname(),
        "device": device,
        "device_name": torch.cuda.get_device_name(device) if cuda else cpu_name(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
    }


@functools.cache  # read once per process: every trial's record asks
def cpu_name() -> str:
    """The CPU's model name ("AMD EPYC …"), from /proc/cpuinfo on Linux, where
    ``platform.processor()`` is empty, and whether it has AVX-512 (numpy's log10 and sort give
    other bits with it: DEVELOPERS.md)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or platform.machine()
    first_cpu = lines[: lines.index("")] if "" in lines else lines
    fields = {key.strip(): value.strip() for key, _, value in (x.partition(":") for x in first_cpu)}
    name = fields.get("model name") or platform.machine()
    if "flags" not in fields:
        return name
    return f"{name} ({'AVX-512' if 'avx512f' in fields['flags'].split() else 'no AVX-512'})"

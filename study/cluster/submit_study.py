"""Entry script of a study on a running Ray cluster, for ``ray submit`` and ``ray job submit``.

``ray submit CLUSTER.yaml study/cluster/submit_study.py -- run CONFIG`` copies this file to the
head and runs it there; ``ray job submit --working-dir . -- python study/cluster/submit_study.py
run CONFIG`` runs it in Ray's temporary copy of the working directory. The arguments are an
``inr-study`` command line; ``run`` and ``resume`` join the cluster (``--address auto`` unless
given).

A study folder must outlive the job: ``run`` without an absolute ``--storage`` keeps its studies
in INR_STUDY_STORAGE, else ~/inr-study/studies on the head, never in the job's temporary copy; the
folder is printed at the start. ``.git`` is not uploaded with the working directory, so the
submitter passes the code version in INR_STUDY_GIT_COMMIT (see README, "On a cluster").
"""

import os
import sys
from pathlib import Path

import yaml

from study.cli import main

STORAGE_ENV = "INR_STUDY_STORAGE"
DEFAULT_STORAGE = Path.home() / "inr-study" / "studies"


def _durable_storage(argv: list[str]) -> list[str]:
    """``run`` arguments whose study folder lies outside the job's working directory: an
    absolute storage given on the command line or in the config is kept, anything else
    replaced."""
    if "--storage" in argv:
        index = argv.index("--storage") + 1
        if Path(argv[index]).is_absolute():
            return argv
        argv = argv[: index - 1] + argv[index + 1 :]
    else:
        try:
            configured = yaml.safe_load(Path(argv[1]).read_text()).get("storage")
        except (IndexError, OSError, AttributeError, yaml.YAMLError):
            configured = None  # `run` itself reports an unreadable config
        if configured and Path(configured).is_absolute():
            return argv
    storage = Path(os.environ.get(STORAGE_ENV) or DEFAULT_STORAGE).expanduser().resolve()
    return [*argv, "--storage", str(storage)]


if __name__ == "__main__":
    argv = sys.argv[1:]
    if argv[:1] == ["run"]:
        argv = _durable_storage(argv)
    if argv[:1] in (["run"], ["resume"]) and "--address" not in argv:
        argv += ["--address", "auto"]
    sys.exit(main(argv))

"""What a study folder holds, in one place.

A study folder is portable: it records no absolute path of its own, so it can be copied or moved
(and the original deleted) and every command works on the copy. Its own MLflow store is found from
the folder's location; a tracking server given by the user is recorded as given.
"""

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from study.config import StudyConfig, StudyConfigError, load_config
from study.errors import InputError

CONFIG_FILE = "study.yaml"  # the validated config the study ran with (resume reads it)
STATE_FILE = "study.json"  # experiment, parent run id and, for a server, its tracking URI
REPORTS_DIR = "reports"
RECOMMENDATIONS_FILE = "recommendations.json"  # match-mode searches: α per task
PARETO_FILE = "pareto.json"  # pareto-mode searches: each task's (bpp, metric) front
MLFLOW_DB = "mlflow.db"  # the study's own MLflow store (SQLite), unless a server was given
ARTIFACTS_DIR = "mlartifacts"  # the runs' files: bitstream, decoded image, summary
OPTUNA_DB = "optuna.db"
RAY_DIR = "ray"  # Ray Tune's experiment files
LOCK_FILE = "study.lock"  # held by the driver running the study
LOCK_HOLDER_FILE = "study.lock.json"  # who holds it: pid, host, since
RAY_SESSION_FILE = "ray-session.json"  # the local Ray session a driver started, for clean-up
# A published study's trials, enough to rebuild it: one trial record per line, and each file.
TRIALS_FILE = "trials.jsonl"
BITSTREAMS_DIR = "bitstreams"
# Files taken out of the working tree, each read back from the git history that holds it.
HISTORY_FILE = "bitstreams-history.json"


def is_published_copy(folder: Path) -> bool:
    """A published study (``inr-study export``) holds its config and ``trials.jsonl`` but no
    MLflow store; a study folder never holds ``trials.jsonl``."""
    return (Path(folder) / TRIALS_FILE).is_file()


@dataclass(frozen=True)
class StudyState:
    """What ``study.json`` keeps once the study has a parent run: its id, a tracking server the
    user gave (None: the folder's own store) and the MLflow experiment."""

    parent_run_id: str | None = None
    tracking_uri: str | None = None
    experiment: str | None = None


def holds_study(folder: Path) -> bool:
    """A study folder or a published copy (its config, or its trials): what no command's output
    is written over."""
    return (Path(folder) / CONFIG_FILE).exists() or is_published_copy(folder)


class StudyFolderError(InputError):
    """A folder that cannot be worked on as a study folder: a published copy, a damaged state."""


def refuse_published_copy(folder: Path) -> None:
    """A study folder is worked on (run, resumed, rescored, imported into, exported, browsed);
    a published copy is not one: it is recreated as one first."""
    if is_published_copy(folder):
        raise StudyFolderError(
            f"{folder}: a published study keeps no MLflow store (its reports, figures and page "
            f"are as published); to run, resume, rescore, import into, export or browse it, "
            f"recreate it first: inr-study rebuild {folder} --storage DIR"
        )


def read_state(folder: Path) -> StudyState:
    """The folder's state (empty before its first run or import); a damaged ``study.json`` is
    refused, naming it, before anything reads the store it would point to."""
    path = Path(folder) / STATE_FILE
    if not path.exists():
        return StudyState()
    names = [f.name for f in fields(StudyState)]
    try:
        state = json.loads(path.read_bytes())
    except (OSError, ValueError) as error:  # JSON's and UTF-8's errors are ValueErrors
        raise StudyFolderError(f"{path}: not readable as the study's state ({error})") from None
    except RecursionError:
        raise StudyFolderError(f"{path}: nested too deeply to be the study's state") from None
    if not isinstance(state, dict) or not set(state) <= set(names):
        raise StudyFolderError(f"{path}: expected a JSON object with some of {', '.join(names)}")
    wrong = [k for k, v in state.items() if v is not None and not isinstance(v, str)]
    if wrong:
        raise StudyFolderError(f"{path}: {', '.join(wrong)} must be text or null")
    return StudyState(**state)


def write_state(folder: Path, state: StudyState) -> None:
    (Path(folder) / STATE_FILE).write_text(json.dumps(asdict(state), indent=2) + "\n")


def load_study_config(folder: Path, overrides: dict | None = None) -> StudyConfig:
    """A study folder's config; ``overrides`` as ``load_config`` takes them."""
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise StudyConfigError(f"{folder}: not a study folder (no {CONFIG_FILE})")
    return load_config(path, overrides)


def sqlite_uri(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def default_tracking_uri(folder: Path) -> str:
    return sqlite_uri(Path(folder) / MLFLOW_DB)


def _recorded_uri(folder: Path, state: StudyState) -> str | None:
    """The tracking URI the study recorded, None for its own store. Folders written before
    studies became portable recorded their own store's absolute path: read it as their own."""
    recorded = state.tracking_uri
    own_store_elsewhere = (
        recorded is not None
        and recorded.startswith("sqlite:")
        and recorded.endswith(f"/{MLFLOW_DB}")
        and (Path(folder) / MLFLOW_DB).exists()
    )
    return None if own_store_elsewhere else recorded


def tracking_location(folder: Path, config: StudyConfig) -> tuple[str, str]:
    """The study's MLflow tracking URI and experiment: as recorded when it ran, else as its config
    says (default: a SQLite file in the folder, an experiment named after the study)."""
    state = read_state(folder)
    recorded, asked = _recorded_uri(folder, state), config.tracking.uri
    if recorded and asked and recorded != asked:
        raise StudyConfigError(
            f"{folder}: this study's runs are in {recorded}, not {asked}; "
            "give the study another name to use another MLflow store"
        )
    uri = recorded or asked or default_tracking_uri(folder)
    return uri, state.experiment or config.tracking.experiment or config.name


def recorded_tracking_uri(folder: Path, uri: str) -> str | None:
    """What ``study.json`` keeps of a tracking URI: nothing for the folder's own store."""
    return None if uri == default_tracking_uri(folder) else uri

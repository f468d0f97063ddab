"""What a study folder holds, in one place."""

import json
from pathlib import Path

from study.config import StudyConfig, StudyConfigError, load_config

CONFIG_FILE = "study.yaml"  # the validated config the study ran with (resume reads it)
STATE_FILE = "study.json"  # MLflow URI, experiment and parent run id
REPORTS_DIR = "reports"
TRIALS_DIR = "trials"  # per-trial bitstream, decoded PNG and JSON, by trial key
RECOMMENDATIONS_FILE = "recommendations.json"


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(folder: Path, state: dict) -> None:
    (Path(folder) / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n")


def load_study_config(folder: Path) -> StudyConfig:
    path = Path(folder) / CONFIG_FILE
    if not path.exists():
        raise StudyConfigError(f"{folder}: not a study folder (no {CONFIG_FILE})")
    return load_config(path)


def default_tracking_uri(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / 'mlflow.db').resolve()}"


def tracking_location(folder: Path, config: StudyConfig) -> tuple[str, str]:
    """The study's MLflow tracking URI and experiment: as recorded when it ran, else as its config
    says (default: a SQLite file in the folder, an experiment named after the study)."""
    state = read_state(folder)
    recorded, asked = state.get("tracking_uri"), config.tracking.uri
    if recorded and asked and recorded != asked:
        raise StudyConfigError(
            f"{folder}: this study's runs are in {recorded}, not {asked}; "
            "give the study another name to use another MLflow store"
        )
    uri = recorded or asked or default_tracking_uri(folder)
    return uri, state.get("experiment") or config.tracking.experiment or config.name

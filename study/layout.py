"""What a study folder holds, in one place."""

import json
from pathlib import Path

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

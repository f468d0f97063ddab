"""``inr-study resume STUDY_DIR``: continue a study whose driver stopped. Trials with a finished
MLflow run are not redone; runs a killed driver left open are closed as KILLED."""

import argparse
from pathlib import Path

from study.config import StudyConfigError, load_config
from study.engine import Study
from study.layout import CONFIG_FILE
from study.run import add_engine_arguments, finish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study resume", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    add_engine_arguments(parser)
    args = parser.parse_args(argv)
    config_path = args.folder / CONFIG_FILE
    if not config_path.exists():
        raise StudyConfigError(f"{args.folder}: not a study folder (no {CONFIG_FILE})")
    study = Study(load_config(config_path), args.folder)
    return finish(study, study.run(args.address), args)

"""``inr-study resume STUDY_DIR``: continue a study whose driver stopped. Trials with a finished
MLflow run are not redone; runs a killed driver left open are closed as KILLED."""

import argparse
from pathlib import Path

from study.engine import Study
from study.layout import load_study_config
from study.run import add_engine_arguments, finish


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study resume", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    add_engine_arguments(parser)
    args = parser.parse_args(argv)
    study = Study(load_study_config(args.folder), args.folder)
    return finish(study, study.run(args.address), args)

"""Continue an interrupted study; finished trials are kept.

Trials with a finished MLflow run are not redone; runs a killed driver left open are closed as
KILLED. --where runs only some of what is left now (a grid's trials, a search's whole tasks).
"""

import argparse
from pathlib import Path

from study.commands.run import add_engine_arguments, run_study


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study resume", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    add_engine_arguments(parser)
    args = parser.parse_args(argv)

    from study.engine.runner import Study
    from study.layout import load_study_config

    overrides = {"max_concurrent": args.max_concurrent} if args.max_concurrent else None
    study = Study(load_study_config(args.folder, overrides), args.folder)
    return run_study(study, args)

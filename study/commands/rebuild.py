"""Recreate a study folder from a published study's trials (results/NAME), refitting nothing.

Every trial's file is decoded and its figures checked, as `inr-study import` does, and the reports
are written again: they must equal the published ones byte for byte (exit status 1 if not).
"""

import argparse
from pathlib import Path

from study.commands.cliargs import add_jobs_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study rebuild", description=__doc__)
    parser.add_argument("published", type=Path, help="a published study, e.g. results/icip24-cpu")
    parser.add_argument(
        "--storage", type=Path, required=True, help="parent folder of the new study folder"
    )
    add_jobs_argument(parser)
    args = parser.parse_args(argv)

    from study.engine.archive import rebuild

    done = rebuild(args.published, args.storage, jobs=args.jobs)
    print(f"{done.folder}: {done.trials} trials rebuilt from {args.published}")
    if done.differing:
        from study.layout import REPORTS_DIR
        from study.results.report_diff import describe_difference

        print("reports differ from the published ones:")
        ours, theirs = done.folder / REPORTS_DIR, args.published / REPORTS_DIR
        for name in done.differing:
            print(f"  {name}: {describe_difference(ours / name, theirs / name)}")
        return 1
    print("reports: byte-identical to the published ones")
    return 0

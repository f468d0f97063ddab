"""Record trials run elsewhere (`inr-study work` output, its archives) in a study.

Every result is checked first — a trial of this study, fitted on the study's own image, its file
decoding here, its rate and quality equal to what the file gives — and one refused result stops
the import with nothing written. The reports are written again afterwards.
"""

import argparse
import sys
from pathlib import Path

from study.commands.cliargs import add_jobs_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study import", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    parser.add_argument(
        "results",
        type=Path,
        nargs="+",
        help="work output folders, trial folders or pack-N.tar archives",
    )
    parser.add_argument(
        "--config", type=Path, help="the study's YAML, to create the study folder if it is new"
    )
    parser.add_argument(
        "--skip-recorded",
        action="store_true",
        help="leave out results the study already holds instead of refusing them "
        "(importing a growing work output again)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the reports")
    add_jobs_argument(parser)
    args = parser.parse_args(argv)

    from study.config import load_config
    from study.engine.importer import import_results
    from study.engine.incoming import failed_fits
    from study.engine.reports import refresh_reports
    from study.layout import REPORTS_DIR, load_study_config

    failed = failed_fits(args.results)
    if failed:
        print(
            f"{len(failed)} fit{'s' * (len(failed) != 1)} failed there, with nothing to import; "
            "`inr-study work` on the same output, or a package of what is left (`inr-study "
            "shard --skip-done`), retries them:",
            file=sys.stderr,
        )
        for line in failed:
            print(f"  {line}", file=sys.stderr)
    config = None
    if args.config is not None:
        config = load_config(args.config, {"storage": str(args.folder.parent)})
    done = import_results(
        args.folder, args.results, config, skip_recorded=args.skip_recorded, jobs=args.jobs
    )
    skipped = f", {done.skipped} already recorded left out" if done.skipped else ""
    print(f"{args.folder}: {done.trials} trials imported{skipped}")
    if done.filled:
        print(f"  {done.filled} metric values they lacked were computed here")
    if not args.no_report:
        written = refresh_reports(args.folder, load_study_config(args.folder))
        print(f"reports: {args.folder / REPORTS_DIR} ({len(written)} files)")
    return 0

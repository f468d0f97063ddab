"""Recompute quality metrics of a finished study from its stored decoded images, without refitting.

By default each trial gets the metrics it recorded as missing (LPIPS on a machine without its
weights, for instance); --metrics recomputes the named ones on every trial. The reports are written
again afterwards.
"""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study rescore", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    parser.add_argument(
        "--metrics",
        help="comma-separated quality metrics to recompute on every trial (default: each "
        "trial's missing ones)",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the reports again")
    args = parser.parse_args(argv)
    asked = None if args.metrics is None else [m.strip() for m in args.metrics.split(",")]

    from study.engine.reports import refresh_reports
    from study.engine.rescore import rescore
    from study.layout import REPORTS_DIR, load_study_config

    done = rescore(args.folder, asked)
    print(f"rescored {done.runs} trials: {done.values} metric values written")
    for key, runs in sorted(done.still_missing.items()):
        print(f"  still missing: {key} on {runs} trials")
    if done.runs and not args.no_report:
        written = refresh_reports(args.folder, load_study_config(args.folder))
        print(
            f"reports: {args.folder / REPORTS_DIR} ({len(written)} files); rebuild a dashboard "
            "page with `inr-study dashboard` to show the new values"
        )
    return 0

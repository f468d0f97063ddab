"""Keep a study's trials with its published copy: config, trial records and every file.

Writes OUT/study.yaml, OUT/trials.jsonl (one record per trial: spec, settings, figures, where it
ran, validations) and OUT/bitstreams/KEY.bin, from which `inr-study rebuild` recreates the study.
"""

import argparse
from pathlib import Path

from study.commands.cliargs import add_where_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study export", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the published copy")
    add_where_argument(parser, "only the trials the published reports show")
    args = parser.parse_args(argv)

    from study.engine.archive import export_trials
    from study.engine.selection import parse_where

    done = export_trials(args.folder, args.output, parse_where(args.where))
    kept = f" ({done.kept_in_history} more kept in git history)" if done.kept_in_history else ""
    print(
        f"{args.output}: {done.trials} trials, {done.bitstream_bytes / 1024:.0f} KiB of files"
        f"{kept}, {done.record_bytes / 1024:.0f} KiB of records"
    )
    return 0

"""R-D JSON, per-image CSV and BD-rate tables of a study, from its MLflow runs."""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inr-study report",
        description="Write STUDY_DIR/reports/: a CompressAI-format JSON per codec and loss, a "
        "per-image CSV, BD-rate tables against each codec's published loss and, with classical "
        "codecs in the study, against each of them.",
    )
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    args = parser.parse_args(argv)

    from study.engine.reports import refresh_reports
    from study.layout import REPORTS_DIR, load_study_config

    written = refresh_reports(args.folder, load_study_config(args.folder))
    out = args.folder / REPORTS_DIR
    for table in sorted(out.glob("bd_rate*.md")):
        print(table.read_text())
    print(f"wrote {len(written)} files to {out}")
    return 0

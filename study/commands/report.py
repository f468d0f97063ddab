"""R-D JSON, per-image CSV and BD-rate tables of a study, from its MLflow runs."""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inr-study report",
        description="Write STUDY_DIR/reports/: a CompressAI-format JSON per codec and loss, a "
        "per-image CSV and BD-rate tables against each codec's published loss.",
    )
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    args = parser.parse_args(argv)

    from study.engine.tracking import study_store
    from study.layout import REPORTS_DIR, load_study_config
    from study.results.report import write_reports

    config = load_study_config(args.folder)
    out = args.folder / REPORTS_DIR
    written = write_reports(study_store(args.folder, config).records(), config.name, out)
    print((out / "bd_rate.md").read_text())
    print(f"wrote {len(written)} files to {out}")
    return 0

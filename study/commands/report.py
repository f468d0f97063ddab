"""R-D JSON, per-image CSV and BD-rate tables of a study, from its MLflow runs (or, for a
published copy under ``results/``, from its ``reports/per_image.csv``)."""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inr-study report",
        description="Write STUDY_DIR/reports/: a CompressAI-format JSON per codec and loss, a "
        "per-image CSV, BD-rate tables against each codec's published loss and, with classical "
        "codecs in the study, against each of them, and the verdict on each of the paper's claims "
        "the study can test (claims.md). A published study (results/NAME, no "
        "study.yaml) gets its tables written again from its reports/per_image.csv.",
    )
    parser.add_argument(
        "folder", type=Path, help="the study folder (holds study.yaml), or a published copy"
    )
    args = parser.parse_args(argv)

    from study.engine.archive import published_config
    from study.engine.reports import refresh_reports, write_plan_reports
    from study.errors import InputError
    from study.layout import CONFIG_FILE, REPORTS_DIR, is_published_copy, load_study_config
    from study.results.report import read_per_image_csv, write_reports

    out = args.folder / REPORTS_DIR
    # A published copy keeps its config (study.yaml) but no MLflow store: its records are its
    # per_image.csv, never an empty store opened there.
    if is_published_copy(args.folder) or not (args.folder / CONFIG_FILE).exists():
        if not (out / "per_image.csv").exists():
            raise InputError(
                f"{args.folder}: neither a study folder ({CONFIG_FILE}) nor a published "
                f"one ({REPORTS_DIR}/per_image.csv)"
            )
        records = read_per_image_csv(out / "per_image.csv")
        stale_names = ("bd_rate*", "equal_rate*", "*.json", "alpha.*", "coverage.md", "claims.*")
        for stale in [p for name in stale_names for p in out.glob(name)]:
            stale.unlink()  # what the records no longer give must not stay behind
        config = None
        if (args.folder / CONFIG_FILE).exists():
            config = published_config(args.folder, args.folder.resolve().parent)
        name = config.name if config is not None else args.folder.resolve().name
        written = write_reports(records, name, out)
        if config is not None:
            written += write_plan_reports(config, records, out)
    else:
        written = refresh_reports(args.folder, load_study_config(args.folder))
    for table in sorted(out.glob("bd_rate*.md")):
        print(table.read_text())
    claims = out / "claims.md"
    if claims.exists():  # its summary table: the claims and their verdicts
        print(claims.read_text().partition("\n## ")[0])
    print(f"wrote {len(written)} files to {out}")
    return 0

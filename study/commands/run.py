"""Run a study config on Ray Tune (local or a cluster), tracked in MLflow, then write its reports.

The config is validated first; trials run on local Ray or on the cluster given by --address.
"""

import argparse
from pathlib import Path

from study.commands.cliargs import add_where_argument


def add_engine_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address", help="Ray cluster to join ('auto' on a cluster node); default: local Ray"
    )
    parser.add_argument(
        "--local-cpus",
        type=int,
        help="CPUs the local Ray may use (default: all); ignored with --address",
    )
    parser.add_argument(
        "--local-gpus",
        type=int,
        help="GPUs the local Ray hands out (default: those it finds); with device: cpu, a number "
        "rehearses GPU packing on a machine without one (each trial sees its share in "
        "CUDA_VISIBLE_DEVICES); ignored with --address",
    )
    parser.add_argument(
        "--max-concurrent",
        type=int,
        help="trials running at once (default: the config's); kept in the study folder's config",
    )
    add_where_argument(
        parser,
        "run only these trials now, the rest staying pending (a search picks whole tasks: "
        "codec=..., family=..., search=TASK)",
    )
    parser.add_argument("--no-report", action="store_true", help="skip the reports at the end")


def run_study(study, args: argparse.Namespace) -> int:
    """``study`` run as ``add_engine_arguments``'s options say, then its config and reports kept
    on its parent run and in its folder (``finish``) before the study is let go; the exit code."""
    from study.engine.selection import parse_where

    def finish(result) -> None:
        print_where(result)
        keep_config_and_reports(study, skip_reports=args.no_report)

    where = parse_where(args.where)
    result = study.run(args.address, args.local_cpus, args.local_gpus, where, then=finish)
    return 0 if result.counts["failed"] == 0 else 1


def print_where(result) -> None:
    print(f"study folder: {result.folder}")
    print(f"MLflow store: {result.tracking_uri} (experiment {result.experiment!r})")
    print(f"  browse its trials in MLflow's UI: inr-study mlflow {result.folder}")
    print(", ".join(f"{k}: {v}" for k, v in result.counts.items()) + " trials")


def keep_config_and_reports(study, skip_reports: bool = False) -> None:
    """The config as an artifact of the study's parent run and, unless skipped, the reports."""
    from study.engine.reports import refresh_reports
    from study.engine.tracking import study_store
    from study.layout import CONFIG_FILE, REPORTS_DIR, read_state

    store = study_store(study.folder, study.config)
    parent = read_state(study.folder).parent_run_id
    store.log_parent_artifacts(parent, [study.folder / CONFIG_FILE], "")
    if not skip_reports:
        written = refresh_reports(study.folder, study.config, store)
        print(f"reports: {study.folder / REPORTS_DIR} ({len(written)} files)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study run", description=__doc__)
    parser.add_argument("config", type=Path, help="study YAML, e.g. study/configs/demo.yaml")
    parser.add_argument("--name", help="study name (default: the config's)")
    parser.add_argument(
        "--storage", type=Path, help="parent folder of the study folder (default: the config's)"
    )
    parser.add_argument("--mlflow-uri", help="tracking server, e.g. http://head:5000")
    parser.add_argument("--validate-only", action="store_true", help="check the config and stop")
    add_engine_arguments(parser)
    args = parser.parse_args(argv)

    from study.config import load_config

    overrides = {
        key: value
        for key, value in {
            "name": args.name,
            "storage": args.storage and str(args.storage),
            "max_concurrent": args.max_concurrent,
        }.items()
        if value is not None
    }
    config = load_config(args.config, overrides)
    if args.mlflow_uri:
        config = config.model_copy(
            update={"tracking": config.tracking.model_copy(update={"uri": args.mlflow_uri})}
        )
    if args.validate_only:
        from study.engine.plan import check_images, check_losses, header_sizes
        from study.engine.selection import parse_where, pick

        images = check_images(config)  # headers only: no pixels decoded, no Ray
        check_losses(config, header_sizes(config, images))
        pick(config, list(images), parse_where(args.where))
        print(f"{args.config}: valid ({len(images)} images)")
        return 0
    from study.engine.runner import Study

    study = Study(config)
    print(f"study folder: {study.folder}", flush=True)
    return run_study(study, args)

"""Run a work package's trials with plain processes: no Ray, no MLflow, any machine.

Trials run in the package's order (an image at a time), --concurrent at a time on one device;
with --batch B, up to B consecutive fits of one codec and preset share a process and train as one
batch (one set of kernels for B fits: what keeps a GPU busy). Each finished trial is written
whole to OUT/trials/KEY/ (its file and its record: figures, timings, device, versions, host,
validations); a rerun skips them. A search's package holds matches instead: each fits on until
its rate lands on the task's target, --concurrent matches at a time, each fit written as a
trial; a rerun goes on from the fits there. Bring OUT back and record it with `inr-study import`.
"""

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study work", description=__doc__)
    parser.add_argument("package", type=Path, help="a package folder written by inr-study shard")
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for results")
    parser.add_argument(
        "--concurrent", type=int, default=1, help="trials at once on the device (default 1)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=1,
        help="fits trained together as one batch, per worker (default 1: one fit at a time; a "
        "match's fits always run one at a time, each aimed by the ones before)",
    )
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per trial")
    parser.add_argument(
        "--minutes",
        type=float,
        help="start no trial that cannot finish within this many minutes (judged by the longest "
        "trial of its codec and preset so far)",
    )
    parser.add_argument(
        "--pack", action="store_true", help="also write OUT/pack-N.tar archives of <= 16 MiB"
    )
    args = parser.parse_args(argv)
    if min(args.concurrent, args.threads, args.batch) < 1:
        parser.error("--concurrent, --threads and --batch must be at least 1")

    from study.engine.package import read_package
    from study.engine.work import CLOSEST, ON_TARGET, OUT_OF_TIME, pack, run_package

    package = read_package(args.package)
    try:
        done = run_package(
            package,
            args.output,
            concurrent=args.concurrent,
            device=args.device,
            threads=args.threads,
            minutes=args.minutes,
            batch=args.batch,
        )
    finally:  # what finished travels back even when the run itself broke
        packs = pack(args.output) if args.pack else []
    if package.matches:
        print(
            f"{package.study} part {package.part}: {len(package.matches)} matches, "
            f"{done.ends[ON_TARGET]} on target, {done.ends[CLOSEST]} closest (the target not "
            f"reached), {done.ends[OUT_OF_TIME]} stopped for time, {len(done.failed)} failed; "
            f"{done.finished} fits made now"
        )
    else:
        print(
            f"{package.study} part {package.part}: {done.finished} trials finished now, "
            f"{done.skipped} earlier, {len(done.failed)} failed, {done.not_started} not "
            "started (no time left)"
        )
    for line in done.failed:
        print(f"  failed: {line}", file=sys.stderr)
    for path in packs:
        print(f"  {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 1 if done.failed else 0

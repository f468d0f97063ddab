"""Split a study into self-contained work packages, to run anywhere with `inr-study work`.

Each package holds the study's prepared images with their digests, the config, the code's commit,
and its part of the work: a grid study's trials (under the keys the study uses), or a
rate-matching search's matches (task, α, image; the search needs an α grid, search.alphas) with
the study's earlier fits on their images, so each match is fitted as the driver would fit it.
A search whose α Optuna chooses needs its driver (`inr-study run`).
"""

import argparse
from pathlib import Path

from study.commands.cliargs import add_where_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study shard", description=__doc__)
    parser.add_argument("config", type=Path, help="study YAML, e.g. study/configs/icip24.yaml")
    parser.add_argument("-o", "--output", type=Path, required=True, help="new folder for parts")
    add_where_argument(parser, "only these trials")
    parser.add_argument(
        "--parts", type=int, default=1, help="packages to split into (part-0 ... part-N-1)"
    )
    parser.add_argument(
        "--skip-done",
        type=Path,
        action="append",
        default=[],
        metavar="PATH",
        help="leave out trials recorded here: a study folder, a published study (trials.jsonl), "
        "the output of `inr-study work`, or packages made before (repeatable); a search's "
        "matches start from the fits recorded here",
    )
    args = parser.parse_args(argv)

    from study.config import load_config
    from study.engine.selection import parse_where
    from study.engine.sharding import shard

    config = load_config(args.config)
    parts = shard(
        config,
        args.output,
        where=parse_where(args.where),
        parts=args.parts,
        skip_done=args.skip_done,
    )
    from study.engine.package import read_package

    packages = [read_package(part) for part in parts]
    unit = packages[0].unit
    total = sum(len(package.items) for package in packages)
    print(f"{config.name}: {total} {unit} in {len(parts)} packages under {args.output}")
    for part, package in zip(parts, packages, strict=True):
        print(f"  {part}: {len(package.items)} {unit}")
    print(f"run one with: inr-study work {parts[0]} -o OUT; then: inr-study import STUDY OUT")
    return 0

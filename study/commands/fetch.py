"""Download (or copy from a mirror) and verify a dataset."""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from study.data.datasets import KODAK_MIRROR_ENV, default_cache_dir, kodak

    parser = argparse.ArgumentParser(prog="inr-study fetch", description=__doc__)
    parser.add_argument("dataset", choices=["kodak"], help="the dataset to fetch")
    parser.add_argument("--kodak-mirror", metavar="DIR", help=f"local copy (or {KODAK_MIRROR_ENV})")
    parser.add_argument("--cache-dir", type=Path, help=f"default: {default_cache_dir()}")
    args = parser.parse_args(argv)
    records = kodak(cache_dir=args.cache_dir, mirror=args.kodak_mirror)
    print(f"{len(records)} images verified in {records[0].path.parent}")
    return 0

"""The image a benchmark measures on: a file given with ``--image``, or else one of Kodak's from
the dataset cache a study uses (fetched and checked on first use; ``--kodak-mirror`` or
INR_STUDY_KODAK_MIRROR copies it from a local folder instead), so no script holds a path of the
machine it was written on."""

import argparse
from pathlib import Path


def add_image_arguments(parser: argparse.ArgumentParser, default: str = "kodim01") -> None:
    parser.add_argument("--image", type=Path, help=f"an image file (default: Kodak's {default})")
    parser.add_argument(
        "--kodak-mirror",
        type=Path,
        help="local folder of the Kodak images (or INR_STUDY_KODAK_MIRROR)",
    )
    parser.set_defaults(kodak_image=default)


def image_path(args: argparse.Namespace) -> Path:
    """``--image``, or the Kodak image the script defaults to, from the cache."""
    if args.image is not None:
        return args.image
    from study.data.datasets import kodak

    [record] = kodak(mirror=args.kodak_mirror, only=[args.kodak_image], progress=False)
    return record.path

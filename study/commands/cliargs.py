"""Command-line arguments shared by several ``inr-study`` tools."""

import argparse
from pathlib import Path

from study.data.datasets import (
    ANCHORS,
    KODAK_MIRROR_ENV,
    ImageOptions,
    ImageRecord,
    resolve_dataset,
    select,
)
from study.data.imageio import MIN_SIDE


def add_where_argument(parser: argparse.ArgumentParser, purpose: str) -> None:
    """``--where FIELD=VALUE,...``, read by ``study.engine.selection.parse_where``."""
    parser.add_argument(
        "--where",
        help=f"{purpose}: FIELD=VALUE pairs, comma-separated (codec=nif,loss=mse,loss=l1: "
        "different fields must all match, one field's values are alternatives)",
    )


def add_optional_metrics_argument(
    parser: argparse.ArgumentParser | argparse._ArgumentGroup,
) -> None:
    """``--no-optional-metrics``: the metric table's optional metrics are recorded as missing."""
    parser.add_argument(
        "--no-optional-metrics",
        action="store_true",
        help="skip the metrics that need downloaded network weights (LPIPS): recorded as missing",
    )


def add_jobs_argument(parser: argparse.ArgumentParser) -> None:
    """``--jobs N`` for the tools that decode and check trials (``import``, ``rebuild``)."""
    parser.add_argument(
        "--jobs",
        type=_at_least_one,
        default=1,
        metavar="N",
        help="processes decoding and checking the trials (default 1; each takes one core and "
        "loads its own copy of the metrics' networks: worth it for many trials)",
    )


def _at_least_one(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)


def add_dataset_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("images")
    group.add_argument("--dataset", default="kodak", help="'kodak' or a folder of images")
    group.add_argument(
        "--kodak-mirror",
        metavar="DIR",
        help=f"copy Kodak from this local folder instead of downloading ({KODAK_MIRROR_ENV})",
    )
    group.add_argument(
        "--cache-dir", type=Path, help="where datasets are kept (~/.cache/inr-study)"
    )
    group.add_argument(
        "--images",
        help="a count (first N images) or comma-separated names, e.g. kodim01,kodim08",
    )
    group.add_argument("--crop", type=_crop_size, metavar="PX", help="crop every image to PX x PX")
    group.add_argument("--crop-anchor", default="center", choices=ANCHORS)
    group.add_argument(
        "--drop-alpha", action="store_true", help="discard alpha channels instead of refusing"
    )


def _crop_size(text: str) -> int:
    if not text.isdigit() or int(text) < MIN_SIDE:
        raise argparse.ArgumentTypeError(f"expected a whole number >= {MIN_SIDE}, got {text!r}")
    return int(text)


def dataset_from_arguments(args: argparse.Namespace) -> list[ImageRecord]:
    """The images --dataset and --images name; Kodak fetches only those."""
    subset = None
    if args.images is not None:
        subset = int(args.images) if args.images.isdigit() else comma_list(args.images)
    records = resolve_dataset(
        args.dataset, mirror=args.kodak_mirror, cache_dir=args.cache_dir, subset=subset
    )
    return select(records, subset)


def image_options_from_arguments(args: argparse.Namespace) -> ImageOptions:
    return ImageOptions(args.crop, args.crop_anchor, args.drop_alpha)


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]

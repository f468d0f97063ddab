"""Classical codecs over a dataset: sweeps of their rate setting and target bitrates.

Writes ``per_image.csv`` (one row per codec × image × setting) and, per codec, a CompressAI-format
JSON of dataset means (``<codec>.json`` for the sweep, ``<codec>-target-bpp.json`` for targets).
"""

import argparse
import os
import sys
from pathlib import Path

from study.commands.cliargs import (
    add_dataset_arguments,
    add_optional_metrics_argument,
    comma_list,
    dataset_from_arguments,
    image_options_from_arguments,
)


def classical_codecs() -> list[str]:
    """Registered codecs that do not fit a network (JPEG, WebP, AVIF, JPEG XL, plugins' own)."""
    from inr_models import available_codecs, get_codec_class

    return [n for n in available_codecs() if not get_codec_class(n).fits_network]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="inr-study baselines",
        description="Classical codecs (JPEG, WebP, AVIF, JPEG XL) over a dataset: sweeps of "
        "their rate setting and target-bpp encodes, with all metrics.",
    )
    parser.add_argument(
        "--codecs",
        type=comma_list,
        help="comma-separated classical codecs (default: all of them: jpeg, webp, avif, jxl and "
        "any a plugin registered)",
    )
    parser.add_argument(
        "--settings",
        "--qualities",
        dest="settings",
        type=comma_list,
        help="comma-separated rate settings (the Pillow codecs' quality) for every codec "
        "(default: each codec's own sweep)",
    )
    parser.add_argument(
        "--no-sweep", action="store_true", help="skip the sweep (only --target-bpp)"
    )
    parser.add_argument(
        "--target-bpp",
        type=lambda s: tuple(float(b) for b in comma_list(s)),
        default=(),
        help="comma-separated bitrates: per image, the setting with the largest file at or "
        "under each",
    )
    add_optional_metrics_argument(parser)
    parser.add_argument(
        "--workers",
        type=int,
        default=min(2, os.cpu_count() or 1),
        help="parallel encoding processes, one image × codec each (default: %(default)s)",
    )
    parser.add_argument(
        "-o",
        "--output-dir",
        type=Path,
        default=Path("results/baselines"),
        help="folder for per_image.csv and the JSON files (default: %(default)s)",
    )
    add_dataset_arguments(parser)
    return parser


def _unsweepable(name: str, args: argparse.Namespace) -> str | None:
    """Why this command cannot run the codec (its rate axis, as declared); None when it can."""
    from inr_models import get_codec_class

    codec_cls = get_codec_class(name)
    axis = codec_cls.rate_axis
    if axis.kind is not int or axis.low is None or axis.high is None:
        return f"{name}'s {axis.label} is not a bounded integer setting; run it in a study instead"
    if not (args.no_sweep or args.settings or codec_cls.default_sweep):
        return f"{name} declares no default sweep; give --settings"
    return None


def _sweep(name: str, args: argparse.Namespace) -> tuple[int, ...]:
    """The codec's settings to sweep, checked against its rate axis before any encode."""
    from inr_models import get_codec_class

    codec_cls = get_codec_class(name)
    axis = codec_cls.rate_axis
    if args.no_sweep:
        return ()
    try:
        settings = tuple(int(s) for s in args.settings or codec_cls.default_sweep)
    except ValueError:
        raise SystemExit(f"inr-study baselines: {name} {axis.label} must be integers") from None
    low, high = int(axis.low), int(axis.high)
    outside = [s for s in settings if not low <= s <= high]
    if outside:
        raise SystemExit(
            f"inr-study baselines: {name} {axis.label} must lie in [{low}, {high}]; got {outside}"
        )
    return settings


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from study.engine.baselines import BaselineJob, run_baselines, write_outputs
    from study.results.evaluation import optional_metrics_available

    classical = classical_codecs()
    named = args.codecs is not None
    args.codecs = args.codecs or classical
    unknown = [name for name in args.codecs if name not in classical]
    if unknown:
        raise SystemExit(
            f"inr-study baselines: unknown classical codec {', '.join(map(repr, unknown))}; "
            f"valid: {', '.join(classical)}"
        )
    for name in list(args.codecs):
        why = _unsweepable(name, args)
        if why is not None and named:
            raise SystemExit(f"inr-study baselines: {why}")
        if why is not None:  # one of "all of them": the others still run
            print(f"inr-study baselines: skipping {why}", file=sys.stderr)
            args.codecs.remove(name)
    sweeps = {name: _sweep(name, args) for name in args.codecs}
    records = dataset_from_arguments(args)
    # Decided once here, so worker processes neither retry the weights nor repeat the warning.
    with_optional_metrics = not args.no_optional_metrics and optional_metrics_available()
    options = image_options_from_arguments(args)
    jobs = [
        BaselineJob(name, record, sweeps[name], args.target_bpp, options, with_optional_metrics)
        for name in args.codecs
        for record in records
    ]
    rows = run_baselines(jobs, args.workers)
    label = ", ".join(filter(None, [args.dataset, options.label()]))
    for path in write_outputs(rows, args.output_dir, label):
        print(f"wrote {path}")
    return 0

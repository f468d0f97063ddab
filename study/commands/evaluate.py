"""Quality metrics of a decoded image against its original, as JSON."""

import argparse
import json
import math
import sys
from pathlib import Path

from study.commands.cliargs import add_optional_metrics_argument


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inr-study evaluate",
        description="Print every quality metric of the study's table, the opt-in ones included, "
        "of DECODED against ORIGINAL as JSON. A metric that cannot be computed is null, with the "
        "reason on stderr.",
    )
    parser.add_argument("original", type=Path, help="the reference image")
    parser.add_argument("decoded", type=Path, help="the image to measure, of the same size")
    parser.add_argument(
        "--drop-alpha",
        action="store_true",
        help="discard alpha channels instead of refusing RGBA images",
    )
    add_optional_metrics_argument(parser)
    args = parser.parse_args(argv)

    from study.data.imageio import load_rgb
    from study.results.evaluation import evaluate
    from study.results.rd import json_safe
    from study.results.table import get_metric, opt_in_metrics

    original = load_rgb(args.original, drop_alpha=args.drop_alpha)
    decoded = load_rgb(args.decoded, drop_alpha=args.drop_alpha)
    if original.shape != decoded.shape:
        parser.error(
            f"{args.decoded}: size {decoded.shape[1]}x{decoded.shape[0]} differs from "
            f"{args.original} ({original.shape[1]}x{original.shape[0]})"
        )
    metrics = evaluate(
        original, decoded, optional=not args.no_optional_metrics, opted_in=opt_in_metrics()
    )
    infinite = [k for k, v in metrics.items() if isinstance(v, float) and math.isinf(v)]
    if infinite:
        labels = ", ".join(get_metric(k).display for k in infinite)
        why = "the images are identical" if (original == decoded).all() else "the images differ"
        print(f"{why}: {labels} came out infinite (written as null)", file=sys.stderr)
    print(json.dumps(json_safe(metrics), indent=2))
    return 0

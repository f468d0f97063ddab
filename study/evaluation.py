"""``inr-study evaluate ORIGINAL DECODED``: the study's metrics for one image pair, as JSON."""

import argparse
import json
from pathlib import Path

from study.imageio import load_rgb
from study.metrics import evaluate
from study.rd import json_safe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study evaluate", description=__doc__)
    parser.add_argument("original", type=Path)
    parser.add_argument("decoded", type=Path)
    parser.add_argument("--no-lpips", action="store_true")
    args = parser.parse_args(argv)
    original, decoded = load_rgb(args.original), load_rgb(args.decoded)
    if original.shape != decoded.shape:
        parser.error(
            f"{args.decoded}: size {decoded.shape[1]}x{decoded.shape[0]} differs from "
            f"{args.original} ({original.shape[1]}x{original.shape[0]})"
        )
    metrics = evaluate(original, decoded, with_lpips=not args.no_lpips).as_dict()
    print(json.dumps(json_safe(metrics), indent=2))
    return 0

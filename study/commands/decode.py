"""Rebuild an image from an inr-study bitstream alone."""

import argparse
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="inr-study decode",
        description="Rebuild the image from an inr-study bitstream alone and write it as PNG.",
    )
    parser.add_argument("bitstream", type=Path, help="a file written by inr-study encode")
    parser.add_argument("-o", "--output", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--threads", type=int, help="torch CPU threads (the output is identical)")
    args = parser.parse_args(argv)
    if not args.bitstream.is_file():
        parser.error(f"{args.bitstream}: no such file")

    import torch

    from inr_models import CodecError, create_codec
    from inr_models.container import codec_of
    from study.data.imageio import save_png

    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.bitstream.read_bytes()
    start = time.perf_counter()
    try:
        name = codec_of(data)
        image = create_codec(name).decode(data)
    except CodecError as error:
        raise CodecError(f"{args.bitstream}: {error}") from None
    seconds = time.perf_counter() - start
    save_png(args.output, image)
    height, width = image.shape[:2]
    print(
        f"{args.bitstream}: {name}, {width}x{height}, {8 * len(data) / (height * width):.4f} bpp, "
        f"decoded in {seconds:.2f} s -> {args.output}"
    )
    return 0

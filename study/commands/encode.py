"""Fit an INR codec to one image and write its bitstream.

Runs the same function as a study trial (``study.engine.trial.run_trial``): fit, write the file,
decode it from disk. Prints a JSON summary: real bpp (from the file), the encoder's rate estimate,
the quality metrics of the decoded file, iterations, encode/decode time, MAC/pixel, parameters.
Unless told, a codec fits with its quick preset (minutes, not hours) on the GPU when there is one,
and says how long the fit will take once its first steps are timed.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

from study.commands.cliargs import add_optional_metrics_argument


def _codec_name(argv: list[str] | None, default: str) -> str:
    """The --codec value, read first because the codec adds its own options to the parser."""
    early = argparse.ArgumentParser(add_help=False)
    early.add_argument("--codec", default=default)
    return early.parse_known_args(argv)[0].codec


def build_parser(codec_cls) -> argparse.ArgumentParser:
    from inr_models import inr_codecs
    from losses import CONVENTIONS

    parser = argparse.ArgumentParser(
        prog="inr-study encode",
        description=__doc__.split("\n")[0],
        epilog="Options of another codec: inr-study encode --codec NAME --help.",
    )
    parser.add_argument("image", type=Path, help="the image to encode (PNG, JPEG, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bitstream file to write")
    parser.add_argument(
        "--codec",
        default=inr_codecs()[0],
        choices=inr_codecs(),
        help=f"the INR codec (default: {inr_codecs()[0]}, the first by name)",
    )
    training = parser.add_argument_group(f"{codec_cls.name} options")
    training.add_argument(
        "--loss",
        default=codec_cls.published_loss,
        help="loss spec, e.g. mse, lc_ssim(0.01), l1:0.8+ssim:0.2 "
        f"(default: {codec_cls.published_loss}, the loss {codec_cls.name} was published with)",
    )
    presets = codec_cls.presets()
    quick = codec_cls.quick_preset or presets[0]
    training.add_argument(
        "--preset",
        default=quick,
        choices=presets,
        help=f"training schedule (default: {quick}, {codec_cls.name}'s shortest real recipe); "
        "how long the fit will take is printed once its first steps are timed",
    )
    codec_cls.add_arguments(training)
    training.add_argument(
        "--convention",
        choices=sorted(CONVENTIONS),
        help="loss scaling convention (default: the codec's own, as its paper's code ran it)",
    )
    run = parser.add_argument_group("run")
    run.add_argument(
        "--device",
        default="auto",
        help="auto (cuda when torch sees a GPU, else cpu), cpu or cuda (default: auto)",
    )
    run.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    run.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    out = parser.add_argument_group("outputs")
    out.add_argument("--decoded", type=Path, help="also write the decoded image (PNG) here")
    out.add_argument("--summary", type=Path, help="also write the JSON summary here")
    out.add_argument("--log", type=Path, help="append each validation (JSON lines) here")
    images = parser.add_argument_group("input and metrics")
    images.add_argument(
        "--drop-alpha", action="store_true", help="discard alpha channels instead of refusing"
    )
    add_optional_metrics_argument(images)
    return parser


def main(argv: list[str] | None = None) -> int:
    from inr_models import get_codec_class, inr_codecs

    name = _codec_name(argv, default=inr_codecs()[0])
    if name not in inr_codecs():
        valid = ", ".join(inr_codecs())
        print(
            f"inr-study encode: error: unknown INR codec {name!r}; valid: {valid}", file=sys.stderr
        )
        sys.exit(2)
    codec_cls = get_codec_class(name)
    parser = build_parser(codec_cls)
    args, extra = parser.parse_known_args(argv)
    if extra:
        others = {get_codec_class(n).rate_axis.option for n in inr_codecs()}
        misplaced = [option for option in extra if option.split("=")[0] in others]
        if misplaced:
            parser.error(
                f"{misplaced[0]} does not apply to {name}: its rate is set by "
                f"{codec_cls.rate_axis.option}"
            )
        parser.error(f"unrecognized arguments: {' '.join(extra)}")

    import torch
    from tqdm import tqdm

    from inr_models import create_codec
    from study.data.imageio import image_digest, load_rgb
    from study.engine.trial import TrialSpec, run_trial
    from study.engine.work import resolve_device

    axis = codec_cls.rate_axis
    spec = TrialSpec(
        codec=name,
        image=args.image.stem,
        rate=codec_cls.settings_from_arguments(args)[axis.name],
        preset=args.preset,
        loss=args.loss,
        convention=args.convention,
        seed=args.seed,
    )
    device = resolve_device(args.device)
    try:  # settings are checked here, before any image is read or network fitted
        codec = create_codec(spec.codec, **spec.codec_settings(device))
    except (KeyError, ValueError) as error:
        parser.error(str(error).strip("'\""))
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{name}: loss {args.loss}, {axis.describe(spec.rate)}, preset {args.preset} "
        f"({codec.preset.total_iterations:,} iterations), seed {args.seed} on {device} "
        "(see --help for the defaults)",
        file=sys.stderr,
    )

    def report_pace(seconds: float, steps: int) -> None:
        tqdm.write(
            f"{name}: about {_duration(seconds * steps)} of fitting: {steps:,} iterations × "
            f"{seconds:.3g} s per iteration, as measured on {device}",
            file=sys.stderr,
        )

    log = args.log.open("a") if args.log else None

    def log_validation(record: dict) -> None:
        if log:
            log.write(json.dumps(record) + "\n")
            log.flush()

    image = load_rgb(args.image, drop_alpha=args.drop_alpha)
    problems = codec.image_problems(*image.shape[:2])
    if problems:  # e.g. a loss term that needs a larger image: refused before fitting
        parser.error(f"{args.image}: {'; '.join(problems)}")
    with tempfile.TemporaryDirectory(prefix="inr-study-encode-") as scratch:
        outcome = run_trial(
            spec,
            image,
            Path(scratch),
            bitstream=args.output,
            decoded_png=args.decoded,
            device=device,
            with_optional_metrics=not args.no_optional_metrics,
            progress=not args.quiet,
            on_validation=log_validation,
            on_pace=report_pace,
        )
    summary = {
        **outcome.summary(),
        # The file's name and its pixels' digest: what identifies the input on any machine.
        "image": args.image.name,
        "image_digest": image_digest(image),
        "threads": torch.get_num_threads(),
    }
    del summary["files"]
    text = json.dumps(summary, indent=2)
    if args.summary:
        args.summary.write_text(text + "\n")
    print(text)
    return 0


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

"""The ``inr-study`` command: each subcommand is a module's ``main(argv)``, which tests call."""

import importlib
import logging
import sys

from dashboards.data import DashboardError
from inr_models.base import CodecError
from losses import LossSpecError
from study.config import StudyConfigError
from study.datasets import DatasetError
from study.imageio import ImageLoadError

USER_ERRORS = (
    CodecError,
    DashboardError,
    DatasetError,
    ImageLoadError,
    LossSpecError,
    StudyConfigError,
)

# subcommand -> (module, one-line help)
SUBCOMMANDS = {
    "encode": ("study.encode", "fit an INR codec to an image and write its bitstream"),
    "decode": ("study.decode", "rebuild an image from an inr-study bitstream"),
    "baselines": ("study.baselines", "classical codecs over a dataset (sweeps, target bpp)"),
    "evaluate": ("study.evaluation", "metrics of a decoded image against its original (JSON)"),
    "fetch": ("study.fetch", "download or mirror a dataset and verify its checksums"),
    "run": ("study.run", "run a study config on Ray Tune, tracked in MLflow"),
    "resume": ("study.resume", "continue an interrupted study; finished trials are kept"),
    "report": ("study.report", "R-D JSON, per-image CSV and BD-rate tables of a study"),
    "dashboard": ("dashboards.cli", "interactive Plotly page of a study's runs (one HTML file)"),
}


def _usage() -> str:
    lines = ["usage: inr-study COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<12}{help_}" for name, (_, help_) in SUBCOMMANDS.items()]
    lines += ["", "Run 'inr-study COMMAND --help' for a command's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        print(f"inr-study: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(SUBCOMMANDS[command][0])
    try:
        return module.main(rest)
    except USER_ERRORS as error:
        # Bad input, not a bug: the message names the file or setting, a traceback adds nothing.
        print(f"inr-study {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

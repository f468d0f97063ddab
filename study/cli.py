"""The ``inr-study`` command: each subcommand is a module's ``main(argv)``, which tests call.

Commands import their heavy libraries (torch, Ray, MLflow) only when they run, so help answers at
once. Other packages add commands through the ``inr_study.commands`` entry-point group (the
dashboards add ``dashboard`` that way), so this package names none of them.
"""

import ast
import importlib
import logging
import sys
from importlib.metadata import entry_points
from importlib.util import find_spec

COMMAND_GROUP = "inr_study.commands"
# The study's own commands, in the order help lists them.
STUDY_COMMANDS = {
    "encode": "study.commands.encode",
    "decode": "study.commands.decode",
    "baselines": "study.commands.baselines",
    "evaluate": "study.commands.evaluate",
    "fetch": "study.commands.fetch",
    "run": "study.commands.run",
    "resume": "study.commands.resume",
    "report": "study.commands.report",
    "combine": "study.commands.combine",
    "rescore": "study.commands.rescore",
    "shard": "study.commands.shard",
    "work": "study.commands.work",
    "import": "study.commands.import_results",
    "export": "study.commands.export",
    "rebuild": "study.commands.rebuild",
    "stow": "study.commands.stow",
    "mlflow": "study.commands.mlflow_ui",
}


def commands() -> dict[str, str]:
    """Command name -> module holding its ``main``."""
    found = dict(STUDY_COMMANDS)
    for entry in entry_points(group=COMMAND_GROUP):
        found.setdefault(entry.name, entry.module)
    return found


def summary(module: str) -> str:
    """The first line of a command module's docstring, read without importing the module."""
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    with open(spec.origin, encoding="utf-8") as source:
        docstring = ast.get_docstring(ast.parse(source.read())) or ""
    return docstring.split("\n")[0].strip()


def _usage() -> str:
    lines = ["usage: inr-study COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<12}{summary(module)}" for name, module in commands().items()]
    lines += ["", "Run 'inr-study COMMAND --help' for a command's options."]
    return "\n".join(lines)


def _is_user_error(error: Exception) -> bool:
    """Bad input a person can fix (the message names the file or setting), not a bug."""
    from inr_models.base import CodecError
    from losses.spec import LossSpecError
    from losses.weights.store import WeightsError
    from study.errors import InputError

    return isinstance(error, InputError | CodecError | LossSpecError | WeightsError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if not argv or argv[0] in {"-h", "--help"}:
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    known = commands()
    if command not in known:
        print(f"inr-study: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(known[command])
    try:
        return module.main(rest)
    except Exception as error:
        if not _is_user_error(error):
            raise
        print(f"inr-study {command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

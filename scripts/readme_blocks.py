"""README.md's generated blocks: its contents, from its headings, and the codec tables, from the
codec registry (what each built-in codec declares in inr_models/).

    .venv/bin/python scripts/readme_blocks.py            # print the blocks
    .venv/bin/python scripts/readme_blocks.py --check    # exit 1 when README.md's blocks differ
    .venv/bin/python scripts/readme_blocks.py --write    # rewrite the blocks in README.md

A block lies between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->``; nothing else is touched.
"""

import argparse
import re
import sys
from collections.abc import Callable
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
WRITE_COMMAND = ".venv/bin/python scripts/readme_blocks.py --write"
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{2,3}) (.+?)\s*$")


def _begin(name: str) -> str:
    return f"<!-- {name}:begin -->"


def _end(name: str) -> str:
    return f"<!-- {name}:end -->"


def anchor(heading: str) -> str:
    """GitHub's link target for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    """(level, title) of the ## and ### headings outside code blocks, in order."""
    found, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
        elif not fenced and (match := HEADING.match(line)):
            found.append((len(match.group(1)), match.group(2)))
    return found


def contents(text: str) -> str:
    """Links to the sections that follow the contents block."""
    after = text.split(_end("contents"), 1)[-1]
    seen: dict[str, int] = {}
    lines = []
    for level, title in headings(after):
        target = anchor(title)
        count = seen.get(target, 0)
        seen[target] = count + 1
        target = f"{target}-{count}" if count else target
        lines.append(f"{'  ' * (level - 2)}- [{title.replace('`', '')}](#{target})")
    return "\n".join(lines)


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _valid_values(axis) -> str:
    if axis.choices is not None:
        values = ", ".join(f"`{c}`" for c in axis.choices)
    else:
        values = f"{_number(axis.low)} to {_number(axis.high)}"
    default = f"`{axis.default}`" if axis.choices is not None else _number(axis.default)
    text = f"{values}; default {default}"
    if axis.search_range is not None:
        low, high = axis.search_range
        scale = " (log)" if axis.log else ""
        text += f"; search {_number(low)} to {_number(high)}{scale}"
    return text


def _options(codec_cls) -> str:
    """The options the codec adds to a command line (``add_arguments``)."""
    parser = argparse.ArgumentParser(add_help=False)
    codec_cls.add_arguments(parser)
    return ", ".join(f"`{action.option_strings[-1]}`" for action in parser._actions)


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def codecs(_text: str = "") -> str:
    """A table of the built-in INR codecs and one of the classical codecs, as they declare
    themselves (plugins' codecs registered in this process are left out)."""
    from inr_models.registry import BUILTIN_MODULES, get_codec_class, registration_order

    classes = [get_codec_class(name) for name in registration_order()]
    builtin = [c for c in classes if c.__module__ in BUILTIN_MODULES]
    lines = [
        _row(
            [
                "INR codec",
                "rate setting (study key)",
                "valid values",
                "`encode` options",
                "presets: iterations (the first is a study's default)",
                "`encode` default",
                "published loss",
                "file id",
            ]
        ),
        _row(["---"] * 8),
    ]
    for c in (c for c in builtin if c.fits_network):
        presets = ", ".join(
            f"`{name}` {preset.total_iterations:,}" for name, preset in c.preset_table.items()
        )
        quick = getattr(c, "quick_preset", None) or c.presets()[0]
        lines.append(
            _row(
                [
                    f"`{c.name}` ({c.label})",
                    f"{c.rate_axis.label} (`{c.rate_axis.config_key}`)",
                    _valid_values(c.rate_axis),
                    _options(c),
                    presets,
                    f"`{quick}`",
                    f"`{c.published_loss}`",
                    f"{c.file_id}, format {c.format_version}",
                ]
            )
        )
    lines += [
        "",
        _row(["classical codec", "rate setting (study key)", "valid values", "default sweep"]),
        _row(["---"] * 4),
    ]
    for c in (c for c in builtin if not c.fits_network):
        sweep = c.default_sweep
        lines.append(
            _row(
                [
                    f"`{c.name}`",
                    f"{c.rate_axis.label} (`{c.rate_axis.config_key}`)",
                    f"{_number(c.rate_axis.low)} to {_number(c.rate_axis.high)}",
                    ", ".join(map(str, sweep)) if sweep else "—",
                ]
            )
        )
    return "\n".join(lines)


BLOCKS: dict[str, Callable[[str], str]] = {"contents": contents, "codecs": codecs}


def _span(text: str, name: str) -> tuple[int, int]:
    """Where the block's body starts and ends in ``text``; ValueError when its markers are not
    there exactly once, in order."""
    begin, end = _begin(name), _end(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise ValueError(f"README.md needs one {begin} and, after it, one {end}")
    return text.index(begin) + len(begin), text.index(end)


def generated(text: str) -> dict[str, str]:
    """Each block's body as the generator writes it."""
    return {name: f"\n\n{make(text)}\n\n" for name, make in BLOCKS.items()}


def current(text: str) -> dict[str, str]:
    """Each block's body as ``text`` has it."""
    return {name: text[slice(*_span(text, name))] for name in BLOCKS}


def stale(text: str) -> list[str]:
    """The blocks whose body in ``text`` differs from the generator's."""
    have = current(text)
    return [name for name, body in generated(text).items() if have[name] != body]


def rewrite(text: str) -> str:
    for name, body in generated(text).items():
        start, stop = _span(text, name)
        text = text[:start] + body + text[stop:]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="exit 1 when the blocks differ")
    mode.add_argument("--write", action="store_true", help="rewrite the blocks in the README")
    parser.add_argument("--readme", type=Path, default=README, help="default: %(default)s")
    args = parser.parse_args(argv)
    text = args.readme.read_text(encoding="utf-8")
    try:
        differ = stale(text)
    except ValueError as error:
        parser.error(f"{args.readme}: {error}")
    if args.write:
        if differ:
            args.readme.write_text(rewrite(text), encoding="utf-8")
        print(f"{args.readme}: rewrote {', '.join(differ)}" if differ else "up to date")
    elif args.check:
        if differ:
            print(f"{args.readme}: out of date: {', '.join(differ)}; run {WRITE_COMMAND}")
            return 1
        print("up to date")
    else:
        for name, body in generated(text).items():
            print(f"{_begin(name)}{body}{_end(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

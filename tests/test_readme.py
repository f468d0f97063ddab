"""README.md: its generated blocks (contents, codec tables) match what scripts/readme_blocks.py
writes, its first commands are the two entry points, and its command list names every command."""

import importlib.util
import re
from pathlib import Path

import pytest

from study.cli import commands

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _load_generator():
    path = ROOT / "scripts" / "readme_blocks.py"
    spec = importlib.util.spec_from_file_location("readme_blocks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


blocks = _load_generator()


def test_the_generated_blocks_are_current():
    stale = blocks.stale(README.read_text(encoding="utf-8"))
    assert not stale, (
        f"README.md's generated blocks are out of date ({', '.join(stale)}): "
        f"run {blocks.WRITE_COMMAND}"
    )


def test_check_and_write_on_a_stale_copy(tmp_path, capsys):
    copy = tmp_path / "README.md"
    text = README.read_text(encoding="utf-8")
    start, stop = blocks._span(text, "codecs")
    copy.write_text(text[:start] + "\n| a hand-edited table |\n" + text[stop:], encoding="utf-8")
    assert blocks.main(["--check", "--readme", str(copy)]) == 1
    assert blocks.WRITE_COMMAND in capsys.readouterr().out
    assert blocks.main(["--write", "--readme", str(copy)]) == 0
    assert copy.read_text(encoding="utf-8") == text
    assert blocks.main(["--check", "--readme", str(copy)]) == 0
    assert blocks.main(["--readme", str(copy)]) == 0  # prints the blocks
    printed = capsys.readouterr().out
    assert "<!-- codecs:begin -->" in printed and "| `coolchic-v1` (COOL-CHIC v1) |" in printed


def test_a_readme_without_its_markers_is_refused(tmp_path, capsys):
    copy = tmp_path / "README.md"
    copy.write_text("# inr-study\n", encoding="utf-8")
    with pytest.raises(SystemExit) as exit_info:
        blocks.main(["--check", "--readme", str(copy)])
    assert exit_info.value.code == 2
    assert "<!-- contents:begin -->" in capsys.readouterr().err


def test_contents_links_every_section_that_follows():
    text = (
        "# t\n\n## Start here\n\n<!-- contents:begin -->\n<!-- contents:end -->\n\n"
        "## Status\n\n### GPU status\n\n```\n# not a heading\n## nor this\n```\n\n"
        "## Studies that travel: packages, `Slurm`\n\n## Status\n"
    )
    assert blocks.contents(text).splitlines() == [
        "- [Status](#status)",
        "  - [GPU status](#gpu-status)",
        "- [Studies that travel: packages, Slurm](#studies-that-travel-packages-slurm)",
        "- [Status](#status-1)",
    ]


def test_the_first_commands_are_make_demo_and_make_test():
    first_block = README.read_text(encoding="utf-8").split("```")[1]
    commands_shown = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands_shown == ["make demo", "make test"]


def test_the_command_list_names_every_command():
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Command line\n", 1)[1].split("\n## ", 1)[0]
    shown = set(re.findall(r"^inr-study (\w+)", section, flags=re.MULTILINE))
    assert set(commands()) <= shown, f"not in README's Command line: {set(commands()) - shown}"

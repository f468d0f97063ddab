"""Telling a rebuilt report's last-digit differences from changed rows, on a published table."""

import shutil
from pathlib import Path

from study.results.report_diff import describe_difference

PUBLISHED = Path(__file__).resolve().parents[2] / "results" / "icip24-cpu" / "reports"


def _copy(tmp_path: Path, name: str) -> Path:
    return Path(shutil.copy(PUBLISHED / name, tmp_path / name))


def test_numbers_moved_in_their_last_digits_are_counted_with_their_largest_relative_change(
    tmp_path,
):
    ours = _copy(tmp_path, "bd_rate.csv")
    lines = ours.read_text().splitlines()
    cells = lines[1].split(",")
    numbers = [i for i, cell in enumerate(cells) if "." in cell and cell.lstrip("-")[0].isdigit()]
    for i, scale in zip(numbers[:2], (1 + 3e-14, 1 - 2e-13), strict=True):
        cells[i] = repr(float(cells[i]) * scale)
    ours.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    column = lines[0].split(",")[numbers[1]]
    assert describe_difference(ours, PUBLISHED / "bd_rate.csv") == (
        f"2 numbers differ, by at most 2e-13 relative ({column}, line 2); all else equal"
    )
    # The same value written another way, and a table whose only change is its line endings.
    cells = lines[1].split(",")
    cells[numbers[0]] = cells[numbers[0]] + "0"
    ours.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    assert describe_difference(ours, PUBLISHED / "bd_rate.csv") == (
        "1 number differs in how it is written, not in value; all else equal"
    )
    ours.write_text("\n".join(lines) + "\n")  # the csv module's tables end lines in CR LF
    assert describe_difference(ours, PUBLISHED / "bd_rate.csv") == (
        "the same lines; differs in line endings or a final newline"
    )


def test_a_changed_row_or_word_is_located_not_counted(tmp_path):
    ours = _copy(tmp_path, "bd_rate.csv")
    text = ours.read_text()
    ours.write_text(text + text.splitlines()[1] + "\n")  # a row more
    lines = len(text.splitlines())
    assert describe_difference(ours, PUBLISHED / "bd_rate.csv") == (
        f"differs from line {lines + 1} ({lines + 1} lines here, {lines} published)"
    )
    ours.write_text(text.replace("coolchic-v1,l1,", "coolchic-v1,L1,", 1))  # a word changed
    assert describe_difference(ours, PUBLISHED / "bd_rate.csv") == (
        f"differs from line 2 ({lines} lines here, {lines} published)"
    )
    claims = _copy(tmp_path, "claims.md")
    claims.write_text(claims.read_text().replace("holds in part", "holds", 1))
    assert describe_difference(claims, PUBLISHED / "claims.md").startswith("differs from line ")


def test_what_is_no_table_of_ours_is_compared_as_text(tmp_path):
    ours = tmp_path / "bd_rate.json"
    ours.write_text("[" * 100_000 + "]" * 100_000)  # nested past Python's recursion limit
    theirs = tmp_path / "theirs.json"
    theirs.write_text("[[1]]")
    assert describe_difference(ours, theirs) == "differs from line 1 (1 line here, 1 published)"
    ours.write_bytes(b"\xff\xfe\x00binary\n")
    assert describe_difference(ours, theirs).startswith("differs from line 1")


def test_a_file_on_one_side_only_says_which(tmp_path):
    missing = tmp_path / "seed_spread.md"
    assert describe_difference(missing, PUBLISHED / "bd_rate.md") == "only in the published reports"
    ours = _copy(tmp_path, "bd_rate.md")
    assert describe_difference(ours, tmp_path / "none.md") == "only in the rebuilt reports"

"""How a report file written again differs from its published copy, in a line a person can judge:
numbers that moved in their last digits (another machine's arithmetic) read differently from rows
that changed (other trials, other code)."""

import csv
import io
import json
import math
from pathlib import Path


def describe_difference(ours: Path, theirs: Path) -> str:
    """One line on how ``ours`` differs from ``theirs``, two report files (either may be
    missing)."""
    if not theirs.is_file():
        return "only in the rebuilt reports"
    if not ours.is_file():
        return "only in the published reports"
    a, b = (path.read_text(errors="replace") for path in (ours, theirs))
    if ours.suffix in (".csv", ".json"):
        cells = _csv_cells if ours.suffix == ".csv" else _json_leaves
        try:
            pairs = _paired(cells(a), cells(b))
        except (ValueError, csv.Error, RecursionError):  # not a table or document we wrote
            pairs = None
        if pairs is not None:
            return _numbers_moved(pairs)
    return _first_differing_line(a, b)


def _numbers_moved(pairs: list[tuple[str, str]]) -> str:
    """``pairs`` of differing cells, all numbers: how many and how far apart, relatively."""
    worst = max(
        abs(x - y) / max(abs(x), abs(y)) if x != y else 0.0
        for x, y in ((float(u), float(v)) for u, v in pairs)
    )
    count = "1 number differs" if len(pairs) == 1 else f"{len(pairs)} numbers differ"
    return f"{count}, by at most {worst:.2g} relative; all else equal"


def _paired(ours: list[str], theirs: list[str]) -> list[tuple[str, str]] | None:
    """The differing cells of two same-shaped tables, when every one of them holds a finite
    number on both sides; None otherwise (a row added, a word changed)."""
    if len(ours) != len(theirs):
        return None
    pairs = [(u, v) for u, v in zip(ours, theirs, strict=True) if u != v]
    if not pairs or not all(_finite(u) and _finite(v) for u, v in pairs):
        return None
    return pairs


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _csv_cells(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    # A row of another length shifts every cell after it: the shape is part of what is compared.
    return [f"\0{len(row)}" for row in rows] + [cell for row in rows for cell in row]


def _json_leaves(text: str) -> list[str]:
    leaves: list[str] = []

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                leaves.append(f"\0{path}/{key}")
                walk(item, f"{path}/{key}")
        elif isinstance(value, list):
            leaves.append(f"\0{path}[{len(value)}]")
            for item in value:
                walk(item, path)
        else:
            leaves.append(repr(value))

    try:
        walk(json.loads(text), "")
    except json.JSONDecodeError as error:
        raise ValueError(str(error)) from error
    return leaves


def _first_differing_line(ours: str, theirs: str) -> str:
    a, b = ours.splitlines(), theirs.splitlines()
    pairs = enumerate(zip(a, b, strict=False))
    line = next((i for i, (x, y) in pairs if x != y), min(len(a), len(b)))
    return f"differs from line {line + 1} ({len(a)} lines here, {len(b)} published)"

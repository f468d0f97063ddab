"""How a report file written again differs from its published copy, in a line a person can judge:
numbers that moved in their last digits (another machine's arithmetic) read differently from rows
that changed (other trials, other code)."""

import csv
import io
import json
import math
from pathlib import Path

# A cell: where it is (a column and line, a JSON path) and its text.
Cell = tuple[str, str]


def describe_difference(ours: Path, theirs: Path) -> str:
    """One line on how ``ours`` differs from ``theirs``, two report files (either may be
    missing)."""
    if not theirs.exists() or not ours.exists():
        return "only in the rebuilt reports" if ours.exists() else "only in the published reports"
    try:
        a, b = (path.read_bytes().decode("utf-8", errors="replace") for path in (ours, theirs))
    except OSError as error:
        return f"unreadable: {error}"
    if a == b:
        return "same text (different bytes: not UTF-8)"
    if ours.suffix in (".csv", ".json"):
        cells = _csv_cells if ours.suffix == ".csv" else _json_leaves
        try:
            pairs = _paired(cells(a), cells(b))
        except (ValueError, csv.Error, RecursionError):  # not a table or document we wrote
            pairs = None
        if pairs is not None:
            return _numbers_moved(pairs)
    return _first_differing_line(a, b)


def _numbers_moved(pairs: list[tuple[str, str, str]]) -> str:
    """``pairs`` of differing cells (where, ours, theirs), all numbers: how many, and the
    largest relative change with where it is."""
    count = "1 number differs" if len(pairs) == 1 else f"{len(pairs)} numbers differ"
    change, where = max((_relative(float(x), float(y)), where) for where, x, y in pairs)
    if change == 0:
        return f"{count} in how it is written, not in value; all else equal"
    return f"{count}, by at most {change:.2g} relative ({where}); all else equal"


def _relative(x: float, y: float) -> float:
    scale = max(abs(x), abs(y))
    return 0.0 if x == y else abs(x / scale - y / scale)  # scaled first: no overflow


def _paired(ours: list[Cell], theirs: list[Cell]) -> list[tuple[str, str, str]] | None:
    """The differing cells of two same-shaped tables, when every one of them holds a finite
    number on both sides; None otherwise (a row added, a word changed)."""
    if len(ours) != len(theirs) or any(u[0] != v[0] for u, v in zip(ours, theirs, strict=True)):
        return None
    pairs = [(where, x, y) for (where, x), (_, y) in zip(ours, theirs, strict=True) if x != y]
    if not pairs or not all(_finite(x) and _finite(y) for _, x, y in pairs):
        return None
    return pairs


def _finite(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _csv_cells(text: str) -> list[Cell]:
    rows = list(csv.reader(io.StringIO(text)))
    header = rows[0] if rows else []
    # Each cell is placed by its column's name and line: a row of another length shows there.
    return [
        (f"{header[col] if col < len(header) else f'column {col + 1}'}, line {line + 1}", cell)
        for line, row in enumerate(rows)
        for col, cell in enumerate(row)
    ]


def _json_leaves(text: str) -> list[Cell]:
    leaves: list[Cell] = []

    def walk(value, path: str) -> None:
        if isinstance(value, dict):
            leaves.append((f"{path}{{}}", ",".join(value)))  # the keys are part of the shape
            for key, item in value.items():
                walk(item, f"{path}/{key}")
        elif isinstance(value, list):
            leaves.append((f"{path}[]", str(len(value))))
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        else:
            leaves.append((path, repr(value)))

    walk(json.loads(text), "")
    return leaves


def _first_differing_line(ours: str, theirs: str) -> str:
    a, b = ours.splitlines(), theirs.splitlines()
    line = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), None)
    if line is None and len(a) == len(b):
        return "the same lines; differs in line endings or a final newline"
    line = min(len(a), len(b)) if line is None else line
    lines = "1 line" if len(a) == 1 else f"{len(a)} lines"
    return f"differs from line {line + 1} ({lines} here, {len(b)} published)"

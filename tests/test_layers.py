"""The packages' import order: each layer imports only the layers below it (README, "Layout"), so
a module can be read, tested and reused without the ones above it. Imports inside functions
count too: a lazy import is still a dependency."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Lowest first; modules of one layer may import each other.
LAYERS = [
    ["losses"],
    ["inr_models"],
    ["study.errors"],
    ["study.data"],
    ["study.results"],
    ["study.config"],
    ["study.layout"],
    ["study.engine"],
    ["study.commands", "study.cli", "study.cluster"],
    ["dashboards"],
]
PACKAGES = {"losses", "inr_models", "study", "dashboards"}


def layer_of(module: str) -> int:
    if module == "study":  # its empty __init__: it may import nothing of the project
        return 0
    for rank, units in enumerate(LAYERS):
        if any(module == unit or module.startswith(unit + ".") for unit in units):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.split(".")[0] in PACKAGES and name != "study"}


SOURCES = sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_a_module_imports_only_lower_layers(path):
    own = layer_of(module_name(path))
    above = sorted(name for name in project_imports(path) if layer_of(name) > own)
    assert not above, f"{module_name(path)} (layer {own}) imports a layer above it: {above}"


def test_the_check_sees_every_package():
    # An empty parametrisation would pass silently; each module's layer is checked above.
    assert len(SOURCES) > 100

"""Fixtures for study tests: a hermetic Kodak cache, the plugins folder on the path of the driver
and of every Ray worker it starts, and small study configs."""

import os
import sys
from pathlib import Path

import pytest
import yaml

from study.datasets import CACHE_ENV, KODAK_MIRROR_ENV

PLUGINS = Path(__file__).parent / "plugins"
SHARED_KODAK = Path(__file__).resolve().parents[3] / "shared" / "kodak"


@pytest.fixture
def study_env(monkeypatch, tmp_path_factory):
    """Environment of a study run; Ray workers inherit it from the driver."""
    # Absolute: trials may run in another working directory (the cluster test's head).
    mirror = str(Path(os.environ.get(KODAK_MIRROR_ENV) or SHARED_KODAK).resolve())
    monkeypatch.setenv(KODAK_MIRROR_ENV, mirror)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(PLUGINS), *sys.path])))
    monkeypatch.syspath_prepend(str(PLUGINS))
    return os.environ.copy()


@pytest.fixture
def small_config(tmp_path):
    """A factory of small study configs (dicts); keyword arguments replace top-level keys."""

    def make(**overrides) -> dict:
        return {**_small(tmp_path), **overrides}

    return make


def _small(tmp_path: Path) -> dict:
    """A study of seconds: two 64-px Kodak crops, COOL-CHIC v1 debug at two λ, JPEG at two
    qualities."""
    return {
        "name": "small",
        "storage": str(tmp_path / "studies"),
        "images": {"dataset": "kodak", "subset": ["kodim01", "kodim23"], "crop": 64},
        "codecs": [
            {"name": "coolchic-v1", "preset": "debug", "lmbdas": [2e-2, 1e-3]},
            {"name": "jpeg", "qualities": [30, 80]},
        ],
        "losses": ["mse"],
        "lpips": False,
        "retries": 0,
    }


@pytest.fixture
def write_config(tmp_path):
    def write(config: dict) -> Path:
        path = tmp_path / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write

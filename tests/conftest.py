"""Shared fixtures: real Kodak images (through the mirror on CI), crops of them, temp datasets."""

import logging
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from study.data.datasets import CACHE_ENV, KODAK_MIRROR_ENV, crop, kodak
from study.data.imageio import load_rgb

# Under `make test` two worker processes share the machine's cores: one torch thread each (set
# before torch starts its thread pool), not one per core each, which oversubscribes them.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")

# The project's dev machines and CI carry Kodak beside the checkout; elsewhere it is downloaded.
SHARED_KODAK = Path(__file__).resolve().parents[2] / "shared" / "kodak"
KODAK_MIRROR = os.environ.get(KODAK_MIRROR_ENV) or (SHARED_KODAK if SHARED_KODAK.is_dir() else None)


@pytest.fixture(scope="session")
def kodak_records(tmp_path_factory):
    """The 24 verified Kodak images, through the mirror option when a local copy exists."""
    return kodak(cache_dir=tmp_path_factory.mktemp("cache"), mirror=KODAK_MIRROR, progress=False)


@pytest.fixture(scope="session")
def kodim01(kodak_records) -> np.ndarray:
    return load_rgb(kodak_records[0].path)


@pytest.fixture(scope="session")
def crop256(kodim01) -> np.ndarray:
    """A 256x256 Kodak crop: big enough for 5-scale MS-SSIM (short side > 160 px)."""
    return crop(kodim01, 256)


@pytest.fixture(scope="session")
def crop64(kodim01) -> np.ndarray:
    return crop(kodim01, 64)


@pytest.fixture
def write_png(tmp_path):
    from PIL import Image

    def write(array: np.ndarray, name: str = "image.png", mode: str | None = None) -> Path:
        path = tmp_path / name
        Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)
        return path

    return write


@pytest.fixture
def without_weights(monkeypatch, tmp_path_factory):
    """The real loaders on a machine with no pretrained weights at all: empty torch hub and weights
    caches, and any network access fails the test."""
    import torch.hub

    from losses import networks
    from losses.weights.store import WEIGHTS_ENV

    def no_network(*args, **kwargs):
        raise AssertionError("a loader tried to download")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
    monkeypatch.setenv(WEIGHTS_ENV, str(tmp_path_factory.mktemp("no_weights")))
    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    networks.forget_loaded()
    yield
    networks.forget_loaded()


@pytest.fixture(autouse=True)
def _capture_all_logs(caplog):
    caplog.set_level(logging.INFO)


# --- study runs: environment, small configs ---------------------------------------------

PLUGINS = Path(__file__).parent / "study" / "plugins"


@pytest.fixture(autouse=True)
def _plugins_leave_no_trace():
    """A test that loads a plugin (a study's ``plugins:``) in this process leaves the registries
    as it found them and forgets the plugin's module, so a later test sees only the built-ins and
    imports a plugin afresh."""
    from inr_models import registry
    from losses import components, families
    from study.results import table

    registries = (registry._codecs(), components._COMPONENTS, families._FAMILIES, table._TABLE)
    saved = [dict(entries) for entries in registries]
    yield
    for entries, before in zip(registries, saved, strict=True):
        entries.clear()
        entries.update(before)
    for plugin in PLUGINS.glob("*.py"):
        sys.modules.pop(plugin.stem, None)


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
        "optional_metrics": False,
        "retries": 0,
    }


@pytest.fixture
def write_config(tmp_path):
    def write(config: dict) -> Path:
        path = tmp_path / f"{config['name']}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    return write

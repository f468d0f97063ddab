"""Shared fixtures: real Kodak images (through the mirror on CI), crops of them, temp datasets."""

import logging
import os
from pathlib import Path

import numpy as np
import pytest

from study.datasets import KODAK_MIRROR_ENV, crop, kodak
from study.imageio import load_rgb

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


@pytest.fixture(autouse=True)
def _capture_all_logs(caplog):
    caplog.set_level(logging.INFO)

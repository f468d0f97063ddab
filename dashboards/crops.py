"""Side-by-side decoded crops (as the paper's Fig. 3): for one image and one bitrate, the run of
each codec × loss closest to that bitrate, cut to the same window, captioned with its bpp and
metrics; the dashboard embeds them as PNG, ``inr-study figures`` draws them as one figure."""

import argparse
import base64
import io
import logging
import math
import statistics
import tempfile
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from PIL import Image

from dashboards.data import DashboardError, StudyData, plotted_metrics
from dashboards.style import curve_styles
from study.data.imageio import load_rgb
from study.engine.trial import DECODED_NAME
from study.errors import InputError
from study.results.labels import record_label
from study.results.table import get_metric

log = logging.getLogger(__name__)


@dataclass
class Crop:
    caption: str
    pixels: np.ndarray
    bpp: float | None = None  # the shown run's; None for the original

    @cached_property  # a live page sends the same crops at every look
    def png_base64(self) -> str:
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG", optimize=True)
        return base64.b64encode(buffer.getvalue()).decode()


def bitrate(text: str) -> float:
    """A ``--crops-bpp`` value: bits per pixel, above 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"{text!r}: a bitrate in bits per pixel, above 0")
    return value


def original_image(folder: Path | None, image: str) -> np.ndarray | None:
    """The original as the study prepared it (crop included), when a study folder is given."""
    if folder is None:
        return None
    from study.engine.plan import load_images
    from study.layout import load_study_config

    config = load_study_config(folder)
    config = config.model_copy(
        update={"images": config.images.model_copy(update={"subset": [image]})}
    )
    try:
        return load_images(config)[image]
    except InputError as error:  # a copied or moved study whose image folder stayed behind
        log.warning("no original beside the crops: %s", error)
        return None


def _caption(name: str, record: dict, target_bpp: float) -> str:
    # A curve with no run near the target still shows its nearest: say how far off it is.
    offset = record["bpp"] / target_bpp - 1
    values = [f"{record['bpp']:.3f} bpp (target {target_bpp:.3f}: {offset:+.0%})"]
    for key in plotted_metrics([record]):
        metric, value = get_metric(key), record.get(key)
        if value is not None:
            values.append(f"{metric.label} {value:.4g}{f' {metric.unit}' if metric.unit else ''}")
    return f"{name}: {', '.join(values)}"


def _decoded(data: StudyData, record: dict, scratch: Path) -> np.ndarray:
    return load_rgb(data.store.artifact(record, DECODED_NAME, scratch))


def default_choice(
    data: StudyData, image: str | None = None, target_bpp: float | None = None
) -> tuple[str, float] | None:
    """``image`` (default: the first), at ``target_bpp`` (default: the median rate of its grid
    runs); None without grid runs."""
    grid = [r for r in data.records if not r.get("search")]
    if not grid:
        return None
    images = sorted({r["image"] for r in grid})
    image = image or images[0]
    if image not in images:
        raise DashboardError(f"no grid run on image {image!r}; the study's: {', '.join(images)}")
    if target_bpp is None:
        target_bpp = statistics.median(r["bpp"] for r in grid if r["image"] == image)
    return image, target_bpp


def nearest_runs(data: StudyData, image: str, target_bpp: float) -> list[tuple[str, dict]]:
    """Each curve's grid run on ``image`` nearest ``target_bpp`` (in log rate): (curve name,
    record), in the curves' plotting order."""
    closest = {}
    for record in data.records:
        if record.get("search") or record["image"] != image:
            continue
        label = record_label(record)
        distance = abs(math.log(record["bpp"] / target_bpp))
        if label not in closest or distance < closest[label][0]:
            closest[label] = (distance, record)
    styles = curve_styles(record for _, record in closest.values())
    ordered = sorted(closest.items(), key=lambda kv: styles[kv[0]].rank)
    return [(styles[label].name, record) for label, (_, record) in ordered]


def decoded_crops(
    data: StudyData,
    image: str,
    target_bpp: float,
    size: int = 160,
    original: np.ndarray | None = None,
    corner: tuple[int, int] | None = None,
    windows: dict[str, np.ndarray] | None = None,
) -> list[Crop]:
    """The original's window (when given), then each curve's run nearest ``target_bpp`` (in log
    rate) on ``image``, the same window cut from its decoded image; ``windows`` keeps each run's
    window by run id between calls, so a run is decoded once."""
    windows = {} if windows is None else windows
    crops = [] if original is None else [Crop(f"original {image}", _cut(original, size, corner))]
    with tempfile.TemporaryDirectory(prefix="inr-study-crops-") as scratch:
        for name, record in nearest_runs(data, image, target_bpp):
            run = record.get("run_id") or str(id(record))
            if run not in windows:
                windows[run] = _cut(_decoded(data, record, Path(scratch)), size, corner)
            caption = _caption(name, record, target_bpp)
            crops.append(Crop(caption, windows[run], record["bpp"]))
    return crops


def _cut(pixels: np.ndarray, size: int, corner: tuple[int, int] | None) -> np.ndarray:
    """A size×size window at ``corner`` (top, left), kept inside the image; centred by default."""
    height, width = pixels.shape[:2]
    size = min(size, height, width)
    top, left = corner if corner is not None else ((height - size) // 2, (width - size) // 2)
    top, left = min(max(top, 0), height - size), min(max(left, 0), width - size)
    return pixels[top : top + size, left : left + size]


@dataclass(frozen=True)
class ShownCrops:
    crops: list[Crop]
    image: str | None
    target_bpp: float | None
    waiting: bool = False  # the image asked for has no grid run yet

    @property
    def key(self) -> str:
        """Changes with what the panel shows: a page redraws it only then."""
        return "|".join(c.caption for c in self.crops) or f"none {self.image}"


NO_CROPS = ShownCrops([], None, None)


class LiveCrops:
    """The decoded-crops panel of a live page, chosen again at each look at a growing study: the
    image and rate asked for (default: the first image, at the median rate of its runs), each
    curve's nearest run. Each run's image is decoded once; a look whose crops fail (a file
    unreadable for now) logs why and keeps those shown, unless ``strict``. Looks come from the
    server's threads: one at a time."""

    def __init__(
        self,
        folder: Path | None,
        image: str | None,
        target_bpp: float | None,
        size: int,
        strict: bool = False,
    ):
        self.folder, self.image, self.target_bpp, self.size = folder, image, target_bpp, size
        self.strict = strict  # a page written once: its errors stop it, an image must have runs
        self.originals: dict[str, np.ndarray | None] = {}
        self.windows: dict[str, np.ndarray] = {}  # run id -> the window of its decoded image
        self.shown = NO_CROPS
        self.lock = threading.Lock()

    def __call__(self, data: StudyData) -> ShownCrops:
        with self.lock:
            try:
                self.shown = self._choose(data)
            except Exception as error:  # the page's curves go on: only this panel waits
                if self.strict:
                    raise
                log.warning("decoded crops not updated: %s", error)
            return self.shown

    def _choose(self, data: StudyData) -> ShownCrops:
        try:
            choice = default_choice(data, self.image, self.target_bpp)
        except DashboardError:  # the image asked for has no grid run yet
            if self.strict:
                raise
            return ShownCrops([], self.image, self.target_bpp, waiting=True)
        if choice is None:
            return NO_CROPS
        image, bpp = choice
        if image not in self.originals:
            self.originals[image] = original_image(self.folder, image)
        crops = decoded_crops(
            data, image, bpp, self.size, self.originals[image], windows=self.windows
        )
        return ShownCrops(crops, image, bpp)

"""Side-by-side decoded crops (as the paper's Fig. 3): for one image and one bitrate, the run of
each codec × loss closest to that bitrate, cut to the same window, captioned with its bpp and
metrics; the dashboard embeds them as PNG, ``inr-study figures`` draws them as one figure."""

import base64
import io
import logging
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dashboards.data import DashboardError, StudyData, plotted_metrics
from dashboards.style import curve_styles
from study.data.imageio import load_rgb
from study.engine.trial import DECODED_NAME
from study.errors import InputError
from study.results.rd import curve_label
from study.results.table import get_metric

log = logging.getLogger(__name__)


@dataclass
class Crop:
    caption: str
    pixels: np.ndarray
    bpp: float | None = None  # the shown run's; None for the original

    @property
    def png_base64(self) -> str:
        buffer = io.BytesIO()
        Image.fromarray(self.pixels).save(buffer, format="PNG", optimize=True)
        return base64.b64encode(buffer.getvalue()).decode()


def _window(
    shape: tuple[int, ...], size: int, corner: tuple[int, int] | None
) -> tuple[slice, slice]:
    """A size×size window at ``corner`` (top, left), kept inside the image; centred by default."""
    height, width = shape[:2]
    size = min(size, height, width)
    top, left = corner if corner is not None else ((height - size) // 2, (width - size) // 2)
    top, left = min(max(top, 0), height - size), min(max(left, 0), width - size)
    return slice(top, top + size), slice(left, left + size)


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


def default_choice(data: StudyData, image: str | None = None) -> tuple[str, float] | None:
    """``image`` (default: the first), at the median rate of its grid runs; None without grid
    runs."""
    grid = [r for r in data.records if not r.get("search")]
    if not grid:
        return None
    images = sorted({r["image"] for r in grid})
    image = image or images[0]
    if image not in images:
        raise DashboardError(f"no grid run on image {image!r}; the study's: {', '.join(images)}")
    return image, statistics.median(r["bpp"] for r in grid if r["image"] == image)


def decoded_crops(
    data: StudyData,
    image: str,
    target_bpp: float,
    size: int = 160,
    original: np.ndarray | None = None,
    corner: tuple[int, int] | None = None,
) -> list[Crop]:
    """The original's window (when given), then each curve's run nearest ``target_bpp`` (in log
    rate) on ``image``, the same window cut from its decoded image."""
    closest = {}
    for record in data.records:
        if record.get("search") or record["image"] != image:
            continue
        label = curve_label(record)
        distance = abs(np.log(record["bpp"] / target_bpp))
        if label not in closest or distance < closest[label][0]:
            closest[label] = (distance, record)
    styles = curve_styles(record for _, record in closest.values())
    crops = []
    if original is not None:
        rows, cols = _window(original.shape, size, corner)
        crops.append(Crop(f"original {image}", original[rows, cols]))
    ordered = sorted(closest.items(), key=lambda kv: styles[kv[0]].rank)
    with tempfile.TemporaryDirectory(prefix="inr-study-crops-") as scratch:
        for label, (_, record) in ordered:
            pixels = _decoded(data, record, Path(scratch))
            rows, cols = _window(pixels.shape, size, corner)
            caption = _caption(styles[label].name, record, target_bpp)
            crops.append(Crop(caption, pixels[rows, cols], record["bpp"]))
    return crops

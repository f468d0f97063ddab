"""Side-by-side decoded crops (as the paper's Fig. 3): for one image and one bitrate, the run of
each codec × loss closest to that bitrate, cut to the same window and embedded as PNG."""

import base64
import io
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from dashboards.data import StudyData, plotted_metrics
from study.data.imageio import load_rgb
from study.engine.trial import DECODED_NAME
from study.results.table import get_metric


@dataclass
class Crop:
    caption: str
    png_base64: str


def encode_png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", optimize=True)
    return base64.b64encode(buffer.getvalue()).decode()


def _window(shape: tuple[int, ...], size: int) -> tuple[slice, slice]:
    height, width = shape[:2]
    size = min(size, height, width)
    top, left = (height - size) // 2, (width - size) // 2
    return slice(top, top + size), slice(left, left + size)


def _decoded(data: StudyData, record: dict, scratch: Path) -> np.ndarray:
    return load_rgb(data.store.artifact(record, DECODED_NAME, scratch))


def default_choice(data: StudyData) -> tuple[str, float] | None:
    """The first image, at the median rate of its grid runs; None without grid runs."""
    grid = [r for r in data.records if not r.get("search")]
    if not grid:
        return None
    image = sorted({r["image"] for r in grid})[0]
    return image, statistics.median(r["bpp"] for r in grid if r["image"] == image)


def decoded_crops(
    data: StudyData,
    image: str,
    target_bpp: float,
    size: int = 160,
    original: np.ndarray | None = None,
) -> list[Crop]:
    closest = {}
    for record in data.records:
        if record.get("search") or record["image"] != image:
            continue
        curve = (record["codec"], record.get("loss") or "")
        distance = abs(np.log(record["bpp"] / target_bpp))
        if curve not in closest or distance < closest[curve][0]:
            closest[curve] = (distance, record)
    # Captions quote the first metric the dashboards plot.
    metric = get_metric(plotted_metrics()[0])
    crops = []
    if original is not None:
        rows, cols = _window(original.shape, size)
        crops.append(Crop(f"original {image}", encode_png(original[rows, cols])))
    with tempfile.TemporaryDirectory(prefix="inr-study-crops-") as scratch:
        for (codec, loss), (_, record) in sorted(closest.items()):
            pixels = _decoded(data, record, Path(scratch))
            rows, cols = _window(pixels.shape, size)
            value = record.get(metric.key)
            name = f"{codec} {loss}" if loss else codec
            caption = f"{name}: {record['bpp']:.3f} bpp" + (
                f", {metric.label} {value:.4g} {metric.unit}" if value is not None else ""
            )
            crops.append(Crop(caption, encode_png(pixels[rows, cols])))
    return crops

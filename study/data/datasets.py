"""Datasets of test images: Kodak (downloaded or mirrored, checksum-verified) and image folders."""

import hashlib
import os
import shutil
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm import tqdm

from study.data.imageio import ImageLoadError, load_rgb, why_unreadable
from study.errors import InputError

KODAK_URL = "https://r0k.us/graphics/kodak/kodak/{name}"
KODAK_MIRROR_ENV = "INR_STUDY_KODAK_MIRROR"
CACHE_ENV = "INR_STUDY_CACHE"
# The image files image_folder lists, each opened by load_rgb (JPEG XL through pillow_jxl).
IMAGE_SUFFIXES = {
    ".png",
    ".jpg",
    ".jpeg",
    ".webp",
    ".avif",
    ".jxl",
    ".bmp",
    ".tif",
    ".tiff",
    ".ppm",
    ".pgm",
}
DOWNLOAD_TIMEOUT_S = 30

Anchor = Literal["center", "top-left", "top-right", "bottom-left", "bottom-right"]
ANCHORS: tuple[Anchor, ...] = ("center", "top-left", "top-right", "bottom-left", "bottom-right")


class DatasetError(InputError):
    """A dataset that cannot be fetched, verified or read; the message says what to do."""


@dataclass(frozen=True)
class ImageRecord:
    name: str  # file stem, e.g. "kodim01": the image's id in every result table
    path: Path


@dataclass(frozen=True)
class KodakChecksum:
    file_sha256: str
    # Hash of the decoded RGB pixels, so a losslessly re-encoded mirror is accepted too.
    pixel_sha256: str


def kodak_checksums() -> dict[str, KodakChecksum]:
    text = resources.files("study").joinpath("data/kodak.tsv").read_text()
    rows = (line.split("\t") for line in text.splitlines() if not line.startswith("#"))
    return {name: KodakChecksum(file_sum, pixel_sum) for name, file_sum, pixel_sum in rows}


def default_cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "inr-study")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pixel_sha256(path: Path) -> str | None:
    try:
        pixels = load_rgb(path)
    except ImageLoadError:  # not the published image, whatever it is
        return None
    return hashlib.sha256(pixels.tobytes()).hexdigest()


def _matches(path: Path, expected: KodakChecksum) -> bool:
    return (
        _sha256_file(path) == expected.file_sha256 or _pixel_sha256(path) == expected.pixel_sha256
    )


def _mirror_hint() -> str:
    return (
        f"To use a local copy instead, pass --kodak-mirror DIR or set {KODAK_MIRROR_ENV}=DIR, "
        "where DIR holds kodim01.png … kodim24.png."
    )


def _download(url: str, destination: Path) -> None:
    partial = destination.with_suffix(destination.suffix + ".part")
    try:
        with (
            urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response,
            partial.open("wb") as out,
        ):
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError) as error:
        partial.unlink(missing_ok=True)
        raise DatasetError(f"could not download {url}: {error}. {_mirror_hint()}") from None
    partial.replace(destination)


def _kodak_stems() -> list[str]:
    return sorted(Path(name).stem for name in kodak_checksums())


def planned_image_names(dataset: str, subset: list[str] | int | None) -> list[str] | None:
    """The names of a study's images without their files: Kodak's are known, a named subset is
    its names; a folder read whole needs its files (None)."""
    if dataset == "kodak":
        stems = _kodak_stems()
        return stems if subset is None else _pick(stems, subset)
    return list(subset) if isinstance(subset, list) else None


def kodak(
    cache_dir: Path | None = None,
    mirror: str | Path | None = None,
    progress: bool = True,
    only: list[str] | None = None,
) -> list[ImageRecord]:
    """The 24 Kodak images (or the ``only`` ones, by stem) in ``cache_dir/kodak``, fetched on
    first use and always verified.

    ``mirror`` (or the INR_STUDY_KODAK_MIRROR variable) is a local folder to copy from instead of
    the original site.
    """
    mirror = mirror or os.environ.get(KODAK_MIRROR_ENV) or None
    target = (cache_dir or default_cache_dir()) / "kodak"
    target.mkdir(parents=True, exist_ok=True)
    records = []
    checksums = kodak_checksums()
    wanted = sorted(checksums)
    if only is not None:
        wanted = [name for name in wanted if Path(name).stem in set(only)]
    # A bar only where verifying is slow enough to notice: the whole set.
    shown = progress and len(wanted) > 4
    names = tqdm(wanted, desc="kodak", unit="img", disable=not shown, leave=False)
    for name in names:
        destination = target / name
        expected = checksums[name]
        if not (destination.is_file() and _matches(destination, expected)):
            _fetch_one(name, destination, mirror)
            if not _matches(destination, expected):
                source = Path(mirror) / name if mirror else KODAK_URL.format(name=name)
                destination.unlink()
                raise DatasetError(
                    f"{source}: checksum mismatch (neither the file nor its decoded pixels match "
                    f"the published Kodak {name}). "
                    + ("Check the mirror's copy." if mirror else _mirror_hint())
                )
        records.append(ImageRecord(Path(name).stem, destination))
    return records


def _fetch_one(name: str, destination: Path, mirror: str | Path | None) -> None:
    if mirror is None:
        _download(KODAK_URL.format(name=name), destination)
        return
    source = Path(mirror) / name
    if not source.is_file():
        raise DatasetError(f"Kodak mirror {mirror}: {name} is missing")
    shutil.copyfile(source, destination)


def image_folder(path: str | Path) -> list[ImageRecord]:
    """Every image file directly in ``path``, sorted by name."""
    folder = Path(path)
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    except NotADirectoryError:
        raise DatasetError(f"{folder}: not a folder of images") from None
    except OSError as error:
        raise DatasetError(f"{folder}: {why_unreadable(folder, error)}") from None
    if not files:
        raise DatasetError(
            f"{folder}: no image files (looked for {', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    stems = [p.stem for p in files]
    if len(set(stems)) != len(stems):
        raise DatasetError(f"{folder}: two images share a name stem; rename them apart")
    return [ImageRecord(p.stem, p) for p in files]


def resolve_dataset(
    name: str,
    *,
    mirror: str | Path | None = None,
    cache_dir: Path | None = None,
    subset: list[str] | int | None = None,
) -> list[ImageRecord]:
    """``"kodak"`` or a path to a folder of images; with a ``subset``, Kodak fetches and verifies
    only those images (``select`` then picks and orders them)."""
    if name == "kodak":
        only = None if subset is None else _pick(_kodak_stems(), subset)
        return kodak(cache_dir=cache_dir, mirror=mirror, only=only)
    if os.path.lexists(name):
        return image_folder(name)
    raise DatasetError(
        f"unknown dataset {name!r}: neither 'kodak' nor an existing folder of images"
    )


def select(records: list[ImageRecord], subset: list[str] | int | None) -> list[ImageRecord]:
    """The first ``subset`` images, or the named ones, in the order given."""
    by_name = {r.name: r for r in records}
    return records if subset is None else [by_name[name] for name in _pick(list(by_name), subset)]


def _pick(names: list[str], subset: list[str] | int) -> list[str]:
    if isinstance(subset, int):
        if not 1 <= subset <= len(names):
            raise DatasetError(
                f"image subset {subset}: this dataset has {len(names)} images, so give 1 to "
                f"{len(names)} or their names"
            )
        return names[:subset]
    if not subset:
        raise DatasetError("empty image subset: name at least one image, or leave it out for all")
    unknown = [name for name in subset if name not in names]
    if unknown:
        raise DatasetError(
            f"unknown images {', '.join(unknown)}; this dataset has {_listing(names)}"
        )
    repeated = sorted({name for name in subset if subset.count(name) > 1})
    if repeated:
        raise DatasetError(f"images named more than once: {', '.join(repeated)}")
    return list(subset)


def _listing(names: list[str], shown: int = 30) -> str:
    more = f", … ({len(names)} in all)" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_crop_fits(path: Path, width: int, height: int, size: int | tuple[int, int]) -> None:
    """Refuse a crop larger than the ``width`` x ``height`` image ``path``, naming both."""
    crop_height, crop_width = (size, size) if isinstance(size, int) else size
    if crop_height > height or crop_width > width:
        raise DatasetError(
            f"{path}: image is {width}x{height}, too small for the {crop_width}x{crop_height} crop"
        )


def crop(image: np.ndarray, size: int | tuple[int, int], anchor: Anchor = "center") -> np.ndarray:
    """A (height, width) window of ``image`` placed at ``anchor``; ``size`` int means square."""
    height, width = (size, size) if isinstance(size, int) else size
    full_h, full_w = image.shape[:2]
    if height > full_h or width > full_w or height < 1 or width < 1:
        raise ValueError(f"crop {height}x{width} does not fit in a {full_h}x{full_w} image")
    if anchor not in ANCHORS:
        raise ValueError(f"unknown crop anchor {anchor!r}; valid anchors: {', '.join(ANCHORS)}")
    top = {"center": (full_h - height) // 2, "top": 0, "bottom": full_h - height}
    left = {"center": (full_w - width) // 2, "left": 0, "right": full_w - width}
    vertical, _, horizontal = anchor.partition("-")
    row = top[vertical]
    col = left[horizontal or "center"]
    return np.ascontiguousarray(image[row : row + height, col : col + width])


@dataclass(frozen=True)
class ImageOptions:
    """How each dataset image is prepared before coding."""

    crop: int | tuple[int, int] | None = None
    crop_anchor: Anchor = "center"
    drop_alpha: bool = False

    def label(self) -> str:
        return "" if self.crop is None else f"{self.crop}px {self.crop_anchor} crops"


def load_image(record: ImageRecord, options: ImageOptions = ImageOptions()) -> np.ndarray:
    image = load_rgb(record.path, drop_alpha=options.drop_alpha)
    if options.crop is None:
        return image
    check_crop_fits(record.path, image.shape[1], image.shape[0], options.crop)
    return crop(image, options.crop, options.crop_anchor)

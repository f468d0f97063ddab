"""A work package: part of a grid study that runs anywhere, with no Ray, no MLflow and no dataset.

A package is a folder::

    package.json   study name, its config, the code's commit, the trials (keys and specs),
                   each image's file and digest
    images/        the study's prepared images (crops included) as lossless PNG

``inr-study shard`` writes packages, ``inr-study work`` runs one, and ``inr-study import`` checks
what came back against the study itself, so nothing here has to be trusted.
"""

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from study.data.imageio import image_digest, load_rgb, save_png
from study.engine.record import RecordError, spec_from_json
from study.engine.trial import TrialSpec
from study.errors import InputError
from study.results.table import checked_opt_ins

PACKAGE_FILE = "package.json"
PACKAGE_KIND = "inr-study-package"
PACKAGE_FORMAT = f"{PACKAGE_KIND}/2"  # 2: ``optional_metrics`` (was ``lpips``)
IMAGES_DIR = "images"
PART_PREFIX = "part-"
# What ``work`` writes for each finished trial, in OUT/trials/KEY/.
TRIALS_DIR = "trials"
RESULT_FILE = "result.json"
MAX_PACKAGE_BYTES = 64 * 2**20


class PackageError(InputError):
    """A work package that cannot be used; the message names it and the problem."""


@dataclass(frozen=True)
class Package:
    folder: Path
    study: str
    config: str  # the study's validated config (YAML text)
    commit: str  # the code version it was made with
    part: int
    parts: int
    trials: tuple[TrialSpec, ...]
    digests: dict[str, str]  # image name -> digest of its prepared pixels
    plugins: tuple[str, ...] = ()  # modules registering the study's own codecs, losses, metrics
    # Whether the study measures the optional metrics (where their weights are present).
    optional_metrics: bool = True
    extra_metrics: tuple[str, ...] = ()  # the opt-in metrics the study computes

    def image(self, name: str) -> np.ndarray:
        """An image of the package, checked against the digest the study recorded."""
        pixels = load_rgb(self.folder / IMAGES_DIR / f"{name}.png")
        if image_digest(pixels) != self.digests[name]:
            raise PackageError(
                f"{self.folder}: images/{name}.png is not the study's {name} "
                f"(digest {image_digest(pixels)}, the study's {self.digests[name]})"
            )
        return pixels


def write_package(
    folder: Path,
    *,
    study: str,
    config: str,
    commit: str,
    part: int,
    parts: int,
    trials: list[TrialSpec],
    images: dict[str, np.ndarray],
    plugins: list[str],
    optional_metrics: bool,
    extra_metrics: list[str],
) -> Path:
    """A package of ``trials`` with the images they need."""
    folder = Path(folder)
    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    needed = sorted({spec.image for spec in trials})
    for name in needed:
        save_png(folder / IMAGES_DIR / f"{name}.png", images[name])
    document = {
        "format": PACKAGE_FORMAT,
        "study": study,
        "config": config,
        "commit": commit,
        "part": part,
        "parts": parts,
        "plugins": plugins,
        "optional_metrics": optional_metrics,
        "extra_metrics": extra_metrics,
        "images": {name: image_digest(images[name]) for name in needed},
        "trials": [asdict(spec) for spec in trials],
    }
    (folder / PACKAGE_FILE).write_text(json.dumps(document, indent=1) + "\n")
    return folder


def read_package(folder: Path) -> Package:
    """A package with every field checked (images are checked when read)."""
    folder = Path(folder)
    path = folder / PACKAGE_FILE
    if not path.is_file():
        raise PackageError(f"{folder}: not a work package (no {PACKAGE_FILE})")
    if path.stat().st_size > MAX_PACKAGE_BYTES:
        raise PackageError(f"{path}: too large for a package description")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise PackageError(f"{path}: not valid JSON ({type(error).__name__})") from None
    found = data.get("format") if isinstance(data, dict) else None
    if found != PACKAGE_FORMAT:
        if str(found).startswith(f"{PACKAGE_KIND}/"):
            raise PackageError(
                f"{path}: a work package of format {found!r}, this inr-study reads "
                f"{PACKAGE_FORMAT!r}: make the packages again (`inr-study shard`)"
            )
        raise PackageError(f"{path}: not an inr-study work package")
    try:
        trials = tuple(spec_from_json(spec, str(path)) for spec in data["trials"])
        digests = {str(k): str(v) for k, v in data["images"].items()}
        package = Package(
            folder,
            str(data["study"]),
            str(data["config"]),
            str(data["commit"]),
            int(data["part"]),
            int(data["parts"]),
            trials,
            digests,
            tuple(str(module) for module in data["plugins"]),
            bool(data["optional_metrics"]),
            tuple(checked_opt_ins(data.get("extra_metrics", []))),  # packages made before: none
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecordError) as error:
        raise PackageError(f"{path}: malformed ({error})") from None
    missing = sorted({spec.image for spec in trials} - set(digests))
    if missing:
        raise PackageError(f"{path}: no image for {', '.join(missing)}")
    return package


def part_folder(out: Path, part: int) -> Path:
    """Part ``part`` of a sharded study: ``part-0``, ``part-1``, ... (a Slurm array index)."""
    return Path(out) / f"{PART_PREFIX}{part}"

"""A work package: part of a study that runs anywhere, with no Ray, no MLflow and no dataset.

A package is a folder::

    package.json   study name, its config, the code's commit, each image's file and digest, and
                   either the trials (keys and specs: part of a grid study) or the matches (task,
                   α, image: part of a rate-matching search over a fixed α grid) with the
                   study's earlier fits on those images, where each match starts from
    images/        the study's prepared images (crops included) as lossless PNG

``inr-study shard`` writes packages, ``inr-study work`` runs one, and ``inr-study import`` checks
what came back against the study itself, so nothing here has to be trusted.
"""

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from study.data.imageio import image_digest, load_rgb, save_png
from study.engine.record import SPEC_TYPES, RecordError, TrialRecord, spec_from_json
from study.engine.trial import TrialSpec
from study.errors import InputError
from study.results.table import checked_opt_ins

PACKAGE_FILE = "package.json"
PACKAGE_KIND = "inr-study-package"
# 2: ``optional_metrics`` (was ``lpips``); 3: ``matches`` and ``fits``.
PACKAGE_FORMAT = f"{PACKAGE_KIND}/3"
IMAGES_DIR = "images"
PART_PREFIX = "part-"
# What ``work`` writes for each finished trial, in OUT/trials/KEY/.
TRIALS_DIR = "trials"
RESULT_FILE = "result.json"
# ... and for each failed one, its trace in OUT/failed/KEY.txt (removed when a rerun fits it).
FAILED_DIR = "failed"
# The most of a trace an archive of ``work --pack`` carries home (its end, where the error is).
MAX_TRACE_BYTES = 64 * 2**10
MAX_PACKAGE_BYTES = 64 * 2**20


class PackageError(InputError):
    """A work package that cannot be used; the message names it and the problem."""


@dataclass(frozen=True)
class Match:
    """One α of one search task, to be matched to the task's target on one image."""

    search: str  # the task's name, e.g. coolchic-v2/lc_ssim/0.25bpp
    alpha: float | None  # None: a loss family without α
    image: str

    def label(self) -> str:
        alpha = "" if self.alpha is None else f" α={self.alpha:g}"
        return f"{self.search}{alpha} {self.image}"


# What a match reads of an earlier fit (``study.engine.tasks.earlier_fits``): its key, its setup
# (the spec's fields, the convention as the codec resolved it) and its rate.
FIT_TYPES = {**SPEC_TYPES, "search": (str, type(None)), "trial_key": str}


def fit_summary(record: dict) -> dict | None:
    """The fields of a fit's record (a study's, flat) that a match reads; None where one is
    missing or odd (a fit that failed has no rate, say)."""
    summary = {name: record.get(name) for name in (*FIT_TYPES, "bpp")}
    # MLflow keeps no empty parameter: a study without crops records no image variant.
    summary["image_variant"] = summary["image_variant"] or ""
    try:
        return _checked_fit(summary, "")
    except RecordError:
        return None


def record_fit(record: TrialRecord) -> dict | None:
    """``fit_summary`` of a trial record (a published study's, or what ``work`` wrote)."""
    convention = record.settings.get("convention") or record.spec.convention
    flat = {**asdict(record.spec), "convention": convention, "trial_key": record.key}
    return fit_summary({**flat, "bpp": record.metrics.get("bpp")})


def _checked_fit(data, where: str) -> dict:
    if not isinstance(data, dict) or set(data) != {*FIT_TYPES, "bpp"}:
        raise RecordError(f"{where}: an earlier fit is not an object with the expected fields")
    for name, kind in FIT_TYPES.items():
        if not isinstance(data[name], kind) or isinstance(data[name], bool):
            raise RecordError(
                f"{where}: an earlier fit's {name} = {data[name]!r} has the wrong type"
            )
    bpp = data["bpp"]
    if not isinstance(bpp, int | float) or isinstance(bpp, bool) or not 0 < bpp < 1e6:
        raise RecordError(f"{where}: an earlier fit's bpp = {bpp!r} is not a rate")
    return data


def _checked_match(data, where: str) -> Match:
    if not isinstance(data, dict) or set(data) != {"search", "alpha", "image"}:
        raise RecordError(f"{where}: a match is not an object of search, alpha and image")
    alpha, search, image = data["alpha"], data["search"], data["image"]
    if alpha is not None and (
        not isinstance(alpha, int | float) or isinstance(alpha, bool) or not math.isfinite(alpha)
    ):
        raise RecordError(f"{where}: a match's alpha {alpha!r} is not a number")
    if not isinstance(search, str) or not isinstance(image, str):
        raise RecordError(f"{where}: a match's search and image must be text")
    return Match(search, None if alpha is None else float(alpha), image)


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
    matches: tuple[Match, ...] = ()  # a search's package: these instead of trials
    fits: tuple[dict, ...] = ()  # the study's earlier fits on the matches' images

    @property
    def items(self) -> tuple:
        """Its part of the work: the matches of a search's package, else the trials."""
        return self.matches or self.trials

    @property
    def unit(self) -> str:
        return "matches" if self.matches else "trials"

    def study_config(self):
        """The study's config, parsed from the text the package carries."""
        import yaml

        from study.config import parse_config

        return parse_config(yaml.safe_load(self.config))

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
    matches: list[Match] = (),
    fits: list[dict] = (),
) -> Path:
    """A package of ``trials`` (or of ``matches``, with the earlier ``fits`` they start from)
    with the images they need."""
    folder = Path(folder)
    (folder / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
    needed = sorted({spec.image for spec in trials} | {match.image for match in matches})
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
        "matches": [asdict(match) for match in matches],
        "fits": [fit for fit in fits if fit["image"] in needed],
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
            tuple(checked_opt_ins(data["extra_metrics"])),
            tuple(_checked_match(match, str(path)) for match in data["matches"]),
            tuple(_checked_fit(fit, str(path)) for fit in data["fits"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError, RecordError) as error:
        raise PackageError(f"{path}: malformed ({error})") from None
    if trials and package.matches:
        raise PackageError(f"{path}: holds both trials and matches (one package, one kind)")
    if len(set(package.matches)) < len(package.matches):
        raise PackageError(f"{path}: a match is listed twice")
    needed = {spec.image for spec in trials} | {match.image for match in package.matches}
    missing = sorted(needed - set(digests))
    if missing:
        raise PackageError(f"{path}: no image for {', '.join(missing)}")
    return package


def part_folder(out: Path, part: int) -> Path:
    """Part ``part`` of a sharded study: ``part-0``, ``part-1``, ... (a Slurm array index)."""
    return Path(out) / f"{PART_PREFIX}{part}"

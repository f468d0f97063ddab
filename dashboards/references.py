"""Reference curves drawn beside a study's: CompressAI-format files, each with the images its
curve is the mean over, read and checked once, then matched to the images a study's curves share
(a mean over other images is left out, or drawn labelled as such)."""

import argparse
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from study.data.datasets import ANCHORS, image_folder, planned_image_names
from study.errors import InputError
from study.results.table import metric_table, opt_in_metrics


class ReferenceFileError(InputError):
    """A reference that is not a CompressAI-format R-D file: the message names it."""


@dataclass(frozen=True)
class ImageSet:
    """The images a curve is the mean over, as prepared: a reference curve shares the study's
    axes only when both are the same set."""

    dataset: str  # "kodak" or a folder, as a study config names it
    names: frozenset[str]
    crop: int | None = None  # side of the square crops; None: full size
    anchor: str = "center"

    def preparation(self) -> str:
        return f"{self.crop}-px {self.anchor} crops" if self.crop else "full size"

    def describe(self) -> str:
        if not self.names:  # curves over different images: no one set
            return f"different {self.dataset} images (none common to every curve)"
        count = len(self.names)
        prepared = f"as {self.preparation()}" if self.crop else "at full size"
        return f"{count} {self.dataset} image{'s' * (count != 1)} {prepared}"


def dataset_images(text: str) -> ImageSet:
    """``DATASET[@SIDE[-ANCHOR]]``: every image of a dataset (``kodak`` or a folder), at full size
    or as ``SIDE``-px crops (centre crops unless an anchor is given)."""
    dataset, _, prepared = text.partition("@")
    side, _, anchor = prepared.partition("-")
    if prepared and not (side.isdigit() and (anchor or "center") in ANCHORS):
        raise ValueError(
            f"{text!r}: expected DATASET, DATASET@SIDE or DATASET@SIDE-ANCHOR "
            f"(anchors: {', '.join(ANCHORS)}), e.g. kodak or kodak@256"
        )
    names = planned_image_names(dataset, None)
    if names is None:  # a folder: its files name its images
        names = [record.name for record in image_folder(dataset)]
    return ImageSet(dataset, frozenset(names), int(side) if side else None, anchor or "center")


@dataclass(frozen=True)
class Reference:
    """A CompressAI-format file and the images its curve is the mean over (None: not stated)."""

    path: Path
    images: ImageSet | None = None


def reference_argument(text: str) -> Reference:
    """``FILE`` or ``FILE:IMAGES`` (see :func:`dataset_images`)."""
    path, colon, images = text.rpartition(":")
    if not colon or Path(text).is_file():
        return Reference(Path(text))
    try:
        return Reference(Path(path), dataset_images(images))
    except (ValueError, InputError) as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _mismatch(reference: Reference, study: ImageSet | None) -> str | None:
    """Why a reference curve is not comparable with the study's dataset curves, or None."""
    if reference.images is None:
        return (
            "its images are not stated (--reference FILE:DATASET[@SIDE]; CompressAI's Kodak "
            "files are the mean over the 24 full-size images: FILE:kodak)"
        )
    if study is None:
        return "this study's images are unknown (give its study folder, not --experiment)"
    if reference.images != study:
        return (
            f"it is the mean over {reference.images.describe()}; this study's curves over "
            f"{study.describe()}"
        )
    return None


@dataclass(frozen=True)
class ReferenceCurve:
    """A reference file's curve as read: ``{name, label, bpp, <plotted metric>: values, ...}``."""

    reference: Reference
    curve: dict


def read_references(references: list[Reference]) -> list[ReferenceCurve]:
    """The curves of CompressAI-format files (absent metrics left out; a file without bpp gives
    none), read once for every matching of them to a study's images."""
    plotted = [m for m in metric_table(opt_in_metrics()) if m.plotted]
    keys = {"bpp": "bpp", **{m.compressai_key: m.key for m in plotted}}
    curves = []
    for reference in references:
        name, results = _reference_results(reference.path, keys)
        curve = {"name": name, "label": f"{name} (reference)"}
        for theirs, ours in keys.items():
            if theirs in results:
                curve[ours] = results[theirs]
        if "bpp" in curve:
            curves.append(ReferenceCurve(reference, curve))
    return curves


def _reference_results(path: Path, keys: Iterable[str]) -> tuple[str, dict[str, list]]:
    """A CompressAI-format file's name and those of its results named in ``keys``, each a list
    of numbers (or nulls) as long as the others; a file that is not one is refused, naming it
    and the problem (what else it holds, a run's config say, is not read)."""
    problem = "not a CompressAI-format R-D file"
    try:
        document = json.loads(path.read_bytes())
    except OSError as error:
        raise ReferenceFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    except ValueError:
        raise ReferenceFileError(f"{path}: not JSON, so {problem}") from None
    except RecursionError:
        raise ReferenceFileError(f"{path}: nested too deeply to be an R-D file") from None
    results = document.get("results") if isinstance(document, dict) else None
    if not isinstance(results, dict):
        raise ReferenceFileError(f'{path}: {problem} (no "results" object)')
    read = {key: results[key] for key in keys if key in results}
    for key, values in read.items():
        # A metric may lack a point (null); a rate may not: it places the others.
        allowed = _finite if key == "bpp" else _finite_or_missing
        if not isinstance(values, list) or not all(allowed(v) for v in values):
            raise ReferenceFileError(f"{path}: results.{key} is not a list of numbers")
    if len({len(values) for values in read.values()}) > 1:
        raise ReferenceFileError(f"{path}: its results lists ({', '.join(read)}) differ in length")
    name = document.get("name", path.stem)
    return (name if isinstance(name, str) else path.stem), read


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _finite_or_missing(value) -> bool:
    return value is None or _finite(value)


def match_references(
    curves: list[ReferenceCurve], study: ImageSet | None, unmatched: bool = False
) -> tuple[list[dict], list[str]]:
    """The curves to draw beside a study's dataset curves, and a note for each one left out, or
    drawn with ``unmatched`` although its images are not the study's."""
    drawn, notes = [], []
    for read in curves:
        reference, curve, name = read.reference, dict(read.curve), read.curve["name"]
        why = _mismatch(reference, study)
        if why is not None and not unmatched:
            notes.append(f"Reference {name} ({reference.path.name}) left out: {why}.")
            continue
        if why is not None:
            images = reference.images.describe() if reference.images else "images not stated"
            curve["label"] = f"{name} (reference: {images}; not this study's images)"
            notes.append(f"Reference {name} ({reference.path.name}) drawn although {why}.")
        drawn.append(curve)
    return drawn, notes


def reference_curves(
    references: list[Reference], study: ImageSet | None, unmatched: bool = False
) -> tuple[list[dict], list[str]]:
    """:func:`read_references`, then :func:`match_references`."""
    return match_references(read_references(references), study, unmatched)


def add_reference_option(parser: argparse.ArgumentParser) -> None:
    """``--reference FILE[:IMAGES]`` (repeatable) and ``--unmatched-references``, read by
    :func:`reference_curves`."""
    parser.add_argument(
        "--reference",
        type=reference_argument,
        action="append",
        default=[],
        metavar="FILE[:IMAGES]",
        help="CompressAI-format JSON to draw as a reference curve (repeatable), with the images "
        "it is the mean over: IMAGES is DATASET, DATASET@SIDE or DATASET@SIDE-ANCHOR (every "
        "image of the dataset, full size or as SIDE-px crops), e.g. jpeg.json:kodak; drawn only "
        "when they are this study's images",
    )
    parser.add_argument(
        "--unmatched-references",
        action="store_true",
        help="draw the references of other images too, labelled as such (default: left out, "
        "with a note)",
    )

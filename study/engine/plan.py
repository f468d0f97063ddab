"""From a validated config to the study's work: its images and its trials."""

from collections.abc import Iterator
from contextlib import contextmanager
from itertools import product

import numpy as np

from inr_models import create_codec
from study.config import StudyConfig, StudyConfigError
from study.data.datasets import (
    DatasetError,
    ImageOptions,
    ImageRecord,
    check_crop_fits,
    load_image,
    resolve_dataset,
    select,
)
from study.data.imageio import ImageHeader, read_header
from study.engine.trial import TrialSpec


def image_options(config: StudyConfig) -> ImageOptions:
    images = config.images
    return ImageOptions(images.crop, images.crop_anchor, images.drop_alpha)


def load_images(config: StudyConfig) -> dict[str, np.ndarray]:
    """The study's images, decoded and cropped: bad files fail here, before any trial starts."""
    options = image_options(config)
    with _naming_the_config(config):
        return {record.name: load_image(record, options) for record in _records(config)}


def check_images(config: StudyConfig) -> dict[str, ImageHeader]:
    """``load_images``'s checks from each image's header alone, decoding no pixels: the
    dataset, the subset, each file and the crop (``run --validate-only``)."""
    options = image_options(config)
    headers = {}
    with _naming_the_config(config):
        for record in _records(config):
            header = read_header(record.path, drop_alpha=options.drop_alpha)
            # Config crops are square, so an EXIF rotation cannot change whether one fits.
            if options.crop is not None:
                check_crop_fits(record.path, header.width, header.height, options.crop)
            headers[record.name] = header
    return headers


def header_sizes(config: StudyConfig, headers: dict[str, ImageHeader]) -> dict[str, tuple]:
    """(height, width) of each image as the study will prepare it, from its header."""
    crop = config.images.crop
    return {
        name: (crop, crop) if crop is not None else (header.height, header.width)
        for name, header in headers.items()
    }


def check_losses(config: StudyConfig, sizes: dict[str, tuple[int, int]]) -> None:
    """Each INR codec's losses can train on each image here: a term's size limit (as the codec's
    convention applies it) or missing pretrained weights stop the study, naming the config."""
    problems = {}
    for i, entry in enumerate(config.codecs):
        for spec in config.losses_for(entry):
            convention = {"convention": entry.convention} if entry.convention else {}
            codec = create_codec(entry.name, loss=spec, **convention)
            for name, (height, width) in sorted(sizes.items(), key=lambda kv: min(kv[1])):
                for problem in codec.image_problems(height, width):
                    where = f"codecs.{i} ({entry.name}) loss {spec!r}"
                    problems.setdefault((where, problem), f"{where} on {name} ({width}x{height})")
    if problems:
        lines = [f"{where}: {problem}" for (_, problem), where in problems.items()]
        more = f"; and {len(lines) - 10} more" if len(lines) > 10 else ""
        raise StudyConfigError(f"{config.source}: " + "; ".join(lines[:10]) + more)


def _records(config: StudyConfig) -> list[ImageRecord]:
    subset = config.images.subset
    return select(resolve_dataset(config.images.dataset, subset=subset), subset)


@contextmanager
def _naming_the_config(config: StudyConfig) -> Iterator[None]:
    """Dataset errors (dataset, subset, crop) name the config file and its ``images`` section."""
    try:
        yield
    except DatasetError as error:
        raise DatasetError(f"{config.source}: images: {error}") from None


def grid_trials(config: StudyConfig, image_names: list[str]) -> list[TrialSpec]:
    """Every codec × rate point × loss × image × seed of a grid study, codec by codec."""
    variant = image_options(config).label()
    trials = []
    for entry in config.codecs:
        losses = config.losses_for(entry) or [None]
        for rate, loss, image, seed in product(
            entry.rate_points(), losses, image_names, config.seeds
        ):
            trials.append(
                TrialSpec(
                    codec=entry.name,
                    image=image,
                    rate=rate,
                    preset=entry.preset,
                    loss=loss,
                    convention=entry.convention,
                    seed=seed if entry.fitted else 0,
                    image_variant=variant,
                )
            )
    # Classical codecs are deterministic: several seeds would repeat the same trial.
    return list(dict.fromkeys(trials))

"""From a validated config to the study's work: its images and its trials."""

from itertools import product

import numpy as np

from study.config import StudyConfig
from study.data.datasets import ImageOptions, load_image, resolve_dataset, select
from study.engine.trial import TrialSpec


def image_options(config: StudyConfig) -> ImageOptions:
    images = config.images
    return ImageOptions(images.crop, images.crop_anchor, images.drop_alpha)


def load_images(config: StudyConfig) -> dict[str, np.ndarray]:
    """The study's images, decoded and cropped: bad files fail here, before any trial starts."""
    subset = config.images.subset
    records = select(resolve_dataset(config.images.dataset, subset=subset), subset)
    options = image_options(config)
    return {record.name: load_image(record, options) for record in records}


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

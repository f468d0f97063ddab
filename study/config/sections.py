"""The study config's plain sections: the images, what a trial reserves, where runs go."""

from pydantic import Field, field_validator

from study.config.common import StrictModel, not_empty
from study.data.datasets import ANCHORS


class Images(StrictModel):
    dataset: str = "kodak"
    # The first N images, or their names; None = all.
    subset: int | list[str] | None = None
    crop: int | None = Field(default=None, ge=16)
    crop_anchor: str = "center"
    drop_alpha: bool = False

    @field_validator("subset", mode="before")
    @classmethod
    def _count_or_names(cls, subset: object) -> object:
        # Checked here: pydantic would report a bad value once for each reading of the union.
        if subset is None:
            return subset
        if isinstance(subset, int) and not isinstance(subset, bool):
            if subset < 1:
                raise ValueError(f"expected a count >= 1 (the first N images), got {subset}")
            return subset
        if not isinstance(subset, list) or not all(isinstance(n, str) for n in subset):
            raise ValueError(
                "expected a count (the first N images) or a list of image names "
                "(quote names that YAML would read as numbers)"
            )
        not_empty(subset)
        repeated = sorted({name for name in subset if subset.count(name) > 1})
        if repeated:
            raise ValueError(f"images named more than once: {', '.join(repeated)}")
        return subset

    @field_validator("crop_anchor")
    @classmethod
    def _known_anchor(cls, anchor: str) -> str:
        if anchor not in ANCHORS:
            raise ValueError(f"unknown anchor {anchor!r}; valid: {', '.join(ANCHORS)}")
        return anchor


class Resources(StrictModel):
    """What one trial reserves on a Ray node; fractional GPUs share a card between trials."""

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    # Ray custom resources, e.g. {"a100": 1} to place trials on the nodes that offer them.
    custom: dict[str, float] = Field(default_factory=dict)
    # Grid trials of one codec and preset that one Ray trial fits together as a batch (one set of
    # kernels for B fits: what keeps a GPU busy); the resources above are the batch's.
    fit_batch: int = Field(default=1, ge=1)

    @field_validator("custom")
    @classmethod
    def _positive_amounts(cls, custom: dict[str, float]) -> dict[str, float]:
        bad = {name: amount for name, amount in custom.items() if not amount > 0}
        if bad:
            raise ValueError(f"custom resource amounts must be > 0, got {bad}")
        return custom


class Tracking(StrictModel):
    # None = a SQLite file and an artifact folder inside the study folder, no server needed.
    uri: str | None = None
    experiment: str | None = None

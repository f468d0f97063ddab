"""The study config's ``search`` section: loss weights tuned with Optuna."""

from typing import Literal

from pydantic import Field, field_validator, model_validator

from losses import get_family
from study.config.common import StrictModel
from study.results.table import searchable_metrics


class Search(StrictModel):
    """Loss-weight tuning with Optuna, per codec × loss family.

    ``match``: per target bitrate, each sampled α is compared at matched rate — on every image the
    codec's rate setting is searched until the file lands within ``tolerance`` of the target (at
    most ``fit_budget`` fits) — so α is judged on quality alone. ``pareto``: α and the rate
    setting are sampled together and the (bpp, metric) Pareto front is kept.
    """

    mode: Literal["match", "pareto"] = "match"
    # Targets of ``match``; ``pareto`` takes none.
    targets_bpp: list[float] = Field(default_factory=list)
    # A searchable metric of the table (study.results.table), or "auto".
    metric: str = "auto"
    tolerance: float = Field(default=0.05, gt=0, lt=1)
    # Samples per codec × loss family (× target): α values (match), (α, rate) pairs (pareto).
    trials: int = Field(default=20, ge=1)
    # Fits per image to match one target at one α.
    fit_budget: int = Field(default=8, ge=1)
    # Samples of one task in flight at once: more fill a cluster, fewer let Optuna learn more from
    # each result.
    concurrent_samples: int = Field(default=2, ge=1)
    # None: each loss family's declared α range.
    alpha: tuple[float, float] | None = None
    # A fixed grid of α per loss family (match mode), instead of ``trials`` sampled ones: every
    # value is measured, so quality can be drawn against α and compared value by value.
    alphas: dict[str, list[float]] = Field(default_factory=dict)
    seed: int = 0
    # Match mode: where an image's fits lie on both sides of the target and none lands within
    # the tolerance (its file size jumps across the target), the match goes on with the next
    # seeds, up to this many more, aimed by the fits so far; the closest fit of any seed counts.
    jump_seeds: int = Field(default=0, ge=0, le=8)

    @model_validator(mode="after")
    def _targets_fit_the_mode(self) -> "Search":
        if self.mode == "match" and not self.targets_bpp:
            raise ValueError("targets_bpp: match mode needs at least one target bitrate")
        if self.mode == "pareto" and self.targets_bpp:
            raise ValueError("targets_bpp: pareto mode searches the whole rate range; drop them")
        if self.mode == "pareto" and self.jump_seeds:
            raise ValueError("jump_seeds: further seeds are for matches (match mode)")
        return self

    @field_validator("metric")
    @classmethod
    def _searchable(cls, metric: str) -> str:
        valid = ["auto", *searchable_metrics()]
        if metric not in valid:
            raise ValueError(f"unknown search metric {metric!r}; valid: {', '.join(valid)}")
        return metric

    @field_validator("targets_bpp")
    @classmethod
    def _positive_targets(cls, targets: list[float]) -> list[float]:
        if not all(t > 0 for t in targets):
            raise ValueError(f"target bitrates must be > 0, got {targets}")
        return targets

    @field_validator("alphas")
    @classmethod
    def _grid_in_range(cls, grids: dict[str, list[float]]) -> dict[str, list[float]]:
        for name, values in grids.items():
            family = get_family(name)
            if family is None or not family.takes_alpha:
                raise ValueError(f"{name}: not a loss family with an α")
            low, high = family.alpha_range
            if not values or len(set(values)) != len(values):
                raise ValueError(f"{name}: give distinct α values")
            if not all(low <= v <= high for v in values):
                raise ValueError(f"{name}: α values must lie in [{low:g}, {high:g}], got {values}")
        return grids

    @field_validator("alpha")
    @classmethod
    def _ordered_range(cls, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
        # Each searched family's own α range bounds it too (``StudyConfig``'s check).
        if bounds is not None and not bounds[0] < bounds[1]:
            raise ValueError(f"expected [low, high] with low < high, got {list(bounds)}")
        return bounds

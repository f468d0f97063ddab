"""What every section of a study config shares: strict models, checked loss specs, plugins."""

import importlib
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from losses import LossSpecError, parse_loss_spec


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_loss(spec: str) -> str:
    try:
        parse_loss_spec(spec)
    except LossSpecError as error:
        raise ValueError(str(error)) from None
    return spec


LossSpec = Annotated[str, AfterValidator(_check_loss)]


def not_empty(values: list) -> list:
    if not values:
        raise ValueError(
            "empty list: give at least one value, or leave the key out for its default"
        )
    return values


# A list that, given at all, names something: an empty one would silently run nothing.
NonEmpty = AfterValidator(not_empty)
# What torch.manual_seed and NumPy both take.
Seed = Annotated[int, Field(ge=0, lt=2**32)]


def import_plugins(modules: list[str]) -> None:
    """Import (run) modules whose registrations add codecs, loss families or metrics."""
    for module in modules:
        importlib.import_module(module)

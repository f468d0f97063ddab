"""One entry of a study's codec list: a registered codec, its preset and its rate points."""

from typing import Annotated

from pydantic import field_validator, model_validator

from inr_models import available_codecs, get_codec_class
from inr_models.base import RateValue
from losses import CONVENTIONS
from study.config.common import LossSpec, NonEmpty, StrictModel


def _rate_keys() -> dict[str, str]:
    """Every registered codec's rate-list key in a config -> the codec declaring it."""
    return {get_codec_class(n).rate_axis.config_key: n for n in available_codecs()}


class CodecEntry(StrictModel):
    """A codec and its rate points, under the key its rate axis declares (``lmbdas`` for λ, ...)."""

    name: str
    # None: the codec's first preset.
    preset: str | None = None
    # Grid values of the codec's rate axis; in a search, the candidates of a discrete axis.
    rates: list[RateValue] | None = None
    # The range a search samples on a numeric axis (default: the axis's own).
    search_range: tuple[float, float] | None = None
    # Overrides the study's loss list for this codec (INR codecs only).
    losses: Annotated[list[LossSpec], NonEmpty] | None = None
    # Loss scaling convention; None = the codec's own (what the paper's code ran).
    convention: str | None = None

    @field_validator("convention")
    @classmethod
    def _known_convention(cls, convention: str | None) -> str | None:
        if convention is not None and convention not in CONVENTIONS:
            raise ValueError(
                f"unknown convention {convention!r}; valid: {', '.join(sorted(CONVENTIONS))}"
            )
        return convention

    @model_validator(mode="before")
    @classmethod
    def _rates_under_the_axis_key(cls, data):
        if not isinstance(data, dict):
            return data
        rate_keys = _rate_keys()
        if data.get("name") not in available_codecs():
            # The name's own validator reports it; its rate list is no second problem.
            return {key: value for key, value in data.items() if key not in rate_keys}
        axis = get_codec_class(data["name"]).rate_axis
        data = dict(data)
        for key in rate_keys:
            if key != axis.config_key and key in data:
                raise ValueError(
                    f"{key} does not apply to {data['name']} (it takes {axis.config_key})"
                )
        if axis.config_key in data:
            data["rates"] = data.pop(axis.config_key)
        return data

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in available_codecs():
            raise ValueError(f"unknown codec {name!r}; valid: {', '.join(available_codecs())}")
        return name

    @model_validator(mode="after")
    def _settings_fit_the_codec(self) -> "CodecEntry":
        codec = self.codec_class
        axis = codec.rate_axis
        if self.rates == []:
            raise ValueError(f"{axis.config_key}: empty list: give at least one {axis.label}")
        checked = []
        for value in self.rates or ():
            try:
                checked.append(axis.check(value))
            except ValueError as error:
                raise ValueError(f"{axis.config_key}: {error}") from None
        if self.rates is not None:
            object.__setattr__(self, "rates", checked)
        if self.search_range is not None:
            low, high = self.search_range
            if axis.choices is not None or not low < high:
                raise ValueError(
                    f"search_range: expected [low, high] of {axis.label} with low < high"
                )
            for bound in self.search_range:
                axis.check(axis.kind(bound))
        if not self.fitted:
            if self.losses or self.convention or self.preset:
                raise ValueError(f"{self.name} is a classical codec: it takes no losses or preset")
            return self
        presets = codec.presets()
        if self.preset is None:
            object.__setattr__(self, "preset", presets[0])
        if self.preset not in presets:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(presets)}")
        return self

    @property
    def codec_class(self):
        return get_codec_class(self.name)

    @property
    def fitted(self) -> bool:
        """An INR codec (fits a network, takes a loss and a preset), not a classical one."""
        return self.codec_class.fits_network

    @property
    def rate_field(self) -> str:
        return self.codec_class.rate_axis.config_key

    def rate_points(self) -> list:
        """The values of the codec's rate axis in a grid study."""
        return list(self.rates or ())

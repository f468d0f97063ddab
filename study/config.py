"""Study configuration: a YAML file validated into typed objects before anything starts.

Errors name the offending field (``codecs.1.lmbdas: ...``) and the file, so a typo costs seconds,
not a cluster allocation.
"""

import importlib
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from inr_models import available_codecs, get_codec_class
from inr_models.base import RateValue
from losses import CONVENTIONS, LossSpecError, available_families, parse_loss_spec
from study.data.datasets import ANCHORS
from study.errors import InputError
from study.results.table import get_metric, searchable_metrics


class StudyConfigError(InputError):
    """An invalid study configuration; the message names the file and the fields."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_loss(spec: str) -> str:
    try:
        parse_loss_spec(spec)
    except LossSpecError as error:
        raise ValueError(str(error)) from None
    return spec


LossSpec = Annotated[str, AfterValidator(_check_loss)]


class Images(_Strict):
    dataset: str = "kodak"
    # The first N images, or their names; None = all.
    subset: int | list[str] | None = None
    crop: int | None = Field(default=None, ge=16)
    crop_anchor: str = "center"
    drop_alpha: bool = False

    @field_validator("crop_anchor")
    @classmethod
    def _known_anchor(cls, anchor: str) -> str:
        if anchor not in ANCHORS:
            raise ValueError(f"unknown anchor {anchor!r}; valid: {', '.join(ANCHORS)}")
        return anchor


def import_plugins(modules: list[str]) -> None:
    """Import (run) modules whose registrations add codecs, loss families or metrics."""
    for module in modules:
        importlib.import_module(module)


def _rate_keys() -> dict[str, str]:
    """Every registered codec's rate-list key in a config -> the codec declaring it."""
    return {get_codec_class(n).rate_axis.config_key: n for n in available_codecs()}


class CodecEntry(_Strict):
    """A codec and its rate points, under the key its rate axis declares (``lmbdas`` for λ, ...)."""

    name: str
    # None: the codec's first preset.
    preset: str | None = None
    # Grid values of the codec's rate axis; in a search, the candidates of a discrete axis.
    rates: list[RateValue] | None = None
    # The range a search samples on a numeric axis (default: the axis's own).
    search_range: tuple[float, float] | None = None
    # Overrides the study's loss list for this codec (INR codecs only).
    losses: list[LossSpec] | None = None
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
        if not isinstance(data, dict) or data.get("name") not in available_codecs():
            return data  # the name's own validator reports it
        axis = get_codec_class(data["name"]).rate_axis
        data = dict(data)
        for key in _rate_keys():
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


class Resources(_Strict):
    """What one trial reserves on a Ray node; fractional GPUs share a card between trials."""

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)


class Tracking(_Strict):
    # None = a SQLite file and an artifact folder inside the study folder, no server needed.
    uri: str | None = None
    experiment: str | None = None


class Search(_Strict):
    """Optuna search of each codec's rate setting and the loss family's α per codec × loss family
    × target bitrate."""

    targets_bpp: list[float] = Field(min_length=1)
    # A searchable metric of the table (study.results.table), or "auto".
    metric: str = "auto"
    tolerance: float = Field(default=0.05, gt=0, lt=1)
    trials: int = Field(default=20, ge=1)
    # None: each loss family's declared α range.
    alpha: tuple[float, float] | None = None
    seed: int = 0

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

    @field_validator("alpha")
    @classmethod
    def _ordered_range(cls, bounds: tuple[float, float] | None) -> tuple[float, float] | None:
        if bounds is not None and not 0 <= bounds[0] < bounds[1] <= 1:
            raise ValueError(
                f"expected [low, high] within [0, 1] with low < high, got {list(bounds)}"
            )
        return bounds


class StudyConfig(_Strict):
    # Modules imported first (and in every trial) so their registered codecs and losses exist.
    plugins: list[str] = []
    name: str
    # The study folder is storage/name; relative paths are taken from the working directory.
    storage: Path = Path("results/studies")
    images: Images = Images()
    codecs: list[CodecEntry] = Field(min_length=1)
    losses: list[LossSpec] = ["mse"]
    seeds: list[int] = [0]
    resources: Resources = Resources()
    # Trials running at once; None = as many as the resources allow.
    max_concurrent: int | None = Field(default=None, ge=1)
    # Extra attempts after a trial raises or diverges.
    retries: int = Field(default=1, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    lpips: bool = True
    tracking: Tracking = Tracking()
    search: Search | None = None

    @field_validator("plugins")
    @classmethod
    def _importable(cls, plugins: list[str]) -> list[str]:
        try:
            import_plugins(plugins)
        except ImportError as error:
            raise ValueError(f"cannot import plugin: {error}") from None
        return plugins

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ValueError("use letters, digits, '_', '.' and '-' (it names a folder)")
        return name

    @model_validator(mode="after")
    def _consistent(self) -> "StudyConfig":
        if self.device == "cuda" and self.resources.gpus == 0:
            raise ValueError("device cuda needs resources.gpus > 0 (Ray hides GPUs otherwise)")
        if self.search is None:
            for i, entry in enumerate(self.codecs):
                if not entry.rate_points():
                    raise ValueError(f"codecs.{i}: a grid study needs {entry.rate_field}")
            return self
        for i, entry in enumerate(self.codecs):
            axis = entry.codec_class.rate_axis
            if not entry.fitted:
                raise ValueError(f"codecs.{i}: the search tunes INR codecs; drop {entry.name}")
            if entry.rates is not None and axis.choices is None:
                raise ValueError(
                    f"codecs.{i}.{axis.config_key}: {axis.label} is searched; "
                    f"give codecs.{i}.search_range instead"
                )
            if axis.choices is None and (entry.search_range or axis.search_range) is None:
                raise ValueError(f"codecs.{i}: give search_range (the {axis.label} to search)")
        for spec in self.losses:
            if parse_loss_spec(spec).family is None:
                raise ValueError(
                    f"losses: a search takes loss families ({', '.join(available_families())}), "
                    f"got {spec!r}"
                )
        crop, metric = self.images.crop, self.search.metric
        min_side = None if metric == "auto" else get_metric(metric).min_side
        if min_side and crop is not None and crop < min_side:
            raise ValueError(f"search.metric {metric} needs images.crop >= {min_side}, got {crop}")
        return self

    @property
    def folder(self) -> Path:
        return self.storage / self.name

    def losses_for(self, entry: CodecEntry) -> list[str]:
        return (entry.losses or self.losses) if entry.fitted else []


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "\n".join(lines)


def parse_config(data: object, source: str = "<config>") -> StudyConfig:
    if not isinstance(data, dict):
        raise StudyConfigError(f"{source}: expected a YAML mapping at the top level")
    try:
        return StudyConfig.model_validate(data)
    except ValidationError as error:
        raise StudyConfigError(f"{source}: invalid study config\n{_describe(error)}") from None


def load_config(path: Path, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a study YAML; ``overrides`` (top-level keys) replace the file's values."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as error:
        raise StudyConfigError(f"{path}: cannot read ({error.strerror})") from None
    except yaml.YAMLError as error:
        raise StudyConfigError(f"{path}: not valid YAML ({error})") from None
    if isinstance(data, dict) and overrides:
        data = {**data, **overrides}
    return parse_config(data, str(path))


def dump_config(config: StudyConfig) -> str:
    data = config.model_dump(mode="json", exclude_none=True)
    for entry, dumped in zip(config.codecs, data["codecs"], strict=True):
        if "rates" in dumped:  # under the key the codec's rate axis declares, as users write it
            dumped[entry.rate_field] = dumped.pop("rates")
    return yaml.safe_dump(data, sort_keys=False)

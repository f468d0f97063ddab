"""Study configuration: a YAML file validated into typed objects before anything starts.

Errors name the offending field (``codecs.1.lmbdas: ...``) and the file, so a typo costs seconds,
not a cluster allocation.
"""

import importlib
import math
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
from inr_models.fitted import FittedCodec
from inr_models.nif.presets import WIDTHS as NIF_WIDTHS
from losses import LossSpecError, parse_loss_spec
from losses.spec import PAPER_LOSSES
from study.datasets import ANCHORS

# The smallest short side pytorch-msssim's MS-SSIM accepts with its 11-px window.
MS_SSIM_MIN_SIDE = 161
SEARCH_METRICS = ("auto", "lpips", "ms_ssim_db", "psnr")


class StudyConfigError(ValueError):
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


# A codec's rate parameter -> the config field listing its grid values.
RATE_FIELDS = {"lmbda": "lmbdas", "configuration": "configs", "quality": "qualities"}


def import_plugins(modules: list[str]) -> None:
    """Import modules whose ``@register_codec`` / ``@register_component`` add codecs or losses."""
    for module in modules:
        importlib.import_module(module)


class CodecEntry(_Strict):
    """A codec and its rate points: λ (COOL-CHIC), widths (NIF) or quality (classical)."""

    name: str
    preset: str = "paper"
    lmbdas: list[float] | None = None
    configs: list[str] | None = None
    qualities: list[int] | None = None
    # Overrides the study's loss list for this codec (INR codecs only).
    losses: list[LossSpec] | None = None
    # Loss scaling convention; None = the codec's own (what the paper's code ran).
    convention: Literal["coolchic", "nif", "plain"] | None = None

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        if name not in available_codecs():
            raise ValueError(f"unknown codec {name!r}; valid: {', '.join(available_codecs())}")
        return name

    @field_validator("configs", mode="before")
    @classmethod
    def _quoted_configs(cls, configs):
        # YAML reads 0_31 as the integer 31 and 280 as a number: names must be quoted strings.
        if isinstance(configs, list) and any(not isinstance(c, str) for c in configs):
            raise ValueError(
                f"NIF config names are strings; quote them in YAML, e.g. ['0_31', '280'] "
                f"(got {configs})"
            )
        return configs

    @field_validator("lmbdas")
    @classmethod
    def _positive(cls, lmbdas: list[float] | None) -> list[float] | None:
        if lmbdas is not None and not all(math.isfinite(x) and x > 0 for x in lmbdas):
            raise ValueError(f"every λ must be finite and > 0, got {lmbdas}")
        return lmbdas

    @model_validator(mode="after")
    def _settings_fit_the_codec(self) -> "CodecEntry":
        codec = get_codec_class(self.name)
        allowed = RATE_FIELDS[codec.rate_parameter]
        for field in RATE_FIELDS.values():
            if field != allowed and getattr(self, field) is not None:
                raise ValueError(f"{field} does not apply to {self.name} (it takes {allowed})")
        if not self.fitted:
            if self.losses or self.convention:
                raise ValueError(f"{self.name} is a classical codec: it takes no losses")
            low, high = codec.quality_range
            bad = [q for q in self.qualities or () if not low <= q <= high]
            if bad:
                raise ValueError(f"qualities {bad} outside {self.name}'s range [{low}, {high}]")
            return self
        presets = codec.available_presets()
        if self.preset not in presets:
            raise ValueError(f"unknown preset {self.preset!r}; valid: {', '.join(presets)}")
        unknown = [c for c in self.configs or () if c not in NIF_WIDTHS]
        if unknown:
            raise ValueError(f"unknown NIF configs {unknown}; valid: {', '.join(NIF_WIDTHS)}")
        return self

    @property
    def fitted(self) -> bool:
        """An INR codec (fits a network, takes a loss and a preset), not a classical one."""
        return issubclass(get_codec_class(self.name), FittedCodec)

    @property
    def rate_field(self) -> str:
        return RATE_FIELDS[get_codec_class(self.name).rate_parameter]

    def rate_points(self) -> list[dict]:
        """The codec's rate settings of a grid study, one dict per point."""
        parameter = get_codec_class(self.name).rate_parameter
        return [{parameter: value} for value in getattr(self, self.rate_field) or ()]


class Resources(_Strict):
    """What one trial reserves on a Ray node; fractional GPUs share a card between trials."""

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)


class Tracking(_Strict):
    # None = a SQLite file and an artifact folder inside the study folder, no server needed.
    uri: str | None = None
    experiment: str | None = None


class Search(_Strict):
    """Optuna search of λ (NIF: its width) and α per codec × loss family × target bitrate."""

    targets_bpp: list[float] = Field(min_length=1)
    metric: Literal["auto", "lpips", "ms_ssim_db", "psnr"] = "auto"
    tolerance: float = Field(default=0.05, gt=0, lt=1)
    trials: int = Field(default=20, ge=1)
    alpha: tuple[float, float] = (0.0, 1.0)
    lmbda: tuple[float, float] = (1e-4, 2e-2)
    seed: int = 0

    @field_validator("targets_bpp")
    @classmethod
    def _positive_targets(cls, targets: list[float]) -> list[float]:
        if not all(t > 0 for t in targets):
            raise ValueError(f"target bitrates must be > 0, got {targets}")
        return targets

    @field_validator("alpha", "lmbda")
    @classmethod
    def _ordered_range(cls, bounds: tuple[float, float], info) -> tuple[float, float]:
        low, high = bounds
        if not low < high:
            raise ValueError(f"expected [low, high] with low < high, got {list(bounds)}")
        if info.field_name == "alpha" and not (low >= 0 and high <= 1):
            raise ValueError(f"α must lie in [0, 1], got {list(bounds)}")
        if info.field_name == "lmbda" and low <= 0:
            raise ValueError(f"λ must be > 0, got {list(bounds)}")
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
            if not entry.fitted:
                raise ValueError(f"codecs.{i}: the search tunes INR codecs; drop {entry.name}")
            if entry.lmbdas is not None:
                raise ValueError(f"codecs.{i}.lmbdas: λ is searched; give search.lmbda instead")
        for spec in self.losses:
            family = spec.split("(")[0].strip().lower()
            if family not in PAPER_LOSSES:
                raise ValueError(
                    f"losses: a search takes loss families ({', '.join(PAPER_LOSSES)}), "
                    f"got {spec!r}"
                )
        crop = self.images.crop
        if self.search.metric == "ms_ssim_db" and crop is not None and crop < MS_SSIM_MIN_SIDE:
            raise ValueError(
                f"search.metric ms_ssim_db needs images.crop >= {MS_SSIM_MIN_SIDE}, got {crop}"
            )
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
    return yaml.safe_dump(config.model_dump(mode="json", exclude_none=True), sort_keys=False)

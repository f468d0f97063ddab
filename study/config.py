"""Study configuration: a YAML file validated into typed objects before anything starts.

Errors name the offending field (``codecs.1.lmbdas: ...``) and the file, so a typo costs seconds,
not a cluster allocation.
"""

import importlib
import re
import stat
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from inr_models import available_codecs, get_codec_class
from inr_models.base import RateValue
from losses import (
    CONVENTIONS,
    LossSpecError,
    available_families,
    get_family,
    parse_loss_spec,
)
from study.data.datasets import ANCHORS
from study.data.imageio import why_unreadable
from study.errors import InputError
from study.results.table import get_metric, searchable_metrics

MAX_CONFIG_BYTES = 4 << 20
# Top-level keys renamed since studies were first published, {earlier name: name}: configs and
# published study.yaml files written before still read.
RENAMED_KEYS = {"lpips": "optional_metrics"}


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


def _not_empty(values: list) -> list:
    if not values:
        raise ValueError(
            "empty list: give at least one value, or leave the key out for its default"
        )
    return values


# A list that, given at all, names something: an empty one would silently run nothing.
NonEmpty = AfterValidator(_not_empty)
# What torch.manual_seed and NumPy both take.
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class Images(_Strict):
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
        _not_empty(subset)
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


def import_plugins(modules: list[str]) -> None:
    """Import (run) modules whose registrations add codecs, loss families or metrics."""
    for module in modules:
        importlib.import_module(module)


def _one_name_each(specs: list, searched: bool, where: str) -> list:
    """``specs`` under their canonical names (see ``StudyConfig._one_name_per_loss``); two specs
    naming one loss are refused."""
    canonical, seen = [], {}
    for spec in specs:
        try:
            loss = parse_loss_spec(spec)
        except (LossSpecError, TypeError, AttributeError):
            canonical.append(spec)  # the field check names the problem
            continue
        name = loss.family if searched and loss.family else loss.name
        if name in seen:
            raise ValueError(f"{where}: {seen[name]!r} and {spec!r} name the same loss ({name})")
        seen[name] = spec
        canonical.append(name)
    return canonical


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


class Resources(_Strict):
    """What one trial reserves on a Ray node; fractional GPUs share a card between trials."""

    cpus: float = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    # Ray custom resources, e.g. {"a100": 1} to place trials on the nodes that offer them.
    custom: dict[str, float] = {}
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


class Tracking(_Strict):
    # None = a SQLite file and an artifact folder inside the study folder, no server needed.
    uri: str | None = None
    experiment: str | None = None


class Search(_Strict):
    """Loss-weight tuning with Optuna, per codec × loss family.

    ``match``: per target bitrate, each sampled α is compared at matched rate — on every image the
    codec's rate setting is searched until the file lands within ``tolerance`` of the target (at
    most ``fit_budget`` fits) — so α is judged on quality alone. ``pareto``: α and the rate
    setting are sampled together and the (bpp, metric) Pareto front is kept.
    """

    mode: Literal["match", "pareto"] = "match"
    # Targets of ``match``; ``pareto`` takes none.
    targets_bpp: list[float] = []
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
    alphas: dict[str, list[float]] = {}
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


class StudyConfig(_Strict):
    # Modules imported first (and in every trial) so their registered codecs and losses exist.
    plugins: list[str] = []
    name: str
    # The study folder is storage/name; relative paths are taken from the working directory.
    storage: Path = Path("results/studies")
    images: Images = Images()
    codecs: list[CodecEntry] = Field(min_length=1)
    losses: Annotated[list[LossSpec], NonEmpty] = ["mse"]
    seeds: Annotated[list[Seed], NonEmpty] = [0]
    resources: Resources = Resources()
    # Trials running at once; None = as many as the resources allow.
    max_concurrent: int | None = Field(default=None, ge=1)
    # Extra attempts after a trial raises or diverges.
    retries: int = Field(default=1, ge=0)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    # The metric table's optional metrics (those needing downloaded network weights) are computed
    # where their weights are present; false skips them.
    optional_metrics: bool = True
    # Opt-in metrics of the metric table this study also computes (``wd``), for every trial.
    extra_metrics: list[str] = []
    tracking: Tracking = Tracking()
    search: Search | None = None
    # The file the config came from, for messages about it found after validation.
    _source: str = PrivateAttr(default="<config>")

    @model_validator(mode="before")
    @classmethod
    def _one_name_per_loss(cls, data: object) -> object:
        """Each loss under one name, so that one fit has one trial key whatever spelling the
        config used: a grid's under its full name (``lc_ssim`` and ``LC_SSIM(0.010)`` are
        ``lc_ssim(0.01)``), a search's under its family (the α is what the search tunes). Specs
        that do not parse are left for the field checks to name."""
        if not isinstance(data, dict):
            return data
        plugins = data.get("plugins") or []
        if not isinstance(plugins, list) or not all(isinstance(m, str) for m in plugins):
            return data
        try:
            import_plugins(plugins)  # their loss families parse only once they are imported
        except ImportError:
            return data  # the plugins field says why
        searched = data.get("search") is not None
        data = {**data}
        if isinstance(data.get("losses"), list):
            data["losses"] = _one_name_each(data["losses"], searched, "losses")
        if isinstance(data.get("codecs"), list):
            data["codecs"] = [
                {**entry, "losses": _one_name_each(entry["losses"], searched, f"codecs.{i}.losses")}
                if isinstance(entry, dict) and isinstance(entry.get("losses"), list)
                else entry
                for i, entry in enumerate(data["codecs"])
            ]
        return data

    @field_validator("plugins")
    @classmethod
    def _importable(cls, plugins: list[str]) -> list[str]:
        try:
            import_plugins(plugins)
        except ImportError as error:
            raise ValueError(f"cannot import plugin: {error}") from None
        return plugins

    @field_validator("extra_metrics")
    @classmethod
    def _opt_in(cls, keys: list[str]) -> list[str]:
        from study.results.table import checked_opt_ins

        return checked_opt_ins(keys)

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
        self._one_entry_per_curve()
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
        families = {parse_loss_spec(spec).family for spec in self.losses}
        stray = sorted(set(self.search.alphas) - families)
        if stray:
            raise ValueError(f"search.alphas: {', '.join(stray)} is not among the study's losses")
        if self.search.alphas and self.search.mode != "match":
            raise ValueError("search.alphas: an α grid is for match mode")
        bounds = self.search.alpha
        for name in sorted(families - set(self.search.alphas)) if bounds else ():
            family = get_family(name)
            low, high = family.alpha_range
            if family.takes_alpha and not low <= bounds[0] < bounds[1] <= high:
                raise ValueError(
                    f"search.alpha {list(bounds)}: {name}'s α lies in [{low:g}, {high:g}]"
                )
        crop, metric = self.images.crop, self.search.metric
        min_side = None if metric == "auto" else get_metric(metric).min_side
        if min_side and crop is not None and crop < min_side:
            raise ValueError(f"search.metric {metric} needs images.crop >= {min_side}, got {crop}")
        return self

    @property
    def folder(self) -> Path:
        return self.storage / self.name

    @property
    def source(self) -> str:
        return self._source

    def losses_for(self, entry: CodecEntry) -> list[str]:
        return (entry.losses or self.losses) if entry.fitted else []

    def _one_entry_per_curve(self) -> None:
        """A curve (a search's task) is a codec and a loss: two entries with the same one (a
        codec at two presets, say) would have their fits pooled as one."""
        seen = {}
        for i, entry in enumerate(self.codecs):
            for loss in self.losses_for(entry) or [None]:
                earlier = seen.setdefault((entry.name, loss), i)
                if earlier == i:
                    continue
                same_preset = self.codecs[earlier].preset == entry.preset
                advice = (
                    "list all its rate values in one entry"
                    if same_preset
                    else f"study preset {entry.preset or '(default)'} in a study of its own"
                )
                what = entry.name if loss is None else f"{entry.name} with {loss}"
                raise ValueError(
                    f"codecs.{i}: codecs.{earlier} has {what} already, and the study would pool "
                    f"both entries' fits as one {'curve' if self.search is None else 'task'}; "
                    f"{advice}"
                )


def _problems(error: ValidationError) -> list[str]:
    """One ``field: message`` line per problem, e.g. ``codecs.0: lmbdas does not apply ...``."""
    lines = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"])
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}" if where else message)
    return lines


def parse_config(data: object, source: str = "<config>") -> StudyConfig:
    if not isinstance(data, dict):
        raise StudyConfigError(f"{source}: expected a YAML mapping at the top level")
    data = _current_names(data, source)
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as error:
        problems = _problems(error)
        detail = (
            f": {problems[0]}"
            if len(problems) == 1
            else f" ({len(problems)} problems)\n" + "\n".join(f"  {line}" for line in problems)
        )
        raise StudyConfigError(f"{source}: invalid study config{detail}") from None
    config._source = source
    return config


def _current_names(data: dict, source: str) -> dict:
    """``data`` with each renamed key under its current name; both names given is an error."""
    for earlier, name in RENAMED_KEYS.items():
        if earlier in data:
            if name in data:
                raise StudyConfigError(
                    f"{source}: {earlier} is the earlier name of {name}: give one"
                )
            data = {**{k: v for k, v in data.items() if k != earlier}, name: data[earlier]}
    return data


def _read_text(path: Path) -> str:
    try:
        if stat.S_ISDIR(path.stat().st_mode):
            raise StudyConfigError(f"{path}: is a directory, not a study YAML file")
        with path.open("rb") as file:  # bounded: the path may be a pipe or a device
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as error:
        raise StudyConfigError(f"{path}: {why_unreadable(path, error)}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise StudyConfigError(
            f"{path}: larger than {MAX_CONFIG_BYTES >> 20} MiB; a study config is a few kB"
        )
    if b"\0" in data:
        raise StudyConfigError(f"{path}: has NUL bytes (a binary file or UTF-16?), not UTF-8 YAML")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise StudyConfigError(
            f"{path}: not UTF-8 text (byte 0x{data[error.start]:02x} at offset {error.start}); "
            "save it as UTF-8"
        ) from None


def load_config(path: Path, overrides: dict | None = None) -> StudyConfig:
    """Read and validate a study YAML; ``overrides`` (top-level keys) replace the file's values."""
    path = Path(path)
    try:
        data = yaml.safe_load(_read_text(path))
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise StudyConfigError(f"{path}: not valid YAML ({error.problem}{where})") from None
    except yaml.YAMLError as error:
        raise StudyConfigError(f"{path}: not valid YAML ({error})") from None
    except RecursionError:
        raise StudyConfigError(f"{path}: not valid YAML (nested too deeply)") from None
    if isinstance(data, dict) and overrides:
        data = {**_current_names(data, str(path)), **overrides}
    return parse_config(data, str(path))


def dump_config(config: StudyConfig, portable: bool = False) -> str:
    """The validated config as YAML; ``portable`` leaves out where this machine keeps studies
    (for files that travel: packages, published studies)."""
    data = config.model_dump(
        mode="json", exclude_none=True, exclude={"storage"} if portable else None
    )
    for entry, dumped in zip(config.codecs, data["codecs"], strict=True):
        if "rates" in dumped:  # under the key the codec's rate axis declares, as users write it
            dumped[entry.rate_field] = dumped.pop("rates")
    return yaml.safe_dump(data, sort_keys=False)

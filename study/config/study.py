"""The whole study config, with the checks that span its sections."""

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from losses import LossSpecError, available_families, get_family, parse_loss_spec
from study.config.codec_entry import CodecEntry
from study.config.common import LossSpec, NonEmpty, Seed, StrictModel, import_plugins
from study.config.search import Search
from study.config.sections import Images, Resources, Tracking
from study.results.table import get_metric


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


class StudyConfig(StrictModel):
    # Modules imported first (and in every trial) so their registered codecs and losses exist.
    plugins: list[str] = Field(default_factory=list)
    name: str
    # The study folder is storage/name; relative paths are taken from the working directory.
    storage: Path = Path("results/studies")
    images: Images = Images()
    codecs: list[CodecEntry] = Field(min_length=1)
    losses: Annotated[list[LossSpec], NonEmpty] = Field(default_factory=lambda: ["mse"])
    seeds: Annotated[list[Seed], NonEmpty] = Field(default_factory=lambda: [0])
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
    extra_metrics: list[str] = Field(default_factory=list)
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

"""The one metric table: every figure the study reports, with how to read it.

A row says how a metric is computed (for quality metrics), its CompressAI JSON key, whether higher
is better, its label and unit, how images are aggregated, whether it gets a BD-rate column, and how
hard a search penalises missing the target bitrate when optimising it. Evaluation, reports,
baselines, the search and the dashboards (through the page's payload) read this table; a plugin
adds a metric with :func:`register_metric`.
"""

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from inr_models.base import DECODE_SECONDS, ENCODE_SECONDS
from losses.components import MS_SSIM_MIN_SIDE
from losses.wasserstein_balle import MIN_SIDE as WD_MIN_SIDE

# (original, decoded, values computed so far in table order) -> value, or None when missing.
Compute = Callable[[np.ndarray, np.ndarray, dict], float | None]

MEAN_OF_IMAGES = "mean of per-image values"


@dataclass(frozen=True, kw_only=True)
class Metric:
    key: str  # name in trial records, MLflow and CSV columns
    compressai_key: str  # key in CompressAI-format JSON files
    label: str
    unit: str = ""
    higher_is_better: bool = True
    aggregation: str = MEAN_OF_IMAGES
    # How an image's value is computed, where label and unit leave it open (two MS-SSIM dB
    # conventions are in use): in figure axis labels and the R-D files' descriptions.
    definition: str = ""
    # Quality metrics are computed from the image pair; rate and time figures are measured.
    compute: Compute | None = None
    # Skipped when evaluation is asked to (LPIPS without its weights, for instance).
    optional: bool = False
    # Computed only where a study (``extra_metrics``) or a command asks for it by name, for its
    # cost; reports carry it where the records do, so earlier studies' reports stay as they are.
    opt_in: bool = False
    # Why this process cannot compute it (missing weights, ...), or None when it can.
    unavailable: Callable[[], str | None] | None = None
    bd_rate: bool = False  # a column of the BD-rate tables
    # Score lost per unit of |ln(bpp / target)| beyond the tolerance when a search optimises this
    # metric (about 100× a meaningful quality step); None: not searchable.
    search_penalty: float | None = None
    # Preference of ``search.metric: auto`` (lowest first, among the metrics this study can
    # compute); None: never chosen automatically.
    auto_search_rank: int | None = None
    # Smallest short side of an image the metric can be computed on.
    min_side: int | None = None
    # Shown as a y-axis choice in the dashboards.
    plotted: bool = False
    # How far a value may move when the same decoded image is scored again (another thread
    # count, another device), absolute; None: a relative 1e-5, float32's reduction order.
    recheck_tolerance: float | None = None
    # The largest difference at equal rate that a verdict still calls "on par" (the claims'
    # equivalence margin); None: no verdict judges this metric at equal rate.
    equal_rate_margin: float | None = None

    def size_allows(self, short_side: int | None) -> bool:
        """Whether an image with this short side (None: unknown) can have this metric."""
        return self.min_side is None or short_side is None or short_side >= self.min_side

    @property
    def display(self) -> str:
        return self._with_notes(self.unit)

    @property
    def axis_label(self) -> str:
        """``display`` with the definition beside the unit, where there is one: for figure axes."""
        return self._with_notes(" = ".join(x for x in (self.unit, self.definition) if x))

    def definition_sentence(self) -> str:
        """The definition as an R-D file's description states it; empty without one."""
        if not self.definition:
            return ""
        name = " ".join(x for x in (self.label, self.unit) if x)
        return f"{name} ({self.compressai_key}) = {self.definition}, then the {self.aggregation}."

    def _with_notes(self, unit: str) -> str:
        notes = [unit] if unit else []
        if self.compute is not None and not self.higher_is_better:
            notes.append("lower is better")
        return f"{self.label} ({', '.join(notes)})" if notes else self.label

    def oriented(self, value: float) -> float:
        """``value`` with higher always better."""
        return value if self.higher_is_better else -value


_TABLE: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    if metric.key in _TABLE:
        raise ValueError(f"metric {metric.key!r} is already registered")
    _TABLE[metric.key] = metric
    return metric


def metric_table(opted_in: Collection[str] = ()) -> list[Metric]:
    """Every metric of the table but the opt-in ones not named in ``opted_in``."""
    return [m for m in _TABLE.values() if not m.opt_in or m.key in opted_in]


def opt_in_metrics() -> list[str]:
    return [m.key for m in _TABLE.values() if m.opt_in]


def checked_opt_ins(keys: Iterable[str]) -> list[str]:
    """``keys`` without repeats, each an opt-in metric; else ValueError naming the others."""
    keys, known = list(keys), opt_in_metrics()
    unknown = [key for key in keys if key not in known]
    if unknown:
        raise ValueError(
            f"not an opt-in metric: {', '.join(map(str, unknown))}; opt-in metrics: "
            f"{', '.join(known)}"
        )
    return list(dict.fromkeys(keys))


def recorded_metrics(rows: Iterable[Mapping]) -> list[Metric]:
    """The metrics that rows (trial records, points) report: the table's standard ones, and each
    opt-in one that some row carries."""
    keys = {key for row in rows for key in row}
    return metric_table(opted_in=[key for key in opt_in_metrics() if key in keys])


def get_metric(key: str) -> Metric:
    try:
        return _TABLE[key]
    except KeyError:
        raise KeyError(f"unknown metric {key!r}; valid: {', '.join(_TABLE)}") from None


def quality_metrics(opted_in: Collection[str] = ()) -> list[Metric]:
    return [m for m in metric_table(opted_in) if m.compute is not None]


def searchable_metrics() -> list[str]:
    return [m.key for m in _TABLE.values() if m.search_penalty is not None]


def automatic_search_metric(short_side: int | None, optional_available: bool) -> str:
    """The preferred searchable metric this study can compute (``search.metric: auto``)."""
    ranked = sorted(
        (m for m in _TABLE.values() if m.auto_search_rank is not None),
        key=lambda m: m.auto_search_rank,
    )
    for metric in ranked:
        if metric.size_allows(short_side) and (optional_available or not metric.optional):
            return metric.key
    raise ValueError("no searchable metric can be computed on these images")


def _psnr(original, decoded, _done):
    from study.results.metrics import psnr

    return psnr(original, decoded)


def _ssim(original, decoded, _done):
    from study.results.metrics import ssim_rgb

    return ssim_rgb(original, decoded)


def _ms_ssim(original, decoded, _done):
    from study.results.metrics import ms_ssim_rgb

    return ms_ssim_rgb(original, decoded)


def _ms_ssim_db(_original, _decoded, done):
    from study.results.metrics import ms_ssim_db

    return ms_ssim_db(done.get("ms_ssim"))


def _lpips(original, decoded, _done):
    from study.results.metrics import lpips_distance

    return lpips_distance(original, decoded)


def _lpips_unavailable():
    from study.results.metrics import lpips_unavailable

    return lpips_unavailable()


def _wd(original, decoded, _done):
    from study.results.metrics import wd_distance

    return wd_distance(original, decoded)


def _wd_unavailable():
    from losses.wasserstein_balle import unavailable

    return unavailable()


register_metric(Metric(key="bpp", compressai_key="bpp", label="rate", unit="bpp"))
register_metric(
    Metric(
        key="psnr",
        compressai_key="psnr-rgb",
        label="PSNR",
        unit="dB",
        compute=_psnr,
        bd_rate=True,
        search_penalty=100.0,
        auto_search_rank=2,
        plotted=True,
        # Summed in float64 from 8-bit pixels: agrees to 1e-4 dB. (MS-SSIM in dB magnifies
        # float32 steps near 1, 2.6e-4 dB at 0.999, so it keeps the relative rule.)
        recheck_tolerance=1e-4,
        equal_rate_margin=0.2,
    )
)
register_metric(Metric(key="ssim", compressai_key="ssim-rgb", label="SSIM", compute=_ssim))
register_metric(
    Metric(
        key="ms_ssim",
        compressai_key="ms-ssim-rgb",
        label="MS-SSIM",
        compute=_ms_ssim,
        min_side=MS_SSIM_MIN_SIDE,
    )
)
register_metric(
    Metric(
        key="ms_ssim_db",
        # Not "ms-ssim-db…": CompressAI's plotter converts keys containing "ms-ssim" to dB again.
        compressai_key="msssim-db-rgb",
        label="MS-SSIM",
        unit="dB",
        aggregation="mean of per-image dB values (not the dB of the mean MS-SSIM)",
        definition="−10·log₁₀(1 − MS-SSIM) of each image",
        compute=_ms_ssim_db,
        min_side=MS_SSIM_MIN_SIDE,
        bd_rate=True,
        search_penalty=100.0,
        auto_search_rank=1,
        plotted=True,
        equal_rate_margin=0.2,
    )
)
register_metric(
    Metric(
        key="lpips",
        compressai_key="lpips",
        label="LPIPS",
        higher_is_better=False,
        compute=_lpips,
        optional=True,
        unavailable=_lpips_unavailable,
        bd_rate=True,
        search_penalty=10.0,
        auto_search_rank=0,
        plotted=True,
        equal_rate_margin=0.01,
    )
)
register_metric(
    Metric(
        key="wd",
        compressai_key="wasserstein-distortion",
        label="WD",
        higher_is_better=False,
        definition="Ballé et al.'s Wasserstein distortion, VGG-16 features, constant log₂ σ = 3",
        compute=_wd,
        opt_in=True,  # about 1 s per 256-px crop on a CPU core, against LPIPS's 0.05 s
        unavailable=_wd_unavailable,
        min_side=WD_MIN_SIDE,
        bd_rate=True,
        plotted=True,
    )
)
register_metric(
    Metric(
        key=ENCODE_SECONDS,
        compressai_key="encoding_time",
        label="encode time",
        unit="s",
        higher_is_better=False,
    )
)
register_metric(
    Metric(
        key=DECODE_SECONDS,
        compressai_key="decoding_time",
        label="decode time",
        unit="s",
        higher_is_better=False,
    )
)

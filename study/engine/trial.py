"""One trial, as plain Python with no Ray in it: encode an image, write the real file, decode that
file, measure. ``inr-study encode`` and a Ray Tune trial both run :func:`run_trial`, so a trial can
be tested, debugged and profiled alone.
"""

import json
import resource
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from inr_models import create_codec, get_codec_class
from inr_models.base import DECODE_SECONDS, ENCODE_SECONDS, CodecError, RateAxis, RateValue
from inr_models.fitted import FittedCodec
from study.data.imageio import save_png
from study.engine.keys import trial_key
from study.results.evaluation import evaluate
from study.results.rd import json_safe

BITSTREAM_NAME = "bitstream.bin"
DECODED_NAME = "decoded.png"
SUMMARY_NAME = "trial.json"
# The parameter naming which parameter holds a trial's rate setting.
RATE_PARAMETER = "rate_parameter"


@dataclass(frozen=True)
class TrialSpec:
    """Everything that decides a trial's outcome; its key identifies the trial across resumes."""

    codec: str
    image: str
    # The value of the codec's rate axis (λ, width, quality, ...: the codec declares which).
    rate: RateValue
    preset: str | None = None
    loss: str | None = None
    convention: str | None = None
    seed: int = 0
    # Which prepared version of the image ("" = full size, "256px center crops", ...).
    image_variant: str = ""
    # Search bookkeeping: the target this trial serves ("" in a grid study).
    search: str = ""

    @property
    def key(self) -> str:
        return trial_key(asdict(self))

    @property
    def rate_axis(self) -> RateAxis:
        return get_codec_class(self.codec).rate_axis

    def codec_settings(self, device: str) -> dict:
        """Keyword arguments of ``create_codec`` for this trial."""
        settings = {self.rate_axis.name: self.rate}
        if get_codec_class(self.codec).fits_network:
            settings.update(loss=self.loss, preset=self.preset, seed=self.seed, device=device)
            if self.convention:
                settings["convention"] = self.convention
        return settings

    def label(self) -> str:
        """Short human name: codec, loss, rate setting, image."""
        rate = f"{self.rate_axis.name}={self.rate}"
        return " ".join(x for x in (self.codec, self.loss, rate, self.image) if x)

    def params(self) -> dict:
        """The trial's parameters without the unset ones, for tables and MLflow; the rate under
        its axis's name, which ``rate_parameter`` names."""
        params = {k: v for k, v in asdict(self).items() if v not in (None, "") and k != "rate"}
        return {**params, RATE_PARAMETER: self.rate_axis.name, self.rate_axis.name: self.rate}


@dataclass
class TrialOutcome:
    spec: TrialSpec
    # Figures: real and estimated bpp, quality metrics, seconds, MAC/pixel, parameters, memory.
    metrics: dict[str, float | None]
    # Codec settings as the codec reports them (loss name and spec, α, convention, device, ...).
    settings: dict
    files: dict[str, Path] = field(default_factory=dict)

    def summary_text(self) -> str:
        """The trial's ``trial.json``, as every executor writes it."""
        return json.dumps(self.summary(), indent=2) + "\n"

    def summary(self) -> dict:
        return json_safe(
            {
                "trial_key": self.spec.key,
                **self.spec.params(),
                **self.settings,
                **self.metrics,
                "files": {k: p.name for k, p in self.files.items()},
            }
        )


def _reset_peak_rss() -> bool:
    """Start a new peak-RSS window for this process (Linux ≥ 4.0); False where unsupported.

    Study workers run many trials each, so the process-lifetime peak would mix trials."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _peak_memory_mb(device: torch.device | None, window_reset: bool) -> float:
    if device is not None and device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if window_reset:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def run_trial(
    spec: TrialSpec,
    image: np.ndarray,
    out_dir: Path,
    *,
    bitstream: Path | None = None,
    decoded_png: Path | None = None,
    device: str = "cpu",
    with_optional_metrics: bool = True,
    extra_metrics: Collection[str] = (),
    progress: bool = False,
    on_validation: Callable[[dict], None] | None = None,
    on_pace: Callable[[float, int], None] | None = None,
) -> TrialOutcome:
    """Fit/encode ``image``, write the file, decode it from disk and measure.

    The bitstream, decoded PNG and JSON summary go to ``out_dir`` under fixed names, unless
    ``bitstream`` / ``decoded_png`` give other paths. ``extra_metrics``: the opt-in metrics of
    the metric table to measure too. ``on_pace``: see ``FittedCodec.on_pace``.

    Raises ``CodecError`` if an INR decoder's output differs from what its encoder predicted, and
    whatever the codec raises (``DivergedError`` on a NaN loss): the caller records failures.
    """
    job = TrialJob(spec, image, out_dir, bitstream, decoded_png, on_validation)
    outcome = run_trials(
        [job],
        device=device,
        with_optional_metrics=with_optional_metrics,
        extra_metrics=extra_metrics,
        progress=progress,
        on_pace=on_pace,
    )[0]
    if isinstance(outcome, Exception):
        raise outcome
    return outcome


@dataclass
class TrialJob:
    """One trial of a batch: its spec, image and where its files go (see ``run_trial``)."""

    spec: TrialSpec
    image: np.ndarray
    out_dir: Path
    bitstream: Path | None = None
    decoded_png: Path | None = None
    on_validation: Callable[[dict], None] | None = None


def run_trials(
    jobs: list[TrialJob],
    *,
    device: str = "cpu",
    with_optional_metrics: bool = True,
    extra_metrics: Collection[str] = (),
    progress: bool = False,
    on_pace: Callable[[float, int], None] | None = None,
) -> list[TrialOutcome | Exception]:
    """``run_trial`` for B trials of one codec, their fits batched where the codec can
    (``Codec.encode_together``): each trial's outcome, or the exception that failed it. Every
    trial is written, decoded and measured on its own; ``encode_seconds`` is its share of the
    batch's fitting time plus its own packaging, and ``fit_batch`` says how many fits shared it.
    """
    codecs = []
    for job in jobs:
        settings = job.spec.codec_settings(device)
        if get_codec_class(job.spec.codec).fits_network:
            settings.update(progress=progress, on_validation=job.on_validation)
        codecs.append(create_codec(job.spec.codec, **settings))
    kinds = {type(codec) for codec in codecs}
    if len(kinds) != 1:
        raise ValueError(f"run_trials: one codec per batch, got {sorted(k.name for k in kinds)}")
    trial_start = time.perf_counter()
    window_reset = _reset_peak_rss()
    torch_device = codecs[0].device if isinstance(codecs[0], FittedCodec) else None
    for codec in codecs:
        if isinstance(codec, FittedCodec):
            codec.on_pace = on_pace
    if torch_device is not None and torch_device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(torch_device)
    start = time.perf_counter()
    encoded = kinds.pop().encode_together(
        [(c, job.image) for c, job in zip(codecs, jobs, strict=True)]
    )
    shared_seconds = (time.perf_counter() - start) / len(jobs)
    peak_memory_mb = _peak_memory_mb(torch_device, window_reset)
    outcomes: list[TrialOutcome | Exception] = []
    for codec, job, result in zip(codecs, jobs, encoded, strict=True):
        if isinstance(result, Exception):
            outcomes.append(result)
            continue
        figures = {
            ENCODE_SECONDS: shared_seconds
            if len(jobs) == 1
            else result.stats.get(ENCODE_SECONDS, shared_seconds),
            "peak_memory_mb": peak_memory_mb,
        }
        try:
            outcome = _finish_trial(
                job, codec, result, figures, with_optional_metrics, extra_metrics
            )
        except Exception as error:  # recorded by the caller, as a failed fit is
            outcomes.append(error)
            continue
        # Everything this function did: the codec's share of a study trial's wall time.
        outcome.metrics["trial_seconds"] = (time.perf_counter() - trial_start) / len(jobs)
        summary = job.out_dir / SUMMARY_NAME
        summary.write_text(outcome.summary_text())
        outcome.files["summary"] = summary
        outcomes.append(outcome)
    return outcomes


def _finish_trial(
    job: TrialJob,
    codec,
    encoded,
    figures: dict,
    with_optional_metrics: bool,
    extra_metrics: Collection[str],
) -> TrialOutcome:
    """Write ``encoded``'s file, decode that file, check it against the encoder's prediction,
    and measure (``figures``: the encoding's time and memory, as the batch measured them)."""
    spec, image = job.spec, job.image
    job.out_dir.mkdir(parents=True, exist_ok=True)
    bitstream = job.bitstream or job.out_dir / BITSTREAM_NAME
    decoded_png = job.decoded_png or job.out_dir / DECODED_NAME
    for path in (bitstream, decoded_png):
        path.parent.mkdir(parents=True, exist_ok=True)
    bitstream.write_bytes(encoded.data)

    start = time.perf_counter()
    decoded = codec.decode(bitstream.read_bytes())
    decode_seconds = time.perf_counter() - start
    if encoded.reconstruction is not None and not np.array_equal(decoded, encoded.reconstruction):
        raise CodecError(
            f"{spec.codec}: decoding {bitstream} did not give the image its encoder predicted"
        )
    save_png(decoded_png, decoded)

    height, width = image.shape[:2]
    stats = {k: v for k, v in encoded.stats.items() if not isinstance(v, str)}
    metrics = {
        **stats,
        "bpp": encoded.bpp(height, width),
        "bytes": len(encoded.data),
        **codec.rate_parts(encoded.data),
        **evaluate(image, decoded, optional=with_optional_metrics, opted_in=extra_metrics),
        ENCODE_SECONDS: figures[ENCODE_SECONDS],
        DECODE_SECONDS: decode_seconds,
        "peak_memory_mb": figures["peak_memory_mb"],
        "height": height,
        "width": width,
    }
    files = {"bitstream": bitstream, "decoded": decoded_png}
    return TrialOutcome(spec, metrics, codec.settings(), files)

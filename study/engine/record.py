"""A finished trial as a self-describing record: its spec, its image's digest, what the codec
reported, every figure, where it ran and its validations, each kept apart.

Work packages write one per trial (``result.json`` beside its bitstream), published studies keep
them as ``trials.jsonl``; ``import`` and ``rebuild`` read them back, checking every field before
anything is trusted. Pure JSON: no Ray, no MLflow.
"""

import json
import math
from dataclasses import asdict, dataclass, field, fields

from study.engine.trial import TrialSpec
from study.errors import InputError

RECORD_FORMAT = "inr-study-trial/1"
# No trial record comes near this; a larger file is not one (and is not read into memory).
MAX_RECORD_BYTES = 8 * 2**20


class RecordError(InputError):
    """A trial record that cannot be read; the message names the field."""


NON_FINITE = ("inf", "-inf", "nan")


def _encode_number(value):
    """JSON has no infinity (a lossless PSNR): non-finite floats travel as strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def _decode_number(value, where: str) -> float | int | None:
    if value is None:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            float(value)  # an integer too large for a float is no figure
        except OverflowError:
            raise RecordError(f"{where}: {value!r} is out of range") from None
        return value
    if value in NON_FINITE:
        return float(value)
    raise RecordError(f"{where}: {value!r} is not a number")


def _str_or_none(value, where: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise RecordError(f"{where}: {value!r} is not text")
    return value


SPEC_TYPES = {
    "codec": str,
    "image": str,
    "rate": (int, float, str),
    "preset": (str, type(None)),
    "loss": (str, type(None)),
    "convention": (str, type(None)),
    "seed": int,
    "image_variant": str,
    "search": str,
}


def spec_from_json(data, where: str) -> TrialSpec:
    """A ``TrialSpec`` from its ``asdict`` form, each field's type checked."""
    if not isinstance(data, dict):
        raise RecordError(f"{where}: the spec is not an object")
    names = {f.name for f in fields(TrialSpec)}
    if set(data) != names:
        odd = sorted(set(data) ^ names)
        raise RecordError(f"{where}: the spec's fields differ from this code's ({', '.join(odd)})")
    for name, kind in SPEC_TYPES.items():
        value = data[name]
        if not isinstance(value, kind) or isinstance(value, bool):
            raise RecordError(f"{where}: spec field {name} = {value!r} has the wrong type")
    return TrialSpec(**data)


@dataclass
class TrialRecord:
    spec: TrialSpec
    image_digest: str
    # What the codec reported about itself (loss, α, convention, preset, seed, device, ...).
    settings: dict
    # Every figure the trial measured: bpp, bytes, quality metrics, seconds, codec statistics;
    # None for a metric that could not be computed where it ran.
    metrics: dict
    # Where and with what it ran: executor, host, device, software versions, code commit.
    provenance: dict
    # The fit's validations in order (each with its training ``iteration``).
    validations: list[dict] = field(default_factory=list)
    study: str = ""

    @property
    def key(self) -> str:
        return self.spec.key

    def to_json(self) -> dict:
        return {
            "format": RECORD_FORMAT,
            "study": self.study,
            "trial_key": self.key,
            "spec": asdict(self.spec),
            "image_digest": self.image_digest,
            "settings": self.settings,
            "metrics": {k: _encode_number(v) for k, v in self.metrics.items()},
            "provenance": self.provenance,
            "validations": [
                {k: _encode_number(v) for k, v in record.items()} for record in self.validations
            ],
        }

    def dumps(self) -> str:
        # In the order the trial wrote them: the imported trial.json is then the engine's.
        return json.dumps(self.to_json())

    @classmethod
    def from_json(cls, data, where: str) -> "TrialRecord":
        """Every field checked: a record that does not parse names its source and the field."""
        if not isinstance(data, dict) or data.get("format") != RECORD_FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise RecordError(f"{where}: not an inr-study trial record ({found!r})")
        spec = spec_from_json(data.get("spec"), where)
        if data.get("trial_key") != spec.key:
            raise RecordError(
                f"{where}: its trial key {data.get('trial_key')!r} is not its spec's ({spec.key})"
            )
        for name in ("settings", "metrics", "provenance"):
            if not isinstance(data.get(name), dict):
                raise RecordError(f"{where}: {name} is not an object")
        if not isinstance(data.get("validations"), list) or not all(
            isinstance(v, dict) for v in data["validations"]
        ):
            raise RecordError(f"{where}: validations is not a list of objects")
        metrics = {k: _decode_number(v, f"{where}: metric {k}") for k, v in data["metrics"].items()}
        for record in data["validations"]:
            step = record.get("iteration", 0)
            if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < 2**63:
                raise RecordError(f"{where}: a validation's iteration {step!r} is not a step")
        # Validations also say which phase they belong to, in words.
        validations = [
            {
                k: v
                if isinstance(v, str) and v not in NON_FINITE
                else _decode_number(v, f"{where}: validation {k}")
                for k, v in record.items()
            }
            for record in data["validations"]
        ]
        return cls(
            spec=spec,
            image_digest=_str_or_none(data.get("image_digest"), f"{where}: image_digest") or "",
            settings=data["settings"],
            metrics=metrics,
            provenance=data["provenance"],
            validations=validations,
            study=_str_or_none(data.get("study"), f"{where}: study") or "",
        )

    @classmethod
    def loads(cls, text: str | bytes, where: str) -> "TrialRecord":
        if len(text) > MAX_RECORD_BYTES:
            raise RecordError(f"{where}: {len(text)} bytes is too large for a trial record")
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise RecordError(f"{where}: not valid JSON ({type(error).__name__})") from None
        return cls.from_json(data, where)

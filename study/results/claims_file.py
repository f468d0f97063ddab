"""The claims a study's reports judge, read from a claims file (``study/data/icip24_claims.yaml``)
and checked entry by entry: each names an INR codec, and checks of one loss against another loss
of that codec, or against a classical codec, in metrics the reports compare, by BD-rate or at
equal rate, with the outcome the claim expects."""

import math
from dataclasses import dataclass
from pathlib import Path

from inr_models import available_codecs, fits_network
from losses import parse_loss_spec
from losses.spec import LossSpecError
from study.errors import InputError
from study.results.table import get_metric

CLAIMS_FILE = Path(__file__).parents[1] / "data" / "icip24_claims.yaml"
EXPECTATIONS = ("better", "worse", "on_par", "not_better", "not_worse")
WAYS = ("bd_rate", "equal_rate")
ALL_LOSSES = "all"


class ClaimsFileError(InputError):
    """A claims file that cannot be read as claims: the message names the file and the entry."""


@dataclass(frozen=True)
class Check:
    by: str  # one of WAYS
    losses: tuple[str, ...] | None  # loss names as records give them; None: every loss held
    against: str  # a loss name of the same codec, or a classical codec
    classical: bool  # whether ``against`` is a classical codec
    metrics: tuple[str, ...]
    expect: str  # one of EXPECTATIONS
    # Equal rate: the settings whose mean bpp lies in [low, high) (None: open on that side).
    bpp: tuple[float | None, float | None] = (None, None)


@dataclass(frozen=True)
class Claim:
    id: str
    codec: str
    section: str
    says: str
    reading: str
    checks: tuple[Check, ...]


def load_claims(path: Path = CLAIMS_FILE) -> tuple[str, list[Claim]]:
    """The source and the claims of a claims file, every entry checked."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ClaimsFileError(f"{path}: cannot be read as YAML ({error})") from None
    if not isinstance(data, dict) or set(data) != {"source", "claims"}:
        raise ClaimsFileError(f"{path}: expected exactly the keys 'source' and 'claims'")
    if not isinstance(data["source"], str) or not isinstance(data["claims"], list):
        raise ClaimsFileError(f"{path}: 'source' must be text and 'claims' a list")
    claims = [_claim(path, entry) for entry in data["claims"]]
    ids = [claim.id for claim in claims]
    if len(set(ids)) != len(ids):
        raise ClaimsFileError(f"{path}: a claim id appears twice")
    return data["source"], claims


def _claim(path: Path, entry: object) -> Claim:
    fields = {"id", "codec", "section", "says", "reading", "checks"}
    if not isinstance(entry, dict) or not {"id", "codec", "says", "checks"} <= set(entry) <= fields:
        raise ClaimsFileError(f"{path}: each claim needs id, codec, says and checks ({entry!r})")
    where = f"{path}, claim {entry['id']!r}"
    text = {key: entry.get(key, "") for key in ("id", "codec", "section", "says", "reading")}
    if not all(isinstance(value, str) for value in text.values()):
        raise ClaimsFileError(f"{where}: id, codec, section, says and reading must be text")
    if text["codec"] not in available_codecs() or not fits_network(text["codec"]):
        raise ClaimsFileError(f"{where}: {text['codec']!r} is no INR codec this tool knows")
    if not isinstance(entry["checks"], list) or not entry["checks"]:
        raise ClaimsFileError(f"{where}: 'checks' must be a non-empty list")
    return Claim(**text, checks=tuple(_check(where, check) for check in entry["checks"]))


def _check(where: str, entry: object) -> Check:
    keys = {"by", "losses", "against", "metrics", "expect", "bpp"}
    if not isinstance(entry, dict) or not keys - {"bpp"} <= set(entry) <= keys:
        raise ClaimsFileError(f"{where}: a check needs {', '.join(sorted(keys - {'bpp'}))}")
    if entry["by"] not in WAYS or entry["expect"] not in EXPECTATIONS:
        raise ClaimsFileError(
            f"{where}: 'by' is one of {', '.join(WAYS)} and 'expect' one of "
            f"{', '.join(EXPECTATIONS)} (got {entry['by']!r}, {entry['expect']!r})"
        )
    losses = entry["losses"]
    if losses != ALL_LOSSES and not (isinstance(losses, list) and losses):
        raise ClaimsFileError(f"{where}: 'losses' is '{ALL_LOSSES}' or a non-empty list")
    against = entry["against"]
    if not isinstance(against, str):
        raise ClaimsFileError(f"{where}: 'against' is a loss spec or a classical codec's name")
    classical = against in available_codecs() and not fits_network(against)
    try:
        names = None if losses == ALL_LOSSES else tuple(_loss_name(x) for x in losses)
        against = against if classical else _loss_name(against)
    except (LossSpecError, TypeError) as error:
        raise ClaimsFileError(f"{where}: {error}") from None
    metrics = entry["metrics"]
    if not isinstance(metrics, list) or not metrics:
        raise ClaimsFileError(f"{where}: 'metrics' must be a non-empty list")
    judged_by = "BD-rate" if entry["by"] == "bd_rate" else "equal-rate margin"
    for key in metrics:
        if not _judgeable(key, entry["by"]):
            raise ClaimsFileError(f"{where}: metric {key!r} has no {judged_by} to judge by")
    if len(set(metrics)) != len(metrics) or (names and len(set(names)) != len(names)):
        raise ClaimsFileError(f"{where}: a check names a loss or a metric twice")
    return Check(
        by=entry["by"],
        losses=names,
        against=against,
        classical=classical,
        metrics=tuple(metrics),
        expect=entry["expect"],
        bpp=_bpp_range(where, entry.get("bpp"), entry["by"]),
    )


def _loss_name(spec: object) -> str:
    if not isinstance(spec, str):
        raise TypeError(f"a loss must be a loss spec, not {spec!r}")
    return parse_loss_spec(spec).name


def _judgeable(key: object, by: str) -> bool:
    try:
        metric = get_metric(key)
    except (KeyError, TypeError):
        return False
    return metric.bd_rate if by == "bd_rate" else metric.equal_rate_margin is not None


def _bpp_range(where: str, value: object, by: str) -> tuple[float | None, float | None]:
    if value is None:
        return None, None
    ends_ok = isinstance(value, list) and len(value) == 2
    # A YAML "yes" is a bool, which Python counts as an int: refused, as NaN and infinity are.
    ends_ok = ends_ok and all(
        x is None or (type(x) in (int, float) and math.isfinite(x)) for x in value
    )
    if by != "equal_rate" or not ends_ok or (None not in value and value[0] >= value[1]):
        raise ClaimsFileError(
            f"{where}: 'bpp' is [low, high] with low < high (null: open), at equal rate only"
        )
    return value[0], value[1]

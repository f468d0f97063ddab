"""Study configs as files: read (bounded, checked) and validated, or written back as YAML.

Errors name the offending field (``codecs.1.lmbdas: ...``) and the file, so a typo costs seconds,
not a cluster allocation.
"""

import stat
from pathlib import Path

import yaml
from pydantic import ValidationError

from study.config.study import StudyConfig
from study.data.imageio import why_unreadable
from study.errors import InputError

MAX_CONFIG_BYTES = 4 << 20
# Top-level keys renamed since studies were first published, {earlier name: name}: configs and
# published study.yaml files written before still read.
RENAMED_KEYS = {"lpips": "optional_metrics"}


class StudyConfigError(InputError):
    """An invalid study configuration; the message names the file and the fields."""


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

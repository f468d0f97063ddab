"""Study configuration: a YAML file validated into typed objects before anything starts."""

from study.config.codec_entry import CodecEntry
from study.config.common import import_plugins
from study.config.files import StudyConfigError, dump_config, load_config, parse_config
from study.config.search import Search
from study.config.study import StudyConfig

__all__ = [
    "CodecEntry",
    "Search",
    "StudyConfig",
    "StudyConfigError",
    "dump_config",
    "import_plugins",
    "load_config",
    "parse_config",
]

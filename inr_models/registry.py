"""Codec registry: ``@register_codec("name")`` on a Codec subclass makes it reachable by name.

The built-in codecs are imported on the first lookup, so importing the registry (or a command that
only prints its help) does not load torch.
"""

import importlib
from collections.abc import Callable

from inr_models.base import Codec

# Modules whose import registers the built-in codecs.
BUILTIN_MODULES = (
    "inr_models.classical",
    "inr_models.coolchic.codec",
    "inr_models.nif.codec",
    "inr_models.c3.codec",
)

_CODECS: dict[str, type[Codec]] = {}
_builtins_loaded = False


def register_codec(name: str) -> Callable[[type[Codec]], type[Codec]]:
    def decorator(cls: type[Codec]) -> type[Codec]:
        if name in _CODECS:
            raise ValueError(f"codec {name!r} is already registered by {_CODECS[name].__name__}")
        taken = {c.file_id: n for n, c in _CODECS.items() if c.file_id is not None}
        if cls.file_id is not None and cls.file_id in taken:
            raise ValueError(
                f"codec {name!r}: file id {cls.file_id} is taken by {taken[cls.file_id]}"
            )
        cls.name = name
        _CODECS[name] = cls
        return cls

    return decorator


def _codecs() -> dict[str, type[Codec]]:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in BUILTIN_MODULES:
            importlib.import_module(module)
    return _CODECS


def available_codecs() -> list[str]:
    return sorted(_codecs())


def registration_order() -> list[str]:
    """Codec names as registered: built-in ones in ``BUILTIN_MODULES`` order, oldest first."""
    return list(_codecs())


def registration_rank(name: str) -> tuple[int, str]:
    """Sort key: registration order, codecs this process does not know last (by name)."""
    known = registration_order()
    return (known.index(name) if name in known else len(known), name)


def inr_codecs() -> list[str]:
    """Codecs that fit a network per image (take a loss and a preset)."""
    return [name for name in available_codecs() if _CODECS[name].fits_network]


def fits_network(name: str) -> bool:
    """Whether the codec fits a network per image; a codec this process has no class for (a
    plugin not imported here) counts as one, since classical codecs are all built in."""
    try:
        return get_codec_class(name).fits_network
    except KeyError:
        return True


def get_codec_class(name: str) -> type[Codec]:
    try:
        return _codecs()[name]
    except KeyError:
        raise KeyError(
            f"unknown codec {name!r}; valid codecs: {', '.join(available_codecs())}"
        ) from None


def codec_for_file_id(file_id: int) -> type[Codec] | None:
    return next((c for c in _codecs().values() if c.file_id == file_id), None)


def create_codec(name: str, **settings) -> Codec:
    return get_codec_class(name)(**settings)

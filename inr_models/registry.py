"""Codec registry: ``@register_codec("name")`` on a Codec subclass makes it reachable by name."""

from collections.abc import Callable

from inr_models.base import Codec

_CODECS: dict[str, type[Codec]] = {}


def register_codec(name: str) -> Callable[[type[Codec]], type[Codec]]:
    def decorator(cls: type[Codec]) -> type[Codec]:
        if name in _CODECS:
            raise ValueError(f"codec {name!r} is already registered by {_CODECS[name].__name__}")
        cls.name = name
        _CODECS[name] = cls
        return cls

    return decorator


def available_codecs() -> list[str]:
    return sorted(_CODECS)


def get_codec_class(name: str) -> type[Codec]:
    try:
        return _CODECS[name]
    except KeyError:
        raise KeyError(
            f"unknown codec {name!r}; valid codecs: {', '.join(available_codecs())}"
        ) from None


def create_codec(name: str, **settings) -> Codec:
    return get_codec_class(name)(**settings)

"""Codecs: one interface, a registry by name, INR codecs and classical baselines.

Importing this package registers every built-in codec.
"""

from inr_models import classical  # noqa: F401  (registers jpeg, webp, avif, jxl)
from inr_models.base import Codec, CodecError, Encoded
from inr_models.coolchic import codec as _coolchic  # noqa: F401  (registers coolchic-v1, -v2)
from inr_models.nif import codec as _nif  # noqa: F401  (registers nif)
from inr_models.registry import available_codecs, create_codec, get_codec_class, register_codec

__all__ = [
    "Codec",
    "CodecError",
    "Encoded",
    "available_codecs",
    "create_codec",
    "get_codec_class",
    "register_codec",
]

"""Codecs: one interface, a registry by name, INR codecs and classical baselines.

The built-in codecs (classical, COOL-CHIC v1/v2, NIF, C3) register themselves on the registry's
first lookup; importing this package loads no model code.
"""

from inr_models.base import Codec, CodecError, Encoded, RateAxis
from inr_models.registry import (
    available_codecs,
    create_codec,
    fits_network,
    get_codec_class,
    inr_codecs,
    register_codec,
    registration_order,
    registration_rank,
)

__all__ = [
    "Codec",
    "CodecError",
    "Encoded",
    "RateAxis",
    "available_codecs",
    "create_codec",
    "fits_network",
    "get_codec_class",
    "inr_codecs",
    "register_codec",
    "registration_order",
    "registration_rank",
]

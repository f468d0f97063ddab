"""Training losses for INR codecs: components, composites, paper losses and scaling conventions.

This package depends on nothing else in the project, so codecs can import it freely.
"""

from losses.components import DistortionComponent, available_components, register_component
from losses.conventions import CONVENTIONS, COOLCHIC, NIF, PLAIN, Convention, get_convention
from losses.spec import CompositeLoss, LossSpecError, LossTerm, build_loss, parse_loss_spec

__all__ = [
    "CONVENTIONS",
    "COOLCHIC",
    "NIF",
    "PLAIN",
    "CompositeLoss",
    "Convention",
    "DistortionComponent",
    "LossSpecError",
    "LossTerm",
    "available_components",
    "build_loss",
    "get_convention",
    "parse_loss_spec",
    "register_component",
]

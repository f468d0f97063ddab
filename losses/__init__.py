"""Training losses for INR codecs: components, composites, loss families and scaling conventions.

This package depends on nothing else in the project, so codecs can import it freely.
"""

from losses.components import (
    Component,
    DistortionComponent,
    available_components,
    component_info,
    register_component,
)
from losses.conventions import CONVENTIONS, COOLCHIC, NIF, PLAIN, Convention, get_convention
from losses.families import (
    LossFamily,
    LossTerm,
    available_families,
    get_family,
    register_loss_family,
)
from losses.spec import (
    CompositeLoss,
    LossSpecError,
    build_loss,
    family_spec,
    parse_loss_spec,
)

__all__ = [
    "CONVENTIONS",
    "COOLCHIC",
    "NIF",
    "PLAIN",
    "Component",
    "CompositeLoss",
    "Convention",
    "DistortionComponent",
    "LossFamily",
    "LossSpecError",
    "LossTerm",
    "available_components",
    "available_families",
    "build_loss",
    "component_info",
    "family_spec",
    "get_convention",
    "get_family",
    "parse_loss_spec",
    "register_component",
    "register_loss_family",
]

"""Composite losses from a spec string or a config list.

Spec grammar (whitespace ignored)::

    spec := term ("+" term)*
    term := COMPONENT [":" WEIGHT]            e.g. "l1:0.8+ssim:0.2", "mse"
          | FAMILY ["(" [alpha=]ALPHA ")"]      e.g. "lc_ssim(0.01)", "l1_ssim"

Config form: a list of ``{"component": name, "weight": w}`` mappings, or one
``{"name": family, "alpha": a}`` mapping (families: ``losses.families``).
"""

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import torch

from losses.components import available_components, component_info
from losses.conventions import PLAIN, Convention
from losses.families import LossFamily, LossTerm, available_families, get_family
from losses.target_features import TargetFeatures, caching_targets


class LossSpecError(ValueError):
    """A loss spec that cannot be parsed; the message lists what is valid."""


_FAMILY_CALL = re.compile(r"^(?P<name>[a-z0-9_]+)\((?:alpha=)?(?P<alpha>[^()]*)\)$")


def _valid_names() -> str:
    families = [get_family(n) for n in available_families()]
    with_alpha = [f"{f.name}(α)" for f in families if f.takes_alpha]
    return (
        f"components: {', '.join(available_components())}; "
        f"loss families: {', '.join(sorted(available_families()))} ({', '.join(with_alpha)} take α)"
    )


def _parse_number(text: str, what: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LossSpecError(f"loss spec {spec!r}: {what} {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise LossSpecError(f"loss spec {spec!r}: {what} must be finite and >= 0, got {value}")
    return value


def _family_terms(family: LossFamily, alpha: float | None, spec: str) -> tuple[LossTerm, ...]:
    if not family.takes_alpha:
        if alpha is not None:
            raise LossSpecError(f"loss spec {spec!r}: the loss {family.name!r} takes no α")
        return family.terms(0.0)
    low, high = family.alpha_range
    if not low <= alpha <= high:
        raise LossSpecError(f"loss spec {spec!r}: α must lie in [{low:g}, {high:g}], got {alpha}")
    return family.terms(alpha)


def family_spec(family: str, alpha: float | None) -> str:
    """A loss family's spec at α, which is also its name: ``lc_ssim(0.01)``; without α, the
    family's name alone."""
    return family if alpha is None else f"{family}({alpha:g})"


@dataclass(frozen=True)
class CompositeLoss:
    """Σ or mean of weighted distortion components, under a scaling convention.

    Called with reconstruction and target in [0, 1], shaped (C, H, W) or (N, C, H, W).
    """

    terms: tuple[LossTerm, ...]
    convention: Convention = PLAIN
    # Family name and α when built from a family ("lc_ssim", 0.01); for the study's bookkeeping.
    family: str | None = None
    alpha: float | None = None
    # Perceptual terms' features of the fit's targets (losses.target_features): one per loss.
    target_features: TargetFeatures = field(
        default_factory=TargetFeatures, compare=False, repr=False
    )

    @property
    def spec(self) -> str:
        return "+".join(f"{t.component}:{t.weight:g}" for t in self.terms)

    @property
    def name(self) -> str:
        if self.family is None:
            return self.spec
        return family_spec(self.family, self.alpha)

    @property
    def display(self) -> str:
        """For people: the family's label with α ("LogCosh + 0.01·(1 − SSIM)"), else the spec."""
        family = self._family_entry
        return self.spec if family is None else family.display(self.alpha)

    @property
    def structural(self) -> bool:
        """Whether a term is structural (SSIM-like, perceptual), not point-wise."""
        return any(component_info(t.component).structural for t in self.terms)

    @property
    def networks(self) -> set[str]:
        """The pretrained networks its terms read (``inr-study fetch weights`` names)."""
        return {n for t in self.terms for n in component_info(t.component).networks}

    @property
    def base(self) -> str:
        """The component the loss is built on (its first term): "logcosh" for LogCosh + SSIM."""
        return self.terms[0].component

    def with_convention(self, convention: Convention) -> "CompositeLoss":
        return CompositeLoss(self.terms, convention, self.family, self.alpha)

    def per_sub_image(self) -> "CompositeLoss":
        """The same loss for a trainer that already feeds it one polyphase sub-image at a time."""
        return self.with_convention(replace(self.convention, structural_on_polyphase=False))

    def term_values(
        self, reconstruction: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Unweighted value of each component, as the convention computes it."""
        x, y = self._to_convention_range(reconstruction), self._to_convention_range(target)
        values = {}
        with caching_targets(self.target_features):
            self._compute_terms(x, y, values)
        return values

    def _compute_terms(self, x: torch.Tensor, y: torch.Tensor, values: dict) -> None:
        for term in self.terms:
            component = component_info(term.component).compute
            if self._on_polyphase(term):
                subs = [(x[..., i::2, j::2], y[..., i::2, j::2]) for i in (0, 1) for j in (0, 1)]
                value = torch.stack([component(a, b, self.convention.value_range) for a, b in subs])
                values[term.component] = value.mean()
            else:
                values[term.component] = component(x, y, self.convention.value_range)

    def _on_polyphase(self, term: LossTerm) -> bool:
        return self.convention.structural_on_polyphase and component_info(term.component).structural

    def problems(self, height: int, width: int) -> list[str]:
        """Why this loss cannot train on an image of this size here (a term's size limit, missing
        weights); empty when it can. Checked before any fit starts."""
        found = []
        for term in self.terms:
            short_side = min(height, width) // (2 if self._on_polyphase(term) else 1)
            problem = component_info(term.component).problem(short_side)
            if problem is not None:
                where = " per polyphase sub-image" if self._on_polyphase(term) else ""
                found.append(f"its {term.component} term {problem}{where}")
        return found

    def __call__(self, reconstruction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        values = self.term_values(reconstruction, target)
        total = sum(term.weight * values[term.component] for term in self.terms)
        if self.reduction == "mean":
            total = total / len(self.terms)
        return total

    @property
    def _family_entry(self):
        return get_family(self.family) if self.family else None

    @property
    def reduction(self) -> str:
        """The convention's, unless the family keeps its weights as they stand (summed)."""
        family = self._family_entry
        return "sum" if family is not None and family.summed else self.convention.reduction

    @property
    def warm_up_loss(self) -> "CompositeLoss":
        """The loss a recipe's warm-up candidates train with: the family's choice, else itself."""
        family = self._family_entry
        if family is None or family.warm_up is None:
            return self
        return parse_loss_spec(family.warm_up, self.convention)

    def _to_convention_range(self, t: torch.Tensor) -> torch.Tensor:
        if t.dim() == 3:
            t = t.unsqueeze(0)
        low, high = self.convention.value_range
        return t if (low, high) == (0.0, 1.0) else t * (high - low) + low


def parse_loss_spec(spec: str, convention: Convention = PLAIN) -> CompositeLoss:
    text = re.sub(r"\s+", "", spec).lower()
    if not text:
        raise LossSpecError(f"empty loss spec; valid {_valid_names()}")
    parts = text.split("+")
    if len(parts) == 1:
        call = _FAMILY_CALL.match(text)
        name, alpha_text = (call["name"], call["alpha"]) if call else (text, None)
        family = get_family(name)
        if family is not None:
            alpha = _parse_number(alpha_text, "α", spec) if alpha_text else family.alpha_default
            terms = _family_terms(family, alpha, spec)
            return CompositeLoss(terms, convention, family=name, alpha=alpha)
    terms = []
    for part in parts:
        name, _, weight_text = part.partition(":")
        if name not in available_components():
            hint = " (loss families stand alone, not in a sum)" if get_family(name) else ""
            raise LossSpecError(
                f"loss spec {spec!r}: unknown component {name!r}{hint}; valid {_valid_names()}"
            )
        weight = _parse_number(weight_text, "weight", spec) if weight_text else 1.0
        terms.append(LossTerm(name, weight))
    _check_terms(terms, spec)
    return CompositeLoss(tuple(terms), convention)


def _check_terms(terms: Sequence[LossTerm], spec: object) -> None:
    names = [t.component for t in terms]
    if len(set(names)) != len(names):
        raise LossSpecError(f"loss spec {spec!r}: a component appears twice ({', '.join(names)})")
    if not any(t.weight > 0 for t in terms):
        raise LossSpecError(f"loss spec {spec!r}: at least one weight must be > 0")


def _from_config(config: Sequence[Mapping] | Mapping, convention: Convention) -> CompositeLoss:
    if isinstance(config, Mapping):
        if set(config) - {"name", "alpha"} or "name" not in config:
            raise LossSpecError(
                f"loss config {dict(config)!r}: expected keys 'name' and optional 'alpha'; "
                f"valid {_valid_names()}"
            )
        alpha = config.get("alpha")
        spec = config["name"] if alpha is None else f"{config['name']}({alpha})"
        return parse_loss_spec(str(spec), convention)
    terms = []
    for entry in config:
        if not isinstance(entry, Mapping) or set(entry) - {"component", "weight"}:
            raise LossSpecError(
                f"loss config entry {entry!r}: expected {{'component': name, 'weight': number}}"
            )
        name = entry.get("component")
        if name not in available_components():
            raise LossSpecError(f"loss config: unknown component {name!r}; valid {_valid_names()}")
        weight = _parse_number(str(entry.get("weight", 1.0)), "weight", config)
        terms.append(LossTerm(name, weight))
    if not terms:
        raise LossSpecError(f"empty loss config; valid {_valid_names()}")
    _check_terms(terms, config)
    return CompositeLoss(tuple(terms), convention)


def build_loss(
    spec: str | Sequence[Mapping] | Mapping, convention: Convention = PLAIN
) -> CompositeLoss:
    """A loss from a spec string, a list of weighted components, or a loss-family mapping."""
    if isinstance(spec, str):
        return parse_loss_spec(spec, convention)
    return _from_config(spec, convention)

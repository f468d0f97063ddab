"""Loss families: named losses with an optional mixing weight α, registered like a plugin would.

A family turns α into weighted components (``logcosh + α·ssim``). The study, reports and dashboards
read families from here: whether a loss takes α and in which range, its display name, and whether it
has a structural (SSIM-type) term, which plots draw dotted.
"""

from collections.abc import Callable
from dataclasses import dataclass

from losses.components import component_info


@dataclass(frozen=True)
class LossTerm:
    component: str
    weight: float


@dataclass(frozen=True, kw_only=True)
class LossFamily:
    name: str
    label: str  # for people, e.g. "LogCosh + α·(1 − SSIM)"
    terms: Callable[[float], tuple[LossTerm, ...]]  # α (0 for families without one) -> terms
    alpha_default: float | None = None  # None: the family takes no α
    alpha_range: tuple[float, float] = (0.0, 1.0)

    @property
    def takes_alpha(self) -> bool:
        return self.alpha_default is not None

    @property
    def structural(self) -> bool:
        terms = self.terms(self.alpha_default or 0.0)
        return any(component_info(t.component).structural for t in terms)

    def display(self, alpha: float | None) -> str:
        """The label with α's value in it: "LogCosh + 0.01·(1 − SSIM)"."""
        return self.label if alpha is None else self.label.replace("α", f"{alpha:g}")


_FAMILIES: dict[str, LossFamily] = {}


def register_loss_family(family: LossFamily) -> LossFamily:
    if family.name in _FAMILIES:
        raise ValueError(f"loss family {family.name!r} is already registered")
    low, high = family.alpha_range
    if family.takes_alpha and not low <= family.alpha_default <= high:
        raise ValueError(f"loss family {family.name!r}: default α outside {family.alpha_range}")
    _FAMILIES[family.name] = family
    return family


def available_families() -> list[str]:
    return list(_FAMILIES)


def get_family(name: str) -> LossFamily | None:
    return _FAMILIES.get(name)


def _single(component: str) -> Callable[[float], tuple[LossTerm, ...]]:
    return lambda _alpha: (LossTerm(component, 1.0),)


def _plus_alpha(base: str, added: str) -> Callable[[float], tuple[LossTerm, ...]]:
    """base + α·added."""
    return lambda alpha: (LossTerm(base, 1.0), LossTerm(added, alpha))


# The paper's five losses.
register_loss_family(LossFamily(name="l1", label="L1", terms=_single("l1")))
register_loss_family(LossFamily(name="mse", label="MSE", terms=_single("mse")))
register_loss_family(LossFamily(name="logcosh", label="LogCosh", terms=_single("logcosh")))
register_loss_family(
    LossFamily(
        name="lc_ssim",
        label="LogCosh + α·(1 − SSIM)",
        terms=_plus_alpha("logcosh", "ssim"),
        alpha_default=0.01,
    )
)
register_loss_family(
    LossFamily(
        name="l1_ssim",
        label="(1 − α)·L1 + α·(1 − SSIM)",
        terms=lambda alpha: (LossTerm("l1", 1.0 - alpha), LossTerm("ssim", alpha)),
        alpha_default=0.2,
    )
)

# Perceptual losses beyond the paper: MS-SSIM alone, and MSE steered by LPIPS (VGG features).
register_loss_family(LossFamily(name="ms_ssim", label="1 − MS-SSIM", terms=_single("ms_ssim")))
register_loss_family(
    LossFamily(
        name="mse_lpips",
        label="MSE + α·LPIPS (VGG)",
        terms=_plus_alpha("mse", "lpips_vgg"),
        # LPIPS is about 100× MSE on [0, 1] at the rates studied: 0.01 gives both a similar pull.
        alpha_default=0.01,
    )
)
# Cool-Chic 5's Wasserstein tuning trains on 0.2·MSE + 0.004·WD: α = 0.02 keeps that ratio of
# the two terms on [0, 1] pixels (the plain and COOL-CHIC conventions; NIF's [−1, 1] range makes its
# MSE 4× larger); the overall scale folds into λ.
register_loss_family(
    LossFamily(
        name="mse_wasserstein",
        label="MSE + α·Wasserstein",
        terms=_plus_alpha("mse", "wasserstein"),
        alpha_default=0.02,
    )
)

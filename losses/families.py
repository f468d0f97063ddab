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
    # Where that default α was published, for the reports ("": chosen in this project).
    alpha_source: str = ""
    alpha_range: tuple[float, float] = (0.0, 1.0)
    # Its terms' weights as they stand, summed, under every convention (a convention that
    # averages its terms would scale them by 1/n): for a family that reproduces a code base.
    summed: bool = False
    # The loss spec the warm-up candidates train with, where a recipe has them (COOL-CHIC's);
    # None: the family itself.
    warm_up: str | None = None

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
        alpha_source="ICIP 2024 study",
    )
)
register_loss_family(
    LossFamily(
        name="l1_ssim",
        label="(1 − α)·L1 + α·(1 − SSIM)",
        terms=lambda alpha: (LossTerm("l1", 1.0 - alpha), LossTerm("ssim", alpha)),
        alpha_default=0.2,
        alpha_source="ICIP 2024 study",
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
# MSE + α·WD (Cool-Chic 5's Wasserstein distortion, ``losses.wasserstein``). How it compares with
# Cool-Chic 5's own 0.2·MSE + 0.004·WD (J = D + λ·R, terms summed, README "Wasserstein, scaled"):
# α = 0.02 keeps the ratio of the two terms on [0, 1] pixels; the overall scale folds into λ, by a
# factor that depends on the convention. ``plain`` sums: D is 5× Cool-Chic's, so λ here is 5× its
# λ. ``coolchic`` averages the two terms: D is 2.5× Cool-Chic's (λ here = 2.5× its λ), and half
# of what the same terms weigh summed, so against an ``mse`` run (one term, not halved) an
# ``mse_wasserstein`` run at the same λ trains as if at about 2λ. Compare it with MSE at matched
# rate (a ``match`` search), where no λ fold enters.
register_loss_family(
    LossFamily(
        name="mse_wasserstein",
        label="MSE + α·Wasserstein",
        terms=_plus_alpha("mse", "wasserstein"),
        alpha_default=0.02,
    )
)
# Cool-Chic 5's ``--tune=wasserstein`` training as it is (v5.0.1 ``utils/parsecli.py``, its
# ``training/presets.py``): 0.2·MSE + α·WD with α = 0.8 / 200, summed under any convention, the
# warm-up candidates trained on MSE alone. (v4.2.1 weighed 0.2·MSE + 0.8·WD; v4.2.0 0.8 and
# 0.2.) Its gradient clip (0.1, whatever the loss) is v2's presets'; its decoder-side common
# randomness is an architecture change no codec here has.
register_loss_family(
    LossFamily(
        name="cc5_wasserstein",
        label="0.2·MSE + α·Wasserstein (Cool-Chic 5)",
        terms=lambda alpha: (LossTerm("mse", 0.2), LossTerm("wasserstein", alpha)),
        alpha_default=0.8 / 200,
        alpha_source="Cool-Chic 5.0.1",
        summed=True,
        warm_up="mse",
    )
)

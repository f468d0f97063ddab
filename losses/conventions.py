"""How a code base scales and combines loss terms (reference-codecs.md §1).

The same nominal loss lands on a different point of the rate axis depending on the pixel range it
sees and on whether weighted terms are summed or averaged, so a faithful preset must reproduce the
convention of the code that produced the paper's figures.
"""

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Convention:
    name: str
    # Pixel range the loss terms see; losses always receive reconstructions in [0, 1].
    value_range: tuple[float, float]
    # "sum": Σ wᵢ·Dᵢ.  "mean": (1/n)·Σ wᵢ·Dᵢ over the n terms (the COOL-CHIC forks).
    reduction: Literal["sum", "mean"]
    # NIF trains on the 4 polyphase half-resolution sub-images, so its SSIM terms are SSIMs of those
    # sub-images (averaged here when a full image is given), not of the full image.
    structural_on_polyphase: bool


# The clean convention: weights mean what they say, on [0, 1].
PLAIN = Convention("plain", (0.0, 1.0), "sum", structural_on_polyphase=False)
COOLCHIC = Convention("coolchic", (0.0, 1.0), "mean", structural_on_polyphase=False)
NIF = Convention("nif", (-1.0, 1.0), "sum", structural_on_polyphase=True)

CONVENTIONS = {c.name: c for c in (PLAIN, COOLCHIC, NIF)}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise KeyError(
            f"unknown loss convention {name!r}; valid conventions: {', '.join(sorted(CONVENTIONS))}"
        ) from None

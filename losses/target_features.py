"""Features of a fit's few targets, computed once and found again by value.

A fit compares every step's output with the same one image (NIF: four polyphase sub-images in
turn), so a perceptual term's features of the target need computing once, as Cool-Chic does. They
are found again by value, because the target reaches the term as a new tensor each step where a
convention rescales it or takes sub-images; comparing it with the kept copy costs one pass over
the image, against a network's forward.

Each loss owns one cache (so what a fit kept goes with its loss) and makes it current while its
terms run; a term called outside a loss computes the target's features every time.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

Features = Callable[[torch.Tensor], list[torch.Tensor]]


class TargetFeatures:
    SIZE = 4  # NIF's polyphase sub-images

    def __init__(self):
        self.entries: list[tuple[torch.nn.Module, torch.Tensor, list[torch.Tensor]]] = []

    def __call__(
        self, target: torch.Tensor, network: torch.nn.Module, features: Features
    ) -> list[torch.Tensor]:
        """``features(target)`` of ``network``, computed without gradients the first time."""
        for index, (seen_network, seen, found) in enumerate(self.entries):
            same_kind = (seen.shape, seen.dtype, seen.device) == (
                target.shape, target.dtype, target.device
            )  # fmt: skip
            if seen_network is network and same_kind and torch.equal(seen, target):
                self.entries.insert(0, self.entries.pop(index))  # most recent first
                return found
        with torch.no_grad():
            found = features(target)
        self.entries = [(network, target.detach().clone(), found), *self.entries[: self.SIZE - 1]]
        return found


_current: ContextVar[TargetFeatures | None] = ContextVar("target_features", default=None)


@contextmanager
def caching_targets(cache: TargetFeatures) -> Iterator[None]:
    """Make ``cache`` the one perceptual terms use while the block runs."""
    token = _current.set(cache)
    try:
        yield
    finally:
        _current.reset(token)


def target_features(
    target: torch.Tensor, network: torch.nn.Module, features: Features
) -> list[torch.Tensor]:
    """``features(target)``: from the current loss's cache; computed afresh outside a loss or for
    a target that carries gradients (which a cached copy would drop)."""
    cache = _current.get()
    if cache is None or target.requires_grad:
        return features(target)
    return cache(target, network, features)

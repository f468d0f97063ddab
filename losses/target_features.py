"""Features of a fit's few targets, computed once and found again by value.

A fit compares every step's output with the same one image (NIF: four polyphase sub-images in
turn), so a perceptual term's features of the target need computing once, as Cool-Chic does. They
are found again by value, because the target reaches the term as a new tensor each step where a
convention rescales it or takes sub-images; comparing it with the kept copy costs one pass over
the image, against a network's forward.
"""

from collections.abc import Callable

import torch


class TargetFeatures:
    SIZE = 4  # NIF's polyphase sub-images

    def __init__(self):
        self.entries: list[tuple[torch.nn.Module, torch.Tensor, list[torch.Tensor]]] = []

    def __call__(
        self,
        target: torch.Tensor,
        network: torch.nn.Module,
        features: Callable[[torch.Tensor], list[torch.Tensor]],
    ) -> list[torch.Tensor]:
        """``features(target)`` of ``network``, computed without gradients the first time."""
        for index, (seen_network, seen, found) in enumerate(self.entries):
            same_kind = seen.shape == target.shape and seen.device == target.device
            if seen_network is network and same_kind and torch.equal(seen, target):
                self.entries.insert(0, self.entries.pop(index))  # most recent first
                return found
        with torch.no_grad():
            found = features(target)
        self.entries = [(network, target.detach().clone(), found), *self.entries[: self.SIZE - 1]]
        return found

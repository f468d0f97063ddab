"""A study plugin for tests: a registered codec whose every encode diverges, as a NaN loss would."""

from inr_models.base import Codec, DivergedError
from inr_models.classical import quality_axis
from inr_models.registry import register_codec


@register_codec("always-diverges")
class AlwaysDiverges(Codec):
    rate_axis = quality_axis(0, 100)

    def __init__(self, quality: int):
        self.quality = quality

    def encode(self, image):
        raise DivergedError("loss became NaN at iteration 3 (deliberate, for tests)")

    def decode(self, data):
        raise AssertionError("never reached")

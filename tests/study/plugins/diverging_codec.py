"""A study plugin for tests: a registered codec whose every encode diverges, as a NaN loss would."""

from inr_models.base import Codec, DivergedError, RateAxis
from inr_models.registry import register_codec


@register_codec("always-diverges")
class AlwaysDiverges(Codec):
    rate_axis = RateAxis(
        name="quality",
        config_key="qualities",
        label="quality",
        kind=int,
        default=50,
        low=0,
        high=100,
        help="ignored: every encode diverges",
    )

    def __init__(self, quality: int):
        self.quality = quality

    def encode(self, image):
        raise DivergedError("loss became NaN at iteration 3 (deliberate, for tests)")

    def decode(self, data):
        raise AssertionError("never reached")

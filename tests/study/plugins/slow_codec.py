"""A study plugin for tests: JPEG that takes two seconds per encode, so trials overlap visibly
without the cost of fits."""

import time

from inr_models.classical import Jpeg
from inr_models.registry import register_codec

SECONDS = 2.0


@register_codec("slow-jpeg")
class SlowJpeg(Jpeg):
    def encode(self, image):
        time.sleep(SECONDS)
        return super().encode(image)

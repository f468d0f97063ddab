"""The C3-style codec behind the common Codec interface: COOL-CHIC's file layout and exact
decoder (``inr_models.coolchic``), C3's architecture and recipe (this package)."""

from inr_models.c3.presets import ARCHITECTURE, PRESETS
from inr_models.c3.training import C3Fitter
from inr_models.coolchic.codec import CoolChicCodec
from inr_models.registry import register_codec


@register_codec("c3")
class C3Codec(CoolChicCodec):
    architecture = ARCHITECTURE
    preset_table = PRESETS
    quick_preset = "short"
    label = "C3"
    file_id = 4
    format_version = 1
    fitter = C3Fitter

"""Where an INR file's bits go, read from the file: header, network (per module), latents."""

import pytest

from inr_models import create_codec, get_codec_class
from inr_models.base import FIT_FIGURES, CodecError
from study.data.imageio import load_rgb

RATES = {"coolchic-v1": 2e-3, "coolchic-v2": 2e-3, "c3": 2e-3, "nif": "0_31"}


@pytest.fixture(scope="module")
def crop(kodak_records):
    return load_rgb(kodak_records[0].path)[:64, :96].copy()


@pytest.fixture(scope="module")
def fitted(crop):
    """Each codec's debug fit of the crop, made once for the module's tests."""
    made = {}

    def encode(name):
        if name not in made:
            axis = get_codec_class(name).rate_axis
            codec = create_codec(name, preset="debug", **{axis.name: RATES[name]})
            made[name] = codec.encode(crop)
        return made[name]

    return encode


@pytest.mark.parametrize("name", list(RATES))
def test_the_parts_add_up_to_the_file(name, fitted):
    data = fitted(name).data
    parts = create_codec(name).rate_parts(data)  # the file alone, as an import reads it
    assert parts["header_bits"] + parts["network_bits"] + parts["latent_bits"] == 8 * len(data)
    assert 0 < parts["header_bits"] < 1000 and parts["network_bits"] > 0
    modules = {k: v for k, v in parts.items() if k.startswith("network_bits_")}
    if name == "nif":
        assert parts["latent_bits"] == 0 and not modules
        return
    assert parts["latent_bits"] > 0
    expected = {"synthesis", "arm", *(["upsampling"] if name == "coolchic-v2" else [])}
    assert {k.removeprefix("network_bits_") for k in modules} == expected
    assert sum(modules.values()) == parts["network_bits"]
    # Each module's bits are whole 32-bit words of the coded stream.
    assert all(bits % 32 == 0 for bits in modules.values())
    with pytest.raises(CodecError):
        create_codec(name).rate_parts(data[: len(data) // 2])


@pytest.mark.parametrize("name", list(RATES))
def test_fits_report_the_figures_the_tables_carry(name, fitted):
    stats = fitted(name).stats
    missing = set(FIT_FIGURES) - set(stats)
    # NIF trains without a rate term, so it has no estimate of its file's size.
    assert missing == ({"bpp_estimate"} if name == "nif" else set())
    assert all(stats[key] >= 0 for key in FIT_FIGURES if key in stats)


def test_classical_codecs_give_no_breakdown(crop):
    data = create_codec("jpeg", quality=50).encode(crop).data
    assert create_codec("jpeg", quality=50).rate_parts(data) == {}

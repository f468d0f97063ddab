import numpy as np
import pytest

from inr_models import CodecError, available_codecs, create_codec, get_codec_class
from study.results.metrics import psnr

CLASSICAL = ["avif", "jpeg", "jxl", "webp"]


def test_registry_lists_the_classical_codecs():
    assert set(CLASSICAL) <= set(available_codecs())
    with pytest.raises(KeyError, match=r"unknown codec .bpg.; valid codecs: avif, c3, coolchic-v1"):
        get_codec_class("bpg")


@pytest.mark.parametrize("name", CLASSICAL)
def test_round_trip_rate_and_quality_order(name, crop256):
    low, high = (create_codec(name, quality=q) for q in (30, 90))
    coarse, fine = low.encode(crop256), high.encode(crop256)
    assert fine.bpp(256, 256) == 8 * len(fine.data) / 256**2
    assert len(coarse.data) < len(fine.data)
    decoded_coarse, decoded_fine = low.decode(coarse.data), high.decode(fine.data)
    assert decoded_fine.shape == crop256.shape and decoded_fine.dtype == np.uint8
    assert 25 < psnr(crop256, decoded_coarse) < psnr(crop256, decoded_fine)
    assert low.settings() == {"quality": 30}


@pytest.mark.parametrize("name", CLASSICAL)
def test_damaged_or_foreign_bitstreams_give_codec_errors(name, crop256):
    codec = create_codec(name, quality=50)
    data = codec.encode(crop256).data
    with pytest.raises(CodecError, match=name):
        codec.decode(data[: len(data) // 3])
    with pytest.raises(CodecError, match=name):
        codec.decode(b"definitely not an image")
    other = "webp" if name != "webp" else "jpeg"
    with pytest.raises(CodecError, match=r"expected a .* bitstream"):
        codec.decode(create_codec(other, quality=50).encode(crop256).data)


def test_quality_out_of_range_is_named():
    with pytest.raises(ValueError, match=r"jpeg: quality 100 outside the valid range \[1, 95\]"):
        create_codec("jpeg", quality=100)


def test_non_rgb_input_is_rejected():
    with pytest.raises(CodecError, match=r"expected an \(H, W, 3\) RGB image"):
        create_codec("webp", quality=50).encode(np.zeros((32, 32), np.uint8))

"""COOL-CHIC v1/v2 end to end on 256x256 Kodak crops with the debug preset (CPU)."""

import struct
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inr_models import CodecError, create_codec
from inr_models.coolchic.layers import bicubic_kernel_2d, upsample_twice
from inr_models.coolchic.presets import PRESETS

ENCODES = [("coolchic-v1", "mse"), ("coolchic-v1", "l1_ssim"), ("coolchic-v2", "mse"),
           ("coolchic-v2", "lc_ssim")]  # fmt: skip


@pytest.fixture(scope="module")
def encoded(crop256):
    """Each (codec, loss) encoded once for the whole module."""
    results = {}
    for name, loss in ENCODES:
        codec = create_codec(name, loss=loss, lmbda=2e-3, preset="debug", seed=1)
        results[name, loss] = codec.encode(crop256)
    return results


def test_fresh_process_decode_equals_encoder_reconstruction(encoded, crop256, check_fresh_decodes):
    for decoded in check_fresh_decodes(list(encoded.values())):
        assert decoded.shape == crop256.shape


def test_rate_comes_from_the_file_and_tracks_the_estimate(encoded):
    for key, result in encoded.items():
        real, estimate = result.bpp(256, 256), result.stats["bpp_estimate"]
        assert real == 8 * len(result.data) / 256**2
        # The coder never costs much more than the ARM's estimate (header, stream padding); it
        # can cost less, as all-zero grids are skipped rather than coded.
        assert 0.5 * estimate < real < 1.05 * estimate + 0.02, (key, real, estimate)


def test_training_moves_towards_the_target(encoded, crop256):
    from study.results.metrics import psnr

    for result in encoded.values():
        assert psnr(crop256, result.reconstruction) > 20


def test_mac_per_pixel_matches_the_spec(encoded):
    assert 680 <= encoded["coolchic-v1", "mse"].stats["mac_per_pixel"] <= 810
    assert 2200 <= encoded["coolchic-v2", "mse"].stats["mac_per_pixel"] <= 2400


def test_same_seed_same_file(encoded, crop256):
    again = create_codec("coolchic-v1", loss="mse", lmbda=2e-3, preset="debug", seed=1)
    assert again.encode(crop256).data == encoded["coolchic-v1", "mse"].data


@pytest.mark.parametrize("name", ["coolchic-v1", "coolchic-v2"])
def test_damaged_and_foreign_files_give_clear_errors(encoded, name):
    data = encoded[name, "mse"].data
    codec = create_codec(name)
    with pytest.raises(CodecError, match="CRC-32 mismatch"):
        codec.decode(data[:-7])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0x10
    with pytest.raises(CodecError, match="CRC-32 mismatch"):
        codec.decode(bytes(flipped))
    with pytest.raises(CodecError, match="not an inr-study file"):
        codec.decode(b"\xff\xd8\xff\xe0 a JPEG, say")
    with pytest.raises(CodecError, match="not an inr-study file"):
        codec.decode(b"")
    other = "coolchic-v2" if name == "coolchic-v1" else "coolchic-v1"
    with pytest.raises(CodecError, match=f"written by {other}, not {name}"):
        codec.decode(encoded[other, "mse"].data)


def reseal(body: bytes) -> bytes:
    return body + struct.pack("<I", zlib.crc32(body))


def test_corrupted_header_with_valid_checksum_is_refused(encoded):
    data = encoded["coolchic-v1", "mse"].data[:-4]
    header_start = 4 + 2 + 1  # magic, version, codec id, one-byte header length
    bad_size = bytearray(data)
    bad_size[header_start : header_start + 2] = b"\x00\x00"  # height 0
    with pytest.raises(CodecError, match=r"corrupted header: image size 256x0 outside \[1, "):
        create_codec("coolchic-v1").decode(reseal(bytes(bad_size)))
    bad_payload = bytearray(data)
    for i in range(len(data) - 40, len(data)):
        bad_payload[i] ^= 0xA5
    # The payload must be exactly what the encoder writes for the values it decodes to.
    with pytest.raises(CodecError, match=r"^payload: "):
        create_codec("coolchic-v1").decode(reseal(bytes(bad_payload)))


def test_bicubic_upsampling_equals_pytorch_bicubic():
    grid = torch.randn(3, 1, 10, 14, dtype=torch.float64)
    expected = F.interpolate(grid, scale_factor=2, mode="bicubic", align_corners=False)
    ours = upsample_twice(grid, bicubic_kernel_2d().double())
    assert torch.allclose(ours, expected, atol=1e-12)


def test_bad_settings_are_named():
    with pytest.raises(
        KeyError, match=r"unknown COOL-CHIC v1 preset 'fast'; valid presets: debug, paper"
    ):
        create_codec("coolchic-v1", preset="fast")
    with pytest.raises(ValueError, match=r"λ must be > 0"):
        create_codec("coolchic-v2", lmbda=0)


def test_paper_presets_follow_the_spec():
    v1, v2 = PRESETS[1]["paper"], PRESETS[2]["paper"]
    assert v1.total_iterations == 5 * 200 + 1000
    assert v2.total_iterations == 2800 + 6300
    assert [p.iterations for p in v2.phases] == [
        4000,
        500,
        100,
        100,
        100,
        500,
        500,
        200,
        100,
        100,
        100,
    ]
    assert (v1.keep, v2.keep) == ("best", "last")


def test_polyphase_upsampling_equals_the_transposed_convolution():
    from inr_models.coolchic.layers import upsample_twice_polyphase

    grid = torch.randint(-20, 20, (2, 1, 9, 13)).double()
    kernel = torch.randint(-64, 64, (1, 1, 8, 8)).double() / 64
    assert torch.equal(upsample_twice_polyphase(grid, kernel), upsample_twice(grid, kernel))


@pytest.mark.parametrize("name", ["coolchic-v1", "coolchic-v2"])
def test_odd_sized_image_round_trips(name, kodim01):
    image = np.ascontiguousarray(kodim01[:67, :93])  # odd sides: every grid level is cropped
    codec = create_codec(name, preset="debug", lmbda=1e-2)
    result = codec.encode(image)
    np.testing.assert_array_equal(create_codec(name).decode(result.data), result.reconstruction)
    assert result.reconstruction.shape == image.shape


def test_the_warm_up_trains_on_the_losss_warm_up_loss(crop64):
    """Cool-Chic 5's Wasserstein tuning warms its candidates up on MSE alone: a loss's
    ``warm_up_loss`` scores the warm-up, the loss itself every phase after it."""
    from inr_models.coolchic.presets import ARCHITECTURES
    from inr_models.coolchic.training import Fitter
    from losses import build_loss

    calls = {"warm-up": 0, "trained": 0}

    class Counted:
        def __init__(self, key, loss):
            self.key, self.loss = key, loss

        def __call__(self, x, y):
            calls[self.key] += 1
            return self.loss(x, y)

    trained = Counted("trained", build_loss("l1"))
    trained.warm_up_loss = Counted("warm-up", build_loss("mse"))
    target = torch.from_numpy(crop64.astype(np.float32) / 255).permute(2, 0, 1)[None]
    preset = PRESETS[1]["debug"]
    fitter = Fitter(ARCHITECTURES[1], preset, target, trained, lmbda=1e-3)
    fitter.fit()
    # Per warm-up iteration one loss, plus one per validation; nothing of the phases'.
    assert calls["warm-up"] >= preset.warmup_total
    warm_ups = [r for r in fitter.history if r["phase"].startswith("warm-up")]
    assert calls["warm-up"] == preset.warmup_total + len(warm_ups)
    assert calls["trained"] > preset.total_iterations - preset.warmup_total
    assert fitter.distortion is trained

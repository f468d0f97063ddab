"""NIF end to end on 256x256 Kodak crops with the debug preset (CPU), and its parts."""

import math

import pytest
import torch

from inr_models import CodecError, create_codec
from inr_models.nif.model import Nif, coordinate_grid, grid_encoding, positional_encoding
from inr_models.nif.presets import PAPER, WIDTHS, get_widths
from inr_models.nif.quantization import dequantize, fake_quantize, quantize, tensor_bound
from inr_models.nif.training import learning_rate, perturb

LOSSES = ["lc_ssim", "mse"]


@pytest.fixture(scope="module")
def encoded(crop256):
    return {loss: create_codec("nif", loss=loss, preset="debug", seed=3).encode(crop256)
            for loss in LOSSES}  # fmt: skip


def test_fresh_process_decode_equals_encoder_reconstruction(encoded, crop256, check_fresh_decodes):
    for decoded in check_fresh_decodes(list(encoded.values())):
        assert decoded.shape == crop256.shape


def test_rate_from_file_and_training_progress(encoded, crop256):
    from study.results.metrics import psnr

    for result in encoded.values():
        assert result.bpp(256, 256) == 8 * len(result.data) / 256**2
        assert result.stats["network_parameters"] == 17034
        assert psnr(crop256, result.reconstruction) > 18


def test_same_seed_same_file(encoded, crop256):
    again = create_codec("nif", loss="lc_ssim", preset="debug", seed=3).encode(crop256)
    assert again.data == encoded["lc_ssim"].data


def test_damaged_and_foreign_files(encoded):
    data, codec = encoded["mse"].data, create_codec("nif")
    with pytest.raises(CodecError, match="CRC-32 mismatch"):
        codec.decode(data[: len(data) // 2])
    with pytest.raises(CodecError, match="not an inr-study file"):
        codec.decode(b"GIF89a...")


def test_width_ladder_parameter_counts():
    counts = {name: sum(p.numel() for p in Nif(get_widths(name)).parameters()) for name in WIDTHS}
    assert counts["0_31"] == pytest.approx(17_000, rel=0.02)
    assert counts["280"] == pytest.approx(55_000, rel=0.02)
    assert counts["450"] == pytest.approx(153_000, rel=0.01)
    assert list(WIDTHS) == ["120", "0_31", "200", "280", "360", "450", "680"]
    # The declared order is the order of rate: rate matching and the page's curves rely on it.
    assert list(counts.values()) == sorted(counts.values())
    with pytest.raises(
        KeyError, match=r"unknown NIF configuration '1000'; valid configurations: 120, 0_31"
    ):
        get_widths("1000")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_grid_encoding_equals_the_per_pixel_one(dtype):
    for rows in (slice(None), slice(32, 64), slice(96, 200)):
        per_pixel = positional_encoding(coordinate_grid(101, 77, dtype, rows), 16)
        assert torch.equal(grid_encoding(101, 77, 16, dtype, rows), per_pixel)


def test_positional_encoding_layout():
    grid = coordinate_grid(5, 7)
    assert grid[0, 0].tolist() == [-1, -1] and grid[-1, -1].tolist() == [1, 1]
    encoded = positional_encoding(grid, 16)
    assert encoded.shape == (5, 7, 66)
    y = grid[..., 0]
    assert torch.allclose(encoded[..., 2], torch.sin(1.4**0 * math.pi * y))
    # Per frequency i, from column 2 + 4i: sin y, cos y, sin x, cos x.
    assert torch.allclose(encoded[..., 2 + 4 * 4 + 3], torch.cos(1.4**4 * math.pi * grid[..., 1]))


def test_quantization_truncates_in_float16():
    weights = torch.tensor([0.5, -0.25, 0.1, -1.0, 0.999])
    bound = tensor_bound(weights)
    integers = quantize(weights, bound)
    assert integers.dtype == torch.int8
    assert integers.tolist() == [63, -31, 12, -127, 126]  # truncation toward zero, not rounding
    expected = (integers.half() / torch.tensor(127, dtype=torch.float16) * bound).float()
    assert torch.equal(dequantize(integers, bound), expected)
    assert torch.equal(fake_quantize(weights), expected)


def test_warm_restart_schedule():
    stage = PAPER.fitting
    assert learning_rate(stage, 0, 0) == pytest.approx(6e-4)
    assert learning_rate(stage, 19, 0) == pytest.approx(1e-3)
    assert learning_rate(stage, 149, 0) == pytest.approx(6e-4 + 4e-4 / 150)
    assert learning_rate(stage, 19, 3) == pytest.approx(1e-3 * 0.99**3)


def test_perturbation_spares_first_layers():
    model = Nif(get_widths("0_31"))
    before = [layer.weight.clone() for layer in (*model.main, *model.modulator)]
    perturb(model, PAPER.fitting.perturbation, 0.5, torch.Generator().manual_seed(0))
    after = [layer.weight for layer in (*model.main, *model.modulator)]
    n_main = len(model.main)
    assert torch.equal(before[0], after[0]) and torch.equal(before[n_main], after[n_main])
    assert not torch.equal(before[1], after[1])


@pytest.mark.parametrize("grad", [True, False], ids=["training", "inference"])
def test_chunked_network_equals_the_layer_by_layer_siren(monkeypatch, grad):
    """The fused forward and its hand-written backward against autograd on the plain layers."""
    from inr_models.nif import fused

    monkeypatch.setattr(fused, "CHUNK_ROWS", 700)  # several chunks and a ragged last one
    torch.manual_seed(0)
    model = Nif(get_widths("0_31"))
    inputs = model.encode_inputs(coordinate_grid(40, 60))

    def plain():
        h = inputs[1]
        for layer in model.modulator[:-1]:
            h = torch.sin(fused.OMEGA * layer(h))
        period = fused.OMEGA + fused.MODULATION_SCALE * model.modulator[-1](h)
        h = inputs[0]
        for layer in model.main[:-1]:
            h = torch.sin(period * layer(h))
        return model.main[-1](h)

    with torch.set_grad_enabled(grad):
        found, expected = model(inputs), plain()
    torch.testing.assert_close(found, expected)
    if grad:
        params = list(model.parameters())
        weights = torch.randn_like(expected)
        found_grads = torch.autograd.grad(found, params, weights)
        for a, b in zip(found_grads, torch.autograd.grad(expected, params, weights), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)

"""The fast paths of COOL-CHIC equal the plain computations they replace.

Interleaved wavefronts (format 2), the chunked ARM/synthesis MLP used in training, the banded
exact synthesis and the fixed-point ARM of the decoder are each checked against the layer-by-layer
or element-by-element form.
"""

import numpy as np
import pytest
import torch

from inr_models.base import CodecError
from inr_models.coolchic import exact, fused
from inr_models.coolchic.layers import Arm, Synthesis, Upsampling, causal_offsets
from inr_models.coolchic.model import CoolChic, grid_shapes
from inr_models.coolchic.presets import ARCHITECTURES
from inr_models.coolchic.wavefront import Schedule, WavefrontArm
from inr_models.entropy import deterministic_exp, laplace_pmf


@pytest.mark.parametrize("rowcol", [2, 3])
def test_every_context_is_decoded_before_the_latent_that_needs_it(rowcol):
    shapes = grid_shapes(37, 51, 4)
    schedule = Schedule(shapes, bounds=(3, 0, 5, 1), rowcol=rowcol)  # grid 1 is not coded
    assert len(schedule.centres) == sum(h * w for g, (h, w) in enumerate(shapes) if g != 1)
    decoded_at = np.full(schedule.buffer_size, -1)
    neighbours = schedule.neighbours(causal_offsets(rowcol))
    for wave, (start, stop, bound) in enumerate(schedule.waves()):
        centre = schedule.centres[start:stop]
        grids = schedule.grid_of[start:stop]
        assert bound == max((3, 0, 5, 1)[g] for g in grids)
        context = neighbours[grids] + centre[:, None]
        # Context positions are padding (never decoded) or decoded on an earlier wavefront.
        assert (decoded_at[context] < wave).all()
        assert (decoded_at[centre] == -1).all()
        decoded_at[centre] = wave
    # Waves = those of the finest grid: the coarser grids ride along.
    height, width = shapes[0]
    assert wave + 1 == width + (rowcol + 1) * (height - 1)


@pytest.mark.parametrize("keep_bytes", [0, 1 << 30], ids=["recomputed", "kept"])
def test_fused_mlp_equals_layer_by_layer_with_gradients(monkeypatch, keep_bytes):
    monkeypatch.setattr(fused, "CHUNK_COLUMNS", 1000)  # several chunks and a ragged last one
    monkeypatch.setattr(fused, "KEEP_BYTES", keep_bytes)
    torch.manual_seed(0)
    x = torch.randn(12, 4321, requires_grad=True)
    weights = [torch.randn(12, 12, requires_grad=True) for _ in range(2)]
    weights.append(torch.randn(2, 12, requires_grad=True))
    biases = [torch.randn(w.shape[0], requires_grad=True) for w in weights]
    residual, relu = [True, False, False], [True, True, False]

    def layered():
        h = x
        for w, b, res, act in zip(weights, biases, residual, relu, strict=True):
            y = torch.addmm(b[:, None], w, h) + (h if res else 0)
            h = torch.relu(y) if act else y
        return h

    grad = torch.randn(2, 4321)
    expected = layered()
    expected_grads = torch.autograd.grad(expected, [x, *weights, *biases], grad)
    # One fit: a batch of one, its views of the same tensors.
    found = fused.fused_mlp(
        x[None], [w[None] for w in weights], [b[None] for b in biases], residual, relu
    )[0]
    found_grads = torch.autograd.grad(found, [x, *weights, *biases], grad)
    torch.testing.assert_close(found, expected)
    for a, b in zip(found_grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("version", [1, 2])
def test_training_forward_equals_the_plain_layers(version):
    """The modules' training path (fused) gives what the per-layer path gives."""
    torch.manual_seed(0)
    architecture = ARCHITECTURES[version]
    arm = Arm(architecture.arm_rowcol, architecture.arm_hidden)
    synthesis = Synthesis(architecture.n_grids, architecture.synthesis)
    for p in [*arm.parameters(), *synthesis.parameters()]:
        torch.nn.init.normal_(p, std=0.3)
    latents = [torch.randn(1, 1, h, w) * 3 for h, w in grid_shapes(40, 56, architecture.n_grids)]
    x = torch.randn(1, architecture.n_grids, 40, 56)

    def same(t):
        return t

    for found, expected in zip(arm(latents), arm(latents, same), strict=True):
        torch.testing.assert_close(found, expected)
    torch.testing.assert_close(synthesis(x), synthesis(x, same))


@pytest.mark.parametrize("version", [1, 2])
def test_banded_exact_synthesis_changes_no_bit(version, monkeypatch):
    torch.manual_seed(version)
    model = CoolChic(ARCHITECTURES[version], 45, 33).double()
    for p in model.synthesis.parameters():
        p.data = torch.round(torch.randn_like(p) * 64) / 256  # dyadic, like quantised weights
    latents = [torch.round(torch.randn(1, 1, h, w) * 4).double() for h, w in grid_shapes(45, 33, 7)]
    whole = exact.exact_image(model, latents)
    monkeypatch.setattr(exact, "SYNTHESIS_BAND_ROWS", 4)
    assert np.array_equal(exact.exact_image(model, latents), whole)


@torch.no_grad()
def _reference_arm(model: CoolChic, context: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The decoder's ARM written out in the encoder's terms: fixed_point after every layer."""
    round_to = exact.arm_rounding(model.architecture)
    h = torch.from_numpy(context)
    for i, (w, b) in enumerate(zip(model.arm.weights, model.arm.biases, strict=True)):
        out = torch.addmm(b[:, None], w, h.T).T + (h if model.arm.residual[i] else 0)
        h = round_to(out.clone())
        if i < len(model.arm.weights) - 1:
            h = torch.relu(h)
    return h[:, 0].numpy(), exact.scale_from_log(h[:, 1].numpy())


@pytest.mark.parametrize("version", [1, 2])
def test_fixed_point_wavefront_arm_equals_rounding_each_layer(version):
    torch.manual_seed(version)
    model = CoolChic(ARCHITECTURES[version], 8, 8, latents=False).double()
    for p in model.arm.parameters():
        p.data = torch.round(torch.randn_like(p) * 256) / 1024
    arm = WavefrontArm(model, latent_bound=20)
    context = np.round(np.random.default_rng(version).normal(0, 6, (500, len(arm.offsets))))
    mu, scale = arm(context * arm.unit)
    expected_mu, expected_scale = _reference_arm(model, context)
    assert np.array_equal(mu, expected_mu)
    assert np.array_equal(scale, expected_scale)


def test_v1_arm_rounds_as_the_papers_fork():
    """The fork's fixed-point layer: (W·x + b + 256) // 256 on integers (x, W in 2^-8 units, b in
    2^-16), ``+ x·256`` inside for a residual layer, ReLU between layers."""
    torch.manual_seed(1)
    model = CoolChic(ARCHITECTURES[1], 8, 8, latents=False).double()
    for p in model.arm.parameters():
        p.data = torch.round(torch.randn_like(p) * 64) / 128  # steps of 2^-7, as quantised
    context = np.random.default_rng(1).integers(-9, 10, (400, 12))
    x = context * 256
    last = len(model.arm.weights) - 1
    for i, (w, b) in enumerate(zip(model.arm.weights, model.arm.biases, strict=True)):
        w_int = np.rint(w.detach().numpy() * 256).astype(np.int64)
        b_int = np.rint(b.detach().numpy() * 65536).astype(np.int64)
        acc = x @ w_int.T + b_int + (x * 256 if model.arm.residual[i] else 0)
        x = (acc + 256) // 256
        if i < last:
            x = np.maximum(x, 0)
    arm = WavefrontArm(model, latent_bound=9)
    mu, scale = arm(context * arm.unit)
    assert np.array_equal(mu, x[:, 0] / 256)
    assert np.array_equal(scale, exact.scale_from_log(x[:, 1] / 256))


def test_an_arm_that_can_leave_the_exact_range_is_checked_on_every_wavefront():
    model = CoolChic(ARCHITECTURES[1], 8, 8, latents=False).double()
    model.arm.weights[0].data.fill_(100.0)  # 12 taps × 100 × 100 latent bound > 2^16
    arm = WavefrontArm(model, latent_bound=100)
    assert arm.checked
    assert not WavefrontArm(model, latent_bound=1).checked
    with pytest.raises(CodecError, match="outside the exactly decodable range"):
        arm(np.full((3, 12), 100.0 * arm.unit))


def test_laplace_pmf_is_the_discretised_laplace():
    rng = np.random.default_rng(0)
    mu, scale = rng.normal(0, 3, 400), np.exp(rng.uniform(-4, 4, 400))
    pmf = laplace_pmf(mu, scale, -6, 6)

    def cdf(x):
        return np.where(x < mu[:, None], 0.5 * np.exp((x - mu[:, None]) / scale[:, None]),
                        1 - 0.5 * np.exp(-(x - mu[:, None]) / scale[:, None]))  # fmt: skip

    edges = np.arange(-6.5, 7.0)
    expected = np.diff(cdf(edges), axis=1)
    expected[:, 0] += cdf(edges[:1])[:, 0]  # tails folded into the end symbols
    expected[:, -1] += 1 - cdf(edges[-1:])[:, 0]
    np.testing.assert_allclose(pmf, np.maximum(expected, 2.0**-20), rtol=1e-8, atol=1e-12)
    x = np.linspace(-700, 700, 10001)
    np.testing.assert_allclose(deterministic_exp(x), np.exp(x), rtol=3e-10)


def test_the_synthesis_halo_is_the_reach_of_its_3x3_layers():
    assert Synthesis(7, ARCHITECTURES[2].synthesis).halo() == 2
    assert Synthesis(7, ARCHITECTURES[1].synthesis).halo() == 0


@pytest.mark.parametrize("rowcol", [2, 3])
def test_causal_contexts_equal_stacked_shifted_views_with_gradients(rowcol):
    from inr_models.coolchic.layers import _CausalContexts

    torch.manual_seed(rowcol)
    # Two fits' grids at once: each fit's contexts come from its own grids only.
    grids = [torch.randn(2, 1, h, w, requires_grad=True) for h, w in grid_shapes(23, 31, 5)]
    offsets = causal_offsets(rowcol)

    def stacked(plane):
        height, width = plane.shape[-2:]
        padded = torch.nn.functional.pad(plane, (rowcol, rowcol, rowcol, 0))
        views = [padded[rowcol + dy : rowcol + dy + height, rowcol + dx : rowcol + dx + width]
                 for dy, dx in offsets]  # fmt: skip
        return torch.stack(views).view(len(offsets), -1)

    expected = torch.stack(
        [torch.cat([stacked(grid[fit, 0]) for grid in grids], dim=1) for fit in range(2)]
    )
    found = _CausalContexts.apply(rowcol, offsets, *grids)
    assert torch.equal(found, expected)
    weights = torch.randn_like(expected)
    for a, b in zip(
        torch.autograd.grad(found, grids, weights),
        torch.autograd.grad(expected, grids, weights),
        strict=True,
    ):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(("height", "width"), [(1, 1), (3, 2), (24, 37)])
def test_v1_upsampling_gradient_is_pytorchs_bicubic_adjoint(height, width):
    """The hand-written backward of v1's ×2 bicubic equals autograd through F.interpolate, borders
    and one-pixel grids included."""
    x = torch.randn(3, 1, height, width, dtype=torch.float64, requires_grad=True)
    grad = torch.randn(3, 1, 2 * height, 2 * width, dtype=torch.float64)
    ours = Upsampling(learned=False).level(x, 2 * height, 2 * width)
    reference = torch.nn.functional.interpolate(
        x, scale_factor=2, mode="bicubic", align_corners=False
    )
    assert torch.equal(ours, reference)
    (mine,) = torch.autograd.grad(ours, x, grad)
    (theirs,) = torch.autograd.grad(reference, x, grad)
    assert torch.allclose(mine, theirs, rtol=0, atol=1e-12)

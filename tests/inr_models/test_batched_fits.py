"""Batched fits: B COOL-CHIC-structured fits in lockstep, their forward passes as one batch, each
getting what it gets alone (on a CPU, bit for bit where every fit's planes keep the alignment a
single fit's have: sides in multiples of 2^(grids−1)·… as Kodak's and its 256-px crops)."""

import time

import numpy as np
import pytest
import torch

from inr_models import create_codec, get_codec_class
from inr_models.coolchic.model import CoolChic, forward_many
from inr_models.coolchic.presets import ARCHITECTURES
from study.data.imageio import load_rgb

# Sides whose grids and latent counts are multiples of 16 values (64 bytes): 64 × 96 has 8,192
# latents over its seven grids, as a 256-px crop has 87,376 and a Kodak image 524,256.
ALIGNED = (64, 96)
# (loss, λ, seed, image index): different losses, rates, seeds and images in one batch.
JOBS = [("mse", 1e-3, 0, 0), ("l1", 3e-3, 0, 0), ("lc_ssim", 1e-4, 2, 3)]


@pytest.fixture(autouse=True)
def one_thread():
    """Fits run with one torch thread each (``work``'s and the engine's default): with more, a
    sum's split across threads depends on the shape it is taken over, batched or not."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def crops(kodak_records) -> list[np.ndarray]:
    height, width = ALIGNED
    return [load_rgb(record.path)[:height, :width].copy() for record in kodak_records[:4]]


def _codecs(name: str, jobs=JOBS):
    return [create_codec(name, loss=loss, lmbda=lmbda, seed=seed, preset="debug")
            for loss, lmbda, seed, _ in jobs]  # fmt: skip


@pytest.mark.parametrize("name", ["coolchic-v1", "coolchic-v2", "c3"])
def test_a_batch_of_three_fits_gives_each_fit_its_single_fit(name, crops):
    images = [crops[index] for *_, index in JOBS]
    alone = [codec.encode(image) for codec, image in zip(_codecs(name), images, strict=True)]
    start = time.perf_counter()
    together = get_codec_class(name).encode_together(list(zip(_codecs(name), images, strict=True)))
    wall = time.perf_counter() - start
    rerun = get_codec_class(name).encode_together(list(zip(_codecs(name), images, strict=True)))
    for single, batched, again in zip(alone, together, rerun, strict=True):
        assert batched.data == single.data == again.data
        np.testing.assert_array_equal(batched.reconstruction, single.reconstruction)
        assert batched.stats["final_loss"] == single.stats["final_loss"]
        assert batched.stats["iterations"] == single.stats["iterations"]
        assert (batched.stats["fit_batch"], single.stats["fit_batch"]) == (3, 1)
        # Its share of the batch's fitting and its own packaging: less than the batch took.
        assert 0 < batched.stats["encode_seconds"] < wall


def test_a_batch_of_one_is_the_single_fit_and_a_failed_fit_leaves_the_others(crops, monkeypatch):
    from inr_models.coolchic import training

    codecs = _codecs("coolchic-v1", JOBS[:2])
    single = codecs[0].encode(crops[0])
    (alone,) = get_codec_class("coolchic-v1").encode_together([(codecs[0], crops[0])])
    assert alone.data == single.data
    # The second fit diverges at its first validation: the first still finishes, bit for bit.
    validate = training.Fitter.validate

    def diverge(self, model, phase_name, integer_arm=False):
        if self.lmbda == JOBS[1][1]:
            raise training.DivergedError("non-finite loss (nan) in a test")
        return validate(self, model, phase_name, integer_arm)

    monkeypatch.setattr(training.Fitter, "validate", diverge)
    kept, failed = get_codec_class("coolchic-v1").encode_together(
        [(codecs[0], crops[0]), (codecs[1], crops[0])]
    )
    assert kept.data == single.data
    assert isinstance(failed, training.DivergedError)


@pytest.mark.parametrize("version", [1, 2])
def test_a_batched_training_step_gives_each_fit_its_own_gradients(version):
    """One step of three fits with their own noise: outputs, rates and every parameter's
    gradient equal the fits' own, bit for bit, at Kodak's size."""
    torch.manual_seed(version)
    models = [CoolChic(ARCHITECTURES[version], 512, 768) for _ in range(3)]
    for model in models:
        for parameter in model.parameters():
            torch.nn.init.normal_(parameter, std=0.3)
    modes = ["noise", "ste", "noise"]

    def step(batched: bool):
        generators = [torch.Generator().manual_seed(seed) for seed in range(3)]
        for model in models:
            model.zero_grad(set_to_none=True)
        if batched:
            outputs = forward_many(models, modes, generators)
        else:
            outputs = [
                m(mode, None, g) for m, mode, g in zip(models, modes, generators, strict=True)
            ]
        losses = [image.square().mean() + 1e-3 * bits for image, bits in outputs]
        torch.autograd.backward(losses)
        grads = [[p.grad.clone() for p in m.parameters() if p.grad is not None] for m in models]
        return [(image.detach(), bits.detach()) for image, bits in outputs], grads

    (batched, batched_grads), (alone, alone_grads) = step(True), step(False)
    for (image, bits), (image_alone, bits_alone) in zip(batched, alone, strict=True):
        assert torch.equal(image, image_alone) and torch.equal(bits, bits_alone)
    for grads, grads_alone in zip(batched_grads, alone_grads, strict=True):
        assert len(grads) == len(grads_alone)
        assert all(torch.equal(a, b) for a, b in zip(grads, grads_alone, strict=True))


@pytest.mark.parametrize("version", [1, 2])
def test_the_gpu_kernels_of_a_batch_compute_each_fits_step(version, monkeypatch):
    """A GPU runs B fits' convolutions as one grouped kernel (``batched_kernels``): exercised
    here on the CPU, each fit's outputs and gradients agree with its own to float32 rounding."""
    from inr_models.coolchic import layers

    torch.manual_seed(version)
    models = [CoolChic(ARCHITECTURES[version], 64, 96) for _ in range(3)]
    for model in models:  # latents as a fit has them; the networks as they start
        for grid in model.latents:
            torch.nn.init.normal_(grid, std=2.0)

    def step(batched: bool):
        generators = [torch.Generator().manual_seed(seed) for seed in range(3)]
        for model in models:
            model.zero_grad(set_to_none=True)
        if batched:
            with monkeypatch.context() as patched:
                patched.setattr(layers, "batched_kernels", lambda x: True)
                outputs = forward_many(models, ["noise"] * 3, generators)
        else:
            outputs = [m("noise", None, g) for m, g in zip(models, generators, strict=True)]
        torch.autograd.backward([image.square().mean() + 1e-3 * bits for image, bits in outputs])
        return outputs, [[p.grad for p in m.parameters() if p.grad is not None] for m in models]

    (batched, batched_grads), (alone, alone_grads) = step(True), step(False)
    for (image, bits), (image_alone, bits_alone) in zip(batched, alone, strict=True):
        torch.testing.assert_close(image, image_alone)
        torch.testing.assert_close(bits, bits_alone)
    for grads, grads_alone in zip(batched_grads, alone_grads, strict=True):
        for a, b in zip(grads, grads_alone, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("version", [1, 2])
def test_each_fits_quantised_latents_do_not_depend_on_its_place_in_a_batch(version):
    """Eight fits' gains (56 values: past one SIMD vector on any CPU) and latents under
    training's noise, all at once: each fit's grids as it gets them alone."""
    from inr_models.coolchic.model import _quantized_grids

    models = []
    for seed in range(8):
        torch.manual_seed(seed)
        model = CoolChic(ARCHITECTURES[version], *ALIGNED)
        with torch.no_grad():
            model.log2_gains.uniform_(-3.0, 6.0)
            for grid in model.latents:
                grid.normal_(0.0, 3.0)
        models.append(model)

    def generators():
        return [torch.Generator().manual_seed(seed) for seed in range(8)]

    together = _quantized_grids(models, ["noise"] * 8, generators())
    for index, (model, generator) in enumerate(zip(models, generators(), strict=True)):
        alone = model.quantized_latents("noise", generator)
        for batched, single in zip(together, alone, strict=True):
            assert torch.equal(batched[index : index + 1], single)

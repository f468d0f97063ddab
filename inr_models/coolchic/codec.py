"""COOL-CHIC v1 and v2 behind the common Codec interface.

``CoolChicCodec`` serves any codec of the COOL-CHIC structure: a subclass declares its
architecture and presets, and how it fits (``inr_models.c3`` brings C3's recipe).
"""

import contextlib
import dataclasses
import time

import numpy as np
import torch

from inr_models.base import ENCODE_SECONDS, Encoded, RateAxis, check_rgb_image
from inr_models.container import pack, unpack
from inr_models.coolchic.bitstream import GroupHeader, Header, ModuleGroups
from inr_models.coolchic.exact import LATENT_LIMIT, exact_image, exact_laplace_parameters
from inr_models.coolchic.model import CoolChic, grid_shapes
from inr_models.coolchic.presets import ARCHITECTURES, PRESETS, Architecture
from inr_models.coolchic.quantization import QuantizedGroup, QuantizedModule, load_group
from inr_models.coolchic.training import FitResult, Fitter, Steps, run_together
from inr_models.coolchic.wavefront import decode_latents, encode_latents
from inr_models.entropy import (
    LaplaceDecoder,
    encode_laplace,
    finish,
    laplace_scale_of,
    new_encoder,
)
from inr_models.fitted import FittedCodec
from inr_models.registry import register_codec


class CoolChicCodec(FittedCodec):
    # J = D + λ·R: a larger λ buys fewer bits with more distortion.
    rate_axis = RateAxis(
        name="lmbda",
        config_key="lmbdas",
        label="λ",
        kind=float,
        default=1e-3,
        low=1e-8,
        high=10.0,
        search_range=(1e-4, 2e-2),
        log=True,
        rate_increases=False,
        help="rate weight λ in J = D + λ·R (larger: fewer bits)",
    )
    published_loss = "mse"
    fitter = Fitter  # the training recipe
    # 2: latent wavefronts of all grids interleaved (wavefront.py), exp's polynomial in Horner
    # form, v1's ARM rounding ((acc + 256) // 256) and odd-side upsampling as the paper's fork.
    format_version = 2
    architecture: Architecture

    def __init__(
        self,
        loss: str = "mse",
        lmbda: float = 1e-3,
        preset: str = "paper",
        device: str = "cpu",
        seed: int = 0,
        convention: str = "coolchic",
        progress: bool = False,
        on_validation=None,
    ):
        if not lmbda > 0:
            raise ValueError(f"{self.name}: λ must be > 0, got {lmbda}")
        super().__init__(
            loss=loss,
            convention=convention,
            preset=self.get_preset(preset),
            device=device,
            seed=seed,
            progress=progress,
            on_validation=on_validation,
        )
        self.lmbda = float(lmbda)

    def settings(self) -> dict:
        return {**super().settings(), "lmbda": self.lmbda}

    def encode(self, image: np.ndarray) -> Encoded:
        result = self.encode_together([(self, image)])[0]
        if isinstance(result, Exception):
            raise result
        return result

    @classmethod
    def encode_together(cls, jobs: list[tuple[FittedCodec, np.ndarray]]) -> list:
        """B fits in lockstep, their forward passes batched (``training.run_together``): each
        job's fit follows its own recipe, seed, loss and λ; images may differ in size (each size
        is a batch of its own). On a CPU with one thread, each fit gets what it gets alone, bit
        for bit, where its arrays keep a single fit's alignment (every Kodak image and 256-px
        crop); elsewhere BLAS may round B fits' thin products (a few output rows) differently,
        and fits drift apart as any reordering of float32 sums makes them."""
        if not all(isinstance(codec, CoolChicCodec) for codec, _ in jobs):
            return super().encode_together(jobs)
        for _, image in jobs:
            check_rgb_image(image)
        start = time.perf_counter()
        with contextlib.ExitStack() as bars:
            recipes = [
                codec._fit_steps(image, bars.enter_context(codec.progress_bar()))
                for codec, image in jobs
            ]
            fits = run_together(recipes)
        share = (time.perf_counter() - start) / len(jobs)
        results = []
        for (codec, _), fit in zip(jobs, fits, strict=True):
            if isinstance(fit, Exception):
                results.append(fit)
                continue
            packaging = time.perf_counter()
            quantised = _quantise(fit)
            data = codec._write(quantised)
            reconstruction = exact_image(quantised.model, quantised.latents)
            stats = _stats(fit, packaging - share)  # its share of the fitting, then its own
            results.append(Encoded(data, {**stats, "fit_batch": len(jobs)}, reconstruction))
        return results

    def _fit_steps(self, image: np.ndarray, bar) -> Steps:
        """The fit of ``image`` as a recipe (``training.Steps``): latents and network, the
        network quantised, moved to the CPU. Its training noise comes from a generator of its
        own, in the state the default one would be in had the fit run alone, so fits beside it
        do not change its numbers."""
        torch.manual_seed(self.seed)
        target = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        fitter = self.fitter(
            self.architecture,
            self.preset,
            target.to(self.device),
            distortion=self.loss,
            lmbda=self.lmbda,
            on_iteration=bar.update,
            on_validation=self.on_validation,
        )
        recipe = fitter.fit_steps()
        request = next(recipe)  # builds the fit's models from the seeded default generator
        fitter.generator = _continued_generator(self.device)
        while True:
            loss = yield request
            try:
                request = recipe.send(loss)
            except StopIteration as done:
                fit = done.value
                fit.model = fit.model.cpu()
                return fit

    def _write(self, quantised: "Quantised") -> bytes:
        """The file: range-codes the network then the latents, and heads them with the header."""
        arch, model = self.architecture, quantised.model
        encoder = new_encoder()
        modules = _write_network(encoder, quantised.network)
        latent_bounds = _write_latents(encoder, quantised, arch.arm_rowcol)
        header = Header(
            height=model.height,
            width=model.width,
            n_grids=arch.n_grids,
            arm_rowcol=arch.arm_rowcol,
            arm_fraction_bits=arch.arm_fraction_bits,
            arm_hidden=arch.arm_hidden,
            synthesis=arch.synthesis,
            learned_upsampling=arch.learned_upsampling,
            modules=modules,
            latent_bounds=latent_bounds,
        )
        return pack(self, header.write(), finish(encoder))

    def decode(self, data: bytes) -> np.ndarray:
        header, _, model, decoder, _ = self._read_network(data)
        shapes = grid_shapes(header.height, header.width, header.n_grids)
        grids = decode_latents(decoder, model, shapes, header.latent_bounds)
        latents = [torch.from_numpy(grid)[None, None] for grid in grids]
        decoder.finish("the last latent")
        return exact_image(model, latents)

    def rate_parts(self, data: bytes) -> dict[str, int]:
        """The header's bits, each network module's (the coded stream holds the network first,
        then the latents), and the latents' (the rest)."""
        _, payload, _, decoder, modules = self._read_network(data)
        network = decoder.bits_read()
        return {
            "header_bits": 8 * (len(data) - len(payload)),
            "network_bits": network,
            "latent_bits": 8 * len(payload) - network,
            **{f"network_bits_{name}": bits for name, bits in modules.items()},
        }

    def _read_network(self, data: bytes):
        """(header, payload, model holding the file's network, decoder positioned at the
        latents, bits per network module) of file ``data``."""
        header_bytes, payload = unpack(data, self)
        header = Header.read(header_bytes, self.architecture, self.name)
        # The header holds exactly this version's architecture (Header.read checks it), and the
        # latents come from the payload: only the network is built.
        model = CoolChic(self.architecture, header.height, header.width, latents=False).double()
        decoder = LaplaceDecoder(payload)
        modules = _read_network(decoder, header, model)
        return header, payload, model, decoder, modules


def _continued_generator(device: torch.device) -> torch.Generator:
    """A generator in the state the default one of ``device`` is in now."""
    generator = torch.Generator(device)
    if device.type == "cuda":
        generator.set_state(torch.cuda.get_rng_state(device))
    else:
        generator.set_state(torch.get_rng_state())
    return generator


@dataclasses.dataclass(frozen=True, kw_only=True)
class Quantised:
    """What the file holds, and the float64 model that decodes it exactly."""

    latents: list[torch.Tensor]  # integer values in float64, finest grid first
    model: CoolChic  # float64; its network holds exactly the quantised values
    network: dict[str, QuantizedModule]


def _quantise(fit: FitResult) -> Quantised:
    model = fit.model
    latents = [
        torch.round(grid * gain).clamp(-LATENT_LIMIT, LATENT_LIMIT).detach().double()
        for grid, gain in zip(model.latents, model.gains().detach(), strict=True)
    ]
    exact = CoolChic(model.architecture, model.height, model.width).double()
    for name, module in exact.network_modules().items():
        load_group(list(module.weights), fit.network[name].weights)
        load_group(list(module.biases), fit.network[name].biases)
    return Quantised(latents=latents, model=exact, network=fit.network)


def _stats(fit: FitResult, start: float) -> dict:
    model, last = fit.model, fit.validation_history[-1]
    network_bits = sum(m.rate_bits() for m in fit.network.values())
    macs = model.macs_per_pixel()
    return {
        "iterations": fit.iterations,
        "warmup_iterations": fit.warmup_iterations,
        "final_model_iterations": fit.final_model_iterations,
        ENCODE_SECONDS: time.perf_counter() - start,
        "bpp_estimate": last["bpp_estimate"] + network_bits / (model.height * model.width),
        "mac_per_pixel": macs["total"],
        "mac_per_pixel_arm": macs["arm"],
        "mac_per_pixel_synthesis": macs["synthesis"],
        "mac_per_pixel_upsampling": macs["upsampling"],
        "network_parameters": sum(
            p.numel() for m in model.network_modules().values() for p in m.parameters()
        ),
        "latent_values": model.n_latents(),
        "final_loss": last["loss"],
    }


def _write_network(encoder, network: dict[str, QuantizedModule]) -> ModuleGroups:
    """Range-codes each module's weights then biases; returns how each group was coded."""
    return {
        name: (_write_group(encoder, module.weights), _write_group(encoder, module.biases))
        for name, module in network.items()
    }


def _write_group(encoder, group: QuantizedGroup) -> GroupHeader | None:
    count = group.integers.size
    if count == 0:
        return None  # v2's upsampling has no biases
    bound, scale = int(np.abs(group.integers).max()), laplace_scale_of(group.integers)
    if bound:  # an all-zero group is known from its bound alone (one symbol: nothing to code)
        scales = np.full(count, scale, np.float64)
        encode_laplace(encoder, group.integers, np.zeros(count), scales, -bound, bound)
    return GroupHeader(exponent=group.exponent, bound=bound, scale=float(scale))


def _write_latents(encoder, quantised: Quantised, arm_rowcol: int) -> tuple[int, ...]:
    """Range-codes the non-zero grids under the ARM's Laplace; returns each grid's bound."""
    mu, scale = exact_laplace_parameters(quantised.model, quantised.latents)
    grids = [grid[0, 0].numpy() for grid in quantised.latents]
    return encode_latents(encoder, grids, mu, scale, arm_rowcol)


def _read_network(decoder: LaplaceDecoder, header: Header, model: CoolChic) -> dict[str, int]:
    """Reads each module's weights and biases into ``model``; returns the bits each took."""
    bits = {}
    for name, module in model.network_modules().items():
        before = decoder.bits_read()
        weights, biases = header.modules[name]
        load_group(list(module.weights), _read_group(decoder, weights, module.weights))
        if biases is not None:
            load_group(list(module.biases), _read_group(decoder, biases, module.biases))
        bits[name] = decoder.bits_read() - before
    return bits


def _read_group(decoder: LaplaceDecoder, group: GroupHeader, tensors) -> QuantizedGroup:
    count = sum(t.numel() for t in tensors)
    if group.bound == 0:
        return QuantizedGroup(exponent=group.exponent, integers=np.zeros(count, np.int64))
    scale = np.full(count, np.float32(group.scale), np.float64)
    integers = decoder.decode(np.zeros(count), scale, -group.bound, group.bound)
    return QuantizedGroup(exponent=group.exponent, integers=integers)


@register_codec("coolchic-v1")
class CoolChicV1(CoolChicCodec):
    architecture = ARCHITECTURES[1]
    preset_table = PRESETS[1]
    label = "COOL-CHIC v1"
    file_id = 1


@register_codec("coolchic-v2")
class CoolChicV2(CoolChicCodec):
    architecture = ARCHITECTURES[2]
    preset_table = PRESETS[2]
    quick_preset = "short"
    label = "COOL-CHIC v2"
    file_id = 2

"""COOL-CHIC v1 and v2 behind the common Codec interface."""

import dataclasses
import time

import numpy as np
import torch

from inr_models.base import CodecError, Encoded, check_rgb_image
from inr_models.container import pack, unpack
from inr_models.coolchic.bitstream import GroupHeader, Header
from inr_models.coolchic.exact import (
    LATENT_LIMIT,
    WavefrontArm,
    encode_latents,
    exact_image,
    exact_laplace_parameters,
)
from inr_models.coolchic.model import CoolChic, grid_shapes
from inr_models.coolchic.presets import ARCHITECTURES, PRESETS, Architecture, get_preset
from inr_models.coolchic.quantization import QuantizedGroup, QuantizedModule, load_group
from inr_models.coolchic.training import Fitter
from inr_models.entropy import (
    decode_laplace,
    encode_laplace,
    finish,
    laplace_scale_of,
    new_decoder,
    new_encoder,
)
from inr_models.fitted import FittedCodec
from inr_models.registry import register_codec


class CoolChicCodec(FittedCodec):
    rate_parameter = "lmbda"
    version: int

    @classmethod
    def available_presets(cls) -> list[str]:
        return list(PRESETS[cls.version])

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
            preset=get_preset(self.version, preset),
            device=device,
            seed=seed,
            progress=progress,
            on_validation=on_validation,
        )
        self.lmbda = float(lmbda)

    @property
    def architecture(self) -> Architecture:
        return ARCHITECTURES[self.version]

    def settings(self) -> dict:
        return {**super().settings(), "lmbda": self.lmbda}

    def encode(self, image: np.ndarray) -> Encoded:
        check_rgb_image(image)
        height, width = image.shape[:2]
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        target = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with self.progress_bar() as bar:
            fit = Fitter(
                self.architecture,
                self.preset,
                target.to(self.device),
                self.loss,
                self.lmbda,
                bar.update,
                self.on_validation,
            ).fit()
        model = fit.model.cpu()
        latents = [
            torch.round(grid * gain).clamp(-LATENT_LIMIT, LATENT_LIMIT).detach()
            for grid, gain in zip(model.latents, model.gains().detach(), strict=True)
        ]
        exact_model = _exact_copy(model, fit.network)
        latents64 = [grid.double() for grid in latents]
        mu, scale = exact_laplace_parameters(exact_model, latents64)

        encoder = new_encoder()
        module_headers = {
            name: _encode_module(encoder, quantized) for name, quantized in fit.network.items()
        }
        bounds = encode_latents(
            encoder, [g[0, 0].numpy() for g in latents64], mu, scale, self.architecture.arm_rowcol
        )
        arch = self.architecture
        header = Header(
            height,
            width,
            arch.n_grids,
            arch.arm_rowcol,
            arch.arm_fraction_bits,
            arch.arm_hidden,
            arch.synthesis,
            arch.learned_upsampling,
            module_headers,
            tuple(bounds),
        )
        data = pack(self.name, header.write(), finish(encoder))
        reconstruction = exact_image(exact_model, latents64)
        macs = model.macs_per_pixel()
        last = fit.validation_history[-1]
        stats = {
            "iterations": fit.iterations,
            "encode_seconds": time.perf_counter() - start,
            "bpp_estimate": last["bpp_estimate"]
            + sum(m.rate_bits() for m in fit.network.values()) / (height * width),
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
        return Encoded(data, stats, reconstruction)

    def decode(self, data: bytes) -> np.ndarray:
        header_bytes, payload = unpack(data, self.name)
        header = Header.read(header_bytes)
        arch = dataclasses.replace(
            ARCHITECTURES[self.version],
            n_grids=header.n_grids,
            arm_rowcol=header.arm_rowcol,
            arm_hidden=header.arm_hidden,
            synthesis=header.synthesis,
            learned_upsampling=header.learned_upsampling,
            arm_fraction_bits=header.arm_fraction_bits,
        )
        try:
            model = CoolChic(arch, header.height, header.width).double()
        except ValueError as error:
            raise CodecError(f"corrupted header: {error}") from None
        decoder = new_decoder(payload)
        for name, module in model.network_modules().items():
            weights_header, biases_header = header.modules[name]
            load_group(list(module.weights), _decode_group(decoder, weights_header, module.weights))
            if biases_header is not None:
                load_group(
                    list(module.biases), _decode_group(decoder, biases_header, module.biases)
                )
        arm = WavefrontArm(model)
        shapes = grid_shapes(header.height, header.width, header.n_grids)
        latents = [
            torch.from_numpy(arm.decode_grid(decoder, h, w, bound))[None, None]
            for (h, w), bound in zip(shapes, header.latent_bounds, strict=True)
        ]
        return exact_image(model, latents)


def _exact_copy(model: CoolChic, network: dict[str, QuantizedModule]) -> CoolChic:
    """A float64 twin of ``model`` whose network holds exactly the quantised values."""
    exact = CoolChic(model.architecture, model.height, model.width).double()
    for name, module in exact.network_modules().items():
        load_group(list(module.weights), network[name].weights)
        load_group(list(module.biases), network[name].biases)
    return exact


def _encode_module(encoder, quantized: QuantizedModule) -> tuple[GroupHeader, GroupHeader | None]:
    headers = []
    for group in (quantized.weights, quantized.biases):
        if group.integers.size == 0:
            headers.append(None)
            continue
        bound, scale = int(np.abs(group.integers).max()), laplace_scale_of(group.integers)
        zeros = np.zeros(group.integers.size)
        encode_laplace(
            encoder,
            group.integers,
            zeros,
            np.full(group.integers.size, scale, np.float64),
            -bound,
            bound,
        )
        headers.append(GroupHeader(group.exponent, bound, float(scale)))
    return headers[0], headers[1]


def _decode_group(decoder, header: GroupHeader, tensors) -> QuantizedGroup:
    count = sum(t.numel() for t in tensors)
    scale = np.full(count, np.float32(header.scale), np.float64)
    integers = decode_laplace(decoder, np.zeros(count), scale, -header.bound, header.bound)
    return QuantizedGroup(header.exponent, integers)


@register_codec("coolchic-v1")
class CoolChicV1(CoolChicCodec):
    version = 1


@register_codec("coolchic-v2")
class CoolChicV2(CoolChicCodec):
    version = 2

"""NIF behind the common Codec interface."""

import time

import numpy as np
import torch

from inr_models.base import ENCODE_SECONDS, Encoded, RateAxis, check_rgb_image
from inr_models.container import pack, unpack
from inr_models.fitted import FittedCodec
from inr_models.nif.bitstream import RENDER_ROWS, Header, pack_integers, unpack_integers
from inr_models.nif.model import Nif, coordinate_grid
from inr_models.nif.presets import PRESETS, WIDTHS, get_widths
from inr_models.nif.quantization import dequantize, quantize, tensor_bound
from inr_models.nif.training import NifFitter
from inr_models.registry import register_codec


def _tensors(model: Nif) -> list[torch.Tensor]:
    """Every parameter in file order: main layers, then modulator layers; weight then bias."""
    return [p for layer in (*model.main, *model.modulator) for p in (layer.weight, layer.bias)]


@torch.no_grad()
def render(model: Nif, height: int, width: int) -> np.ndarray:
    """The decoded image: float64 inference band by band, then ((y + 1) / 2) clamped, ×255 and
    truncated to 8 bits, as the reference decoder does (truncation, not rounding)."""
    model = model.double()
    image = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, RENDER_ROWS):
        band = slice(top, top + RENDER_ROWS)
        inputs = model.encode_grid(height, width, torch.float64, band)
        # Element-wise from here: converting band by band gives the whole image's values.
        pixels = ((model(inputs) + 1) / 2).clamp(0, 1) * 255
        image[band] = pixels.to(torch.uint8).cpu().numpy()
    return image


@register_codec("nif")
class NifCodec(FittedCodec):
    # NIF's rate is set by its network's widths, one of the published configurations.
    rate_axis = RateAxis(
        name="configuration",
        config_key="configs",
        label="width",
        kind=str,
        default="0_31",
        choices=tuple(WIDTHS),
        flag="--config",
        help="width configuration (the network's size sets the rate)",
    )
    published_loss = "lc_ssim(0.01)"
    file_id = 3
    preset_table = PRESETS
    label = "NIF"

    def __init__(
        self,
        loss: str = "lc_ssim",
        configuration: str = "0_31",
        preset: str = "paper",
        device: str = "cpu",
        seed: int = 0,
        convention: str = "nif",
        progress: bool = False,
        on_validation=None,
    ):
        super().__init__(
            loss=loss,
            convention=convention,
            preset=self.get_preset(preset),
            device=device,
            seed=seed,
            progress=progress,
            on_validation=on_validation,
        )
        self.configuration, self.widths = configuration, get_widths(configuration)

    def settings(self) -> dict:
        return {**super().settings(), "configuration": self.configuration}

    def encode(self, image: np.ndarray) -> Encoded:
        check_rgb_image(image)
        height, width = image.shape[:2]
        start = time.perf_counter()
        torch.manual_seed(self.seed)
        generator = torch.Generator().manual_seed(self.seed)
        model = Nif(self.widths).to(self.device)
        target = torch.from_numpy(image.astype(np.float32) / 127.5 - 1).permute(2, 0, 1)
        grid = coordinate_grid(height, width)
        # NIF trains on one polyphase sub-image at a time, so SSIM terms see sub-images directly.
        distortion = self.loss.per_sub_image()
        with self.progress_bar() as bar:
            fitter = NifFitter(
                model,
                self.preset,
                grid.to(self.device),
                target.to(self.device),
                distortion,
                generator,
                bar.update,
                self.on_validation,
            )
            model = fitter.fit().cpu()
        tensors = _tensors(model)
        bounds = [tensor_bound(t) for t in tensors]
        integers = [quantize(t, b) for t, b in zip(tensors, bounds, strict=True)]
        header = Header(height, width, self.widths, tuple(float(b) for b in bounds))
        data = pack(self, header.write(), pack_integers(integers))
        decoder_model = _dequantized_model(self.widths, integers, bounds)
        stats = {
            "iterations": fitter.iterations,
            # One model from start to end: no warm-up candidates are dropped.
            "warmup_iterations": 0,
            "final_model_iterations": fitter.iterations,
            ENCODE_SECONDS: time.perf_counter() - start,
            "mac_per_pixel": model.macs_per_pixel(),
            "network_parameters": sum(t.numel() for t in tensors),
            "best_quantized_training_psnr": fitter.best_quantized_psnr,
        }
        return Encoded(data, stats, render(decoder_model, height, width))

    def decode(self, data: bytes) -> np.ndarray:
        header_bytes, payload = unpack(data, self)
        header = Header.read(header_bytes)
        shapes = [t.shape for t in _tensors(Nif(header.widths))]
        integers = unpack_integers(payload, shapes)
        bounds = [torch.tensor(b, dtype=torch.float16) for b in header.bounds]
        return render(
            _dequantized_model(header.widths, integers, bounds), header.height, header.width
        )

    def rate_parts(self, data: bytes) -> dict[str, int]:
        """NIF's file is a header and its network's weights; no latents."""
        _, payload = unpack(data, self)
        network = 8 * len(payload)
        return {"header_bits": 8 * len(data) - network, "network_bits": network, "latent_bits": 0}


def _dequantized_model(widths, integers, bounds) -> Nif:
    model = Nif(widths)
    with torch.no_grad():
        for tensor, values, bound in zip(_tensors(model), integers, bounds, strict=True):
            tensor.copy_(dequantize(values, bound).view_as(tensor))
    return model

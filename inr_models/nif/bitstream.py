"""NIF file layout inside the shared container (``inr_models.container``).

Header: u16 height, u16 width, u8 main frequencies, u8 modulator frequencies,
        u8 n main hidden layers + u16 each, u8 n modulator hidden layers + u16 each,
        then per tensor (main layers, then modulator layers; weight then bias) its f16 bound.
Payload: the int8 values of all tensors in that order, as one brotli stream (one stream
compresses better than the reference's stream per tensor; see benchmarks/nif_speed.py).
"""

from dataclasses import dataclass

import brotli
import numpy as np
import torch

from inr_models.base import CodecError
from inr_models.container import ByteReader, ByteWriter
from inr_models.nif.presets import Widths

BROTLI_QUALITY = 11
MAX_SIDE = 65535


@dataclass(frozen=True)
class Header:
    height: int
    width: int
    widths: Widths
    bounds: tuple[float, ...]  # float16 values

    def write(self) -> bytes:
        w = ByteWriter().u16(self.height).u16(self.width)
        w.u8(self.widths.frequencies).u8(self.widths.modulator_frequencies)
        for sizes in (self.widths.hidden, self.widths.modulator_hidden):
            w.u8(len(sizes))
            for size in sizes:
                w.u16(size)
        w.raw(np.asarray(self.bounds, dtype="<f2").tobytes())
        return w.getvalue()

    @classmethod
    def read(cls, data: bytes, tensor_count) -> "Header":
        r = ByteReader(data)
        height, width = r.u16(), r.u16()
        frequencies, modulator_frequencies = r.u8(), r.u8()
        hidden = tuple(r.u16() for _ in range(r.u8()))
        modulator_hidden = tuple(r.u16() for _ in range(r.u8()))
        sizes_ok = all(1 <= s <= 4096 for s in hidden + modulator_hidden)
        shape_ok = height >= 1 and width >= 1 and hidden and modulator_hidden and sizes_ok
        if not (shape_ok and frequencies <= 32 and modulator_frequencies <= 32):
            raise CodecError("corrupted header: invalid NIF size or architecture")
        widths = Widths(hidden, modulator_hidden, frequencies, modulator_frequencies)
        count = tensor_count(widths)
        bounds = np.frombuffer(r.raw(2 * count), dtype="<f2").astype(np.float64)
        r.expect_end()
        if not np.all(np.isfinite(bounds)) or np.any(bounds < 0):
            raise CodecError("corrupted header: invalid quantisation bounds")
        return cls(height, width, widths, tuple(bounds))


def pack_integers(tensors: list[torch.Tensor]) -> bytes:
    raw = b"".join(t.cpu().numpy().astype(np.int8).tobytes() for t in tensors)
    return brotli.compress(raw, quality=BROTLI_QUALITY)


def unpack_integers(payload: bytes, shapes: list[torch.Size]) -> list[torch.Tensor]:
    try:
        raw = brotli.decompress(payload)
    except brotli.error as error:
        raise CodecError(f"corrupted NIF payload ({error})") from None
    expected = sum(int(np.prod(s)) for s in shapes)
    if len(raw) != expected:
        raise CodecError(f"corrupted NIF payload: {len(raw)} weights, expected {expected}")
    values, tensors, start = np.frombuffer(raw, dtype=np.int8), [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        tensors.append(torch.from_numpy(values[start : start + count].copy()).view(shape))
        start += count
    return tensors

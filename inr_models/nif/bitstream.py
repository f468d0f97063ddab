"""NIF file layout inside the shared container (``inr_models.container``).

Header: u16 height, u16 width, u8 main frequencies, u8 modulator frequencies,
        u8 n main hidden layers + u16 each, u8 n modulator hidden layers + u16 each,
        then per tensor (main layers, then modulator layers; weight then bias) its f16 bound.
Payload: the int8 values of all tensors in that order, as one brotli stream (one stream
compresses better than the reference's stream per tensor; see benchmarks/nif_speed.py).

Limits. ``Header.read`` refuses, before anything is allocated, a header our encoder cannot have
written, with a message naming the field: a side outside [2, 65535] or more pixels than
``inr_models.limits.max_pixels()``; layer counts, widths and frequencies outside the span of the
published width ladder (``presets.WIDTHS``); a float16 bound that is negative or not finite;
bytes the encoder would write differently. The header alone decides the decoder's cost (the
payload's size does not depend on the image's), so it also caps the work, pixels × (MAC/pixel +
``PIXEL_OVERHEAD``), at ``MAX_WORK``, and the memory of one 32-row inference band at
``MAX_BAND_BYTES``. The payload must inflate to exactly one int8 per weight: ``unpack_integers``
stops inflating as soon as it has more, and refuses a stream that ends early or is followed by
other bytes. A changed image size or weight within these limits is a valid file: only the
container's CRC-32 tells it from the encoder's.
"""

import itertools
from dataclasses import dataclass

import brotli
import numpy as np
import torch

from inr_models.base import CodecError
from inr_models.container import ByteReader, ByteWriter, check_canonical
from inr_models.limits import WORK_SCALE_ENV, check_image_size, max_work
from inr_models.nif.model import layer_sizes
from inr_models.nif.presets import WIDTHS, Widths

BROTLI_QUALITY = 11
RENDER_ROWS = 32  # rows per inference band: the decoder's working memory is one band's


def _span(values) -> range:
    values = list(values)
    return range(min(values), max(values) + 1)


# Header limits: what our encoder can write, i.e. the span of the published ladder.
MIN_SIDE, MAX_SIDE = 2, 65535  # a side of 1 leaves a polyphase sub-image empty: fitting fails
HIDDEN_LAYERS = _span(len(w.hidden) for w in WIDTHS.values())
HIDDEN_WIDTHS = _span(size for w in WIDTHS.values() for size in w.hidden)
MODULATOR_LAYERS = _span(len(w.modulator_hidden) for w in WIDTHS.values())
MODULATOR_WIDTHS = _span(size for w in WIDTHS.values() for size in w.modulator_hidden)
FREQUENCIES = _span(w.frequencies for w in WIDTHS.values())
MODULATOR_FREQUENCIES = _span(w.modulator_frequencies for w in WIDTHS.values())
# Decoding cost, measured on one core of a 2-core EPYC: about 0.1 ns per MAC of float64 inference,
# plus about 1.2 µs per pixel for the encodings and sines, counted as PIXEL_OVERHEAD MACs: the
# work is in these MAC-equivalents.
PIXEL_OVERHEAD = 12_000
# About 14 s on one core, 7 s on two: every published width up to 680 on a Kodak-sized image
# (768x512, 680 needs 1.0e11); 0_31 up to about 4.8 million pixels.
MAX_WORK = 2**37
# A band holds, per pixel, the encodings and two activations of the widest layer, in float64.
MAX_BAND_BYTES = 2**29


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
    def read(cls, data: bytes) -> "Header":
        r = ByteReader(data)
        height, width = r.u16(), r.u16()
        check_image_size(height, width, MIN_SIDE, MAX_SIDE)
        frequencies, modulator_frequencies = r.u8(), r.u8()
        _check("main frequencies", frequencies, FREQUENCIES)
        _check("modulator frequencies", modulator_frequencies, MODULATOR_FREQUENCIES)
        hidden = _read_layers(r, "main", HIDDEN_LAYERS, HIDDEN_WIDTHS)
        modulator_hidden = _read_layers(r, "modulator", MODULATOR_LAYERS, MODULATOR_WIDTHS)
        widths = Widths(hidden, modulator_hidden, frequencies, modulator_frequencies)
        _check_cost(height, width, widths)
        tensors = 2 * sum(len(sizes) - 1 for sizes in layer_sizes(widths))  # weight and bias
        bounds = np.frombuffer(r.raw(2 * tensors), dtype="<f2").astype(np.float64)
        r.expect_end()
        bad = np.flatnonzero(~np.isfinite(bounds) | (bounds < 0))
        if bad.size:
            raise CodecError(
                f"corrupted header: float16 bound of tensor {bad[0]} is {bounds[bad[0]]} "
                "(bounds are finite and non-negative)"
            )
        header = cls(height, width, widths, tuple(bounds))
        check_canonical(header.write(), data)
        return header


def _check(what: str, value: int, valid: range) -> None:
    if value not in valid:
        raise CodecError(
            f"corrupted header: {value} {what} outside [{valid.start}, {valid.stop - 1}]"
        )


def _read_layers(r: ByteReader, network: str, counts: range, sizes: range) -> tuple[int, ...]:
    count = r.u8()
    _check(f"{network} hidden layers", count, counts)
    layers = tuple(r.u16() for _ in range(count))
    for index, size in enumerate(layers):
        _check(f"features in {network} hidden layer {index}", size, sizes)
    return layers


def _check_cost(height: int, width: int, widths: Widths) -> None:
    stacks = layer_sizes(widths)
    macs = sum(a * b for sizes in stacks for a, b in itertools.pairwise(sizes))
    work, cap = height * width * (macs + PIXEL_OVERHEAD), max_work(MAX_WORK)
    if work > cap:
        raise CodecError(
            f"corrupted header: decoding {width}x{height} at {macs:,} MAC/pixel costs {work:.2e} "
            f"MAC-equivalents, over the cap of {cap:.2e} (set {WORK_SCALE_ENV} to raise it)"
        )
    inputs = sum(sizes[0] for sizes in stacks)
    widest = max(a + 2 * b for sizes in stacks for a, b in itertools.pairwise(sizes))
    band = 8 * RENDER_ROWS * width * (inputs + widest)
    if band > MAX_BAND_BYTES:
        raise CodecError(
            f"corrupted header: a {RENDER_ROWS}-row band {width} pixels wide with these widths "
            f"needs {band / 2**20:,.0f} MiB, over the cap of {MAX_BAND_BYTES / 2**20:,.0f} MiB"
        )


def pack_integers(tensors: list[torch.Tensor]) -> bytes:
    raw = b"".join(t.cpu().numpy().astype(np.int8).tobytes() for t in tensors)
    return brotli.compress(raw, quality=BROTLI_QUALITY)


def unpack_integers(payload: bytes, shapes: list[torch.Size]) -> list[torch.Tensor]:
    expected = sum(int(np.prod(s)) for s in shapes)
    inflater = brotli.Decompressor()
    try:
        # The limit stops inflating a bomb early; brotli may still return a little more.
        raw = inflater.process(payload, output_buffer_limit=expected + 1)
    except brotli.error as error:
        raise CodecError(
            f"payload: corrupted brotli stream, or bytes after its end ({error})"
        ) from None
    if len(raw) > expected:
        raise CodecError(f"payload: inflates to more than the {expected} weights of the header")
    if not inflater.is_finished():
        raise CodecError(f"payload: brotli stream ends early, after {len(raw)} of {expected} bytes")
    if len(raw) != expected:
        raise CodecError(f"payload: {len(raw)} weights, the header's widths have {expected}")
    values, tensors, start = np.frombuffer(raw, dtype=np.int8), [], 0
    for shape in shapes:
        count = int(np.prod(shape))
        tensors.append(torch.from_numpy(values[start : start + count].copy()).view(shape))
        start += count
    return tensors

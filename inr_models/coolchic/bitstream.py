"""COOL-CHIC file layout inside the shared container (``inr_models.container``), for every codec
of the COOL-CHIC structure (v1, v2, C3).

The header (after the container's magic, version and codec id) is four elements in this order,
each written by ``_write_<element>`` and read, then checked, by ``_read_<element>``:

    element              bytes
    image_size           u16 height, u16 width
    architecture         u8 n_grids, u8 ARM context rows/cols, u8 ARM fixed-point bits,
                         u8 n ARM hidden layers + u16 each width,
                         u8 n synthesis layers + (u16 out channels, u8 kernel,
                                                  u8 flags 1=residual 2=relu 4=gelu) each,
                         u8 learned upsampling
    module_quantisation  per network module (synthesis, [upsampling,] arm), for its weights then
                         its biases (upsampling has none): u8 step exponent (step 2^-e),
                         varint bound A, f32 Laplace scale
    latent_bounds        per latent grid, finest first: varint bound A (0: all-zero grid, not coded)

Payload (COOL-CHIC format 2, C3 format 1): one range-coded stream (constriction): each module's
weight and bias integers under a zero-mean Laplace with the header's scale, then the latents of the
non-zero grids in interleaved wavefronts (``wavefront.py``) under the ARM's Laplace (μ, scale). The
decoder checks that the payload is exactly what the encoder writes for the values it decodes
to (``inr_models.entropy.LaplaceDecoder``).

Limits. ``Header.read`` refuses, before anything is allocated, a header our encoder cannot have
written, with a message naming the field: a side outside [1, 65535] or more pixels than
``inr_models.limits.max_pixels()``; an architecture other than the one the codec the file's id
names writes (nothing else is ever written, so a v1 header in a v2 file is refused, field by
field); a step exponent beyond the greedy search's (16 for synthesis and upsampling, 7 for the
ARM); a network bound outside [1, 65535]; a Laplace scale outside [1/1024, bound]; a latent
bound above 32767; bytes the encoder would write differently (an over-long varint, unused flag
bits). It also caps the entropy decoding's work, which the header decides: each coded integer
costs a table of 2·bound + 1 probabilities (a latent: the largest latent bound, its wavefront's
alphabet at most), and all tables together may hold at most
``MAX_TABLE_ENTRIES``. What is left, the synthesis, runs only once the payload has been checked
and costs what the image size says: about 0.5 KB (v1) or 0.85 KB (v2) of memory and 2 µs per
pixel (C3: its upsampled grids alone hold 112 B per pixel in float64); lower
``INR_STUDY_MAX_PIXELS`` to bound it further.
"""

from dataclasses import dataclass
from functools import cache

from inr_models.base import CodecError
from inr_models.container import ByteReader, ByteWriter, check_canonical
from inr_models.coolchic.exact import LATENT_LIMIT
from inr_models.coolchic.layers import SynthesisLayer
from inr_models.coolchic.model import CoolChic, grid_shapes
from inr_models.coolchic.presets import Architecture
from inr_models.coolchic.quantization import MAX_INTEGER, STEP_EXPONENTS
from inr_models.limits import WORK_SCALE_ENV, check_image_size, max_work

# Header limits: what our encoder can write.
MAX_SIDE = 65535  # u16 fields; the encoder has no minimum (1x64 and 64x1 files decode)
MAX_STEP_EXPONENT = {name: max(exponents) for name, exponents in STEP_EXPONENTS.items()}
# The greedy search rejects steps giving larger integers; an all-zero group has bound 0 and is not
# coded (its scale is laplace_scale_of's floor).
MAX_NETWORK_BOUND = MAX_INTEGER
MIN_LAPLACE_SCALE = 1.0 / 1024.0  # laplace_scale_of's floor; its std/√2 never exceeds the bound
MAX_LATENT_BOUND = LATENT_LIMIT  # latents are clamped to it before coding
# Decoding and re-encoding take about 27 ns per probability on one core of a 2-core EPYC, so
# about 3.6 s; a Kodak image (768x512) with every latent bound up to 100 fits.
MAX_TABLE_ENTRIES = 2**27

_RESIDUAL_FLAG, _RELU_FLAG, _GELU_FLAG = 1, 2, 4


@dataclass(frozen=True, kw_only=True)
class GroupHeader:
    """How one group (a module's weights or its biases) is quantised and range-coded."""

    exponent: int  # quantisation step 2^-exponent
    bound: int  # integers lie in [-bound, bound]
    scale: float  # of the zero-mean Laplace; a float32 value


# Module name -> (weights group, biases group or None), in bitstream order.
ModuleGroups = dict[str, tuple[GroupHeader, GroupHeader | None]]


@dataclass(frozen=True, kw_only=True)
class Header:
    # image_size
    height: int
    width: int
    # architecture
    n_grids: int
    arm_rowcol: int
    arm_fraction_bits: int
    arm_hidden: tuple[int, ...]
    synthesis: tuple[SynthesisLayer, ...]
    learned_upsampling: bool
    # module_quantisation
    modules: ModuleGroups
    # latent_bounds
    latent_bounds: tuple[int, ...]

    def write(self) -> bytes:
        writer = ByteWriter()
        _write_image_size(writer, self)
        _write_architecture(writer, self)
        _write_module_quantisation(writer, self)
        _write_latent_bounds(writer, self)
        return writer.getvalue()

    @classmethod
    def read(cls, data: bytes, architecture: Architecture, codec: str) -> "Header":
        """The header of a file of ``codec``, whose encoder writes ``architecture``, every field
        checked against the limits."""
        reader = ByteReader(data)
        fields = _read_image_size(reader) | _read_architecture(reader)
        # Checked before it decides how many groups and grids follow.
        _check_architecture(fields, architecture, codec)
        modules = _read_module_quantisation(reader, _module_names(architecture.learned_upsampling))
        latent_bounds = _read_latent_bounds(reader, architecture.n_grids)
        reader.expect_end()
        header = cls(**fields, modules=modules, latent_bounds=latent_bounds)
        check_canonical(header.write(), data)
        _check_table_entries(header, _group_sizes(architecture))
        return header


def _module_names(learned_upsampling: bool) -> list[str]:
    return ["synthesis", "upsampling", "arm"] if learned_upsampling else ["synthesis", "arm"]


def _write_image_size(writer: ByteWriter, header: Header) -> None:
    writer.u16(header.height).u16(header.width)


def _read_image_size(reader: ByteReader) -> dict:
    height, width = reader.u16(), reader.u16()
    check_image_size(height, width, 1, MAX_SIDE)
    return {"height": height, "width": width}


def _write_architecture(writer: ByteWriter, header: Header) -> None:
    writer.u8(header.n_grids).u8(header.arm_rowcol).u8(header.arm_fraction_bits)
    writer.u8(len(header.arm_hidden))
    for width in header.arm_hidden:
        writer.u16(width)
    writer.u8(len(header.synthesis))
    for layer in header.synthesis:
        flags = _RESIDUAL_FLAG * layer.residual | _RELU_FLAG * layer.relu | _GELU_FLAG * layer.gelu
        writer.u16(layer.out_channels).u8(layer.kernel_size).u8(flags)
    writer.u8(int(header.learned_upsampling))


def _read_architecture(reader: ByteReader) -> dict:
    return {
        "n_grids": reader.u8(),
        "arm_rowcol": reader.u8(),
        "arm_fraction_bits": reader.u8(),
        "arm_hidden": tuple(reader.u16() for _ in range(reader.u8())),
        "synthesis": tuple(_read_synthesis_layer(reader) for _ in range(reader.u8())),
        "learned_upsampling": bool(reader.u8()),
    }


def _read_synthesis_layer(reader: ByteReader) -> SynthesisLayer:
    out_channels, kernel_size, flags = reader.u16(), reader.u8(), reader.u8()
    return SynthesisLayer(
        out_channels=out_channels,
        kernel_size=kernel_size,
        residual=bool(flags & _RESIDUAL_FLAG),
        relu=bool(flags & _RELU_FLAG),
        gelu=bool(flags & _GELU_FLAG),
    )


# Architecture fields of the header, as named in messages.
_ARCHITECTURE_FIELDS = {
    "n_grids": "latent grids",
    "arm_rowcol": "ARM context rows/cols",
    "arm_fraction_bits": "ARM fixed-point bits",
    "arm_hidden": "ARM hidden widths",
    "synthesis": "synthesis layers",
    "learned_upsampling": "learned upsampling",
}


def _check_architecture(fields: dict, architecture: Architecture, codec: str) -> None:
    """Our encoder writes exactly its version's architecture; anything else is a corrupted or
    relabelled file (a v1 header in a v2 file, say)."""
    wrong = [
        f"{label} {_describe(fields[key])} ({codec}: {_describe(getattr(architecture, key))})"
        for key, label in _ARCHITECTURE_FIELDS.items()
        if fields[key] != getattr(architecture, key)
    ]
    if wrong:
        raise CodecError(f"corrupted header: not a {codec} architecture: {'; '.join(wrong)}")


def _describe(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_describe, value)) + "]"
    if isinstance(value, SynthesisLayer):
        flags = " residual" * value.residual + " relu" * value.relu + " gelu" * value.gelu
        return f"{value.out_channels} ch {value.kernel_size}x{value.kernel_size}{flags}"
    return str(value)


def _write_module_quantisation(writer: ByteWriter, header: Header) -> None:
    for name in _module_names(header.learned_upsampling):
        for group in header.modules[name]:
            if group is not None:
                writer.u8(group.exponent).varint(group.bound).f32(group.scale)


def _read_module_quantisation(reader: ByteReader, names: list[str]) -> ModuleGroups:
    modules = {}
    for name in names:
        weights = _read_group(reader, name, "weights")
        biases = None if name == "upsampling" else _read_group(reader, name, "biases")
        modules[name] = (weights, biases)
    return modules


def _read_group(reader: ByteReader, module_name: str, kind: str) -> GroupHeader:
    group = GroupHeader(exponent=reader.u8(), bound=reader.varint(), scale=reader.f32())
    where = f"corrupted header: {module_name} {kind}:"
    finest = MAX_STEP_EXPONENT[module_name]
    if group.exponent > finest:
        raise CodecError(f"{where} step 2^-{group.exponent} finer than the encoder's 2^-{finest}")
    if not 0 <= group.bound <= MAX_NETWORK_BOUND:
        raise CodecError(f"{where} bound {group.bound} outside [0, {MAX_NETWORK_BOUND}]")
    highest = max(group.bound, MIN_LAPLACE_SCALE)  # an all-zero group has the floor
    if not MIN_LAPLACE_SCALE <= group.scale <= highest:  # False for NaN too
        raise CodecError(
            f"{where} Laplace scale {group.scale:g} outside [1/1024, {highest:g}] (its bound)"
        )
    return group


def _write_latent_bounds(writer: ByteWriter, header: Header) -> None:
    for bound in header.latent_bounds:
        writer.varint(bound)


def _read_latent_bounds(reader: ByteReader, n_grids: int) -> tuple[int, ...]:
    bounds = tuple(reader.varint() for _ in range(n_grids))
    for index, bound in enumerate(bounds):
        if bound > MAX_LATENT_BOUND:
            raise CodecError(
                f"corrupted header: latent grid {index} bound {bound} exceeds {MAX_LATENT_BOUND}"
            )
    return bounds


@cache
def _group_sizes(architecture: Architecture) -> dict[str, tuple[int, int]]:
    """(weights, biases) integers of each network module of an architecture."""
    network = CoolChic(architecture, 1, 1).network_modules()
    return {
        name: (sum(t.numel() for t in module.weights), sum(t.numel() for t in module.biases))
        for name, module in network.items()
    }


def _check_table_entries(header: Header, group_sizes: dict[str, tuple[int, int]]) -> None:
    """Each coded integer costs a table row of 2·bound + 1 probabilities to decode."""
    entries = sum(
        count * (2 * group.bound + 1)
        for name, groups in header.modules.items()
        for count, group in zip(group_sizes[name], groups, strict=True)
        if group is not None
    )
    shapes = grid_shapes(header.height, header.width, len(header.latent_bounds))
    coded = sum(h * w for (h, w), bound in zip(shapes, header.latent_bounds, strict=True) if bound)
    # A wavefront shares the largest bound among its grids: at most the largest of all.
    entries += coded * (2 * max(header.latent_bounds) + 1)
    cap = max_work(MAX_TABLE_ENTRIES)
    if entries > cap:
        raise CodecError(
            f"corrupted header: decoding {header.width}x{header.height} with these bounds needs "
            f"{entries:,} Laplace probabilities, over the cap of {cap:,.0f} (set "
            f"{WORK_SCALE_ENV} to raise it)"
        )

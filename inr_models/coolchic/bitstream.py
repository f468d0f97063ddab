"""COOL-CHIC file layout inside the shared container (``inr_models.container``).

The header (after the container's magic, version and codec id) is four elements in this order,
each written by ``_write_<element>`` and read, then checked, by ``_read_<element>``:

    element              bytes
    image_size           u16 height, u16 width
    architecture         u8 n_grids, u8 ARM context rows/cols, u8 ARM fixed-point bits,
                         u8 n ARM hidden layers + u16 each width,
                         u8 n synthesis layers + (u16 out channels, u8 kernel,
                                                  u8 flags 1=residual 2=relu) each,
                         u8 learned upsampling
    module_quantisation  per network module (synthesis, [upsampling,] arm), for its weights then
                         its biases (upsampling has none): u8 step exponent (step 2^-e),
                         varint bound A, f32 Laplace scale
    latent_bounds        per latent grid, finest first: varint bound A (0: all-zero grid, not coded)

Payload: one range-coded stream (constriction): each module's weight and bias integers under a
zero-mean Laplace with the header's scale, then every non-zero latent grid in wavefront order
under the ARM's Laplace (μ, scale).
"""

from dataclasses import dataclass

import numpy as np

from inr_models.base import CodecError
from inr_models.container import ByteReader, ByteWriter
from inr_models.coolchic.layers import SynthesisLayer

MAX_SIDE = 65535
_RESIDUAL_FLAG, _RELU_FLAG = 1, 2


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
    def read(cls, data: bytes) -> "Header":
        reader = ByteReader(data)
        # The architecture is checked before it decides how many groups and grids follow.
        fields = _read_image_size(reader) | _read_architecture(reader)
        modules = _read_module_quantisation(reader, _module_names(fields["learned_upsampling"]))
        latent_bounds = _read_latent_bounds(reader, fields["n_grids"])
        reader.expect_end()
        return cls(**fields, modules=modules, latent_bounds=latent_bounds)


def _module_names(learned_upsampling: bool) -> list[str]:
    return ["synthesis", "upsampling", "arm"] if learned_upsampling else ["synthesis", "arm"]


def _write_image_size(writer: ByteWriter, header: Header) -> None:
    writer.u16(header.height).u16(header.width)


def _read_image_size(reader: ByteReader) -> dict:
    height, width = reader.u16(), reader.u16()
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        raise CodecError(f"corrupted header: invalid image size {width}x{height}")
    return {"height": height, "width": width}


def _write_architecture(writer: ByteWriter, header: Header) -> None:
    writer.u8(header.n_grids).u8(header.arm_rowcol).u8(header.arm_fraction_bits)
    writer.u8(len(header.arm_hidden))
    for width in header.arm_hidden:
        writer.u16(width)
    writer.u8(len(header.synthesis))
    for layer in header.synthesis:
        flags = _RESIDUAL_FLAG * layer.residual | _RELU_FLAG * layer.relu
        writer.u16(layer.out_channels).u8(layer.kernel_size).u8(flags)
    writer.u8(int(header.learned_upsampling))


def _read_architecture(reader: ByteReader) -> dict:
    fields = {
        "n_grids": reader.u8(),
        "arm_rowcol": reader.u8(),
        "arm_fraction_bits": reader.u8(),
        "arm_hidden": tuple(reader.u16() for _ in range(reader.u8())),
        "synthesis": tuple(_read_synthesis_layer(reader) for _ in range(reader.u8())),
        "learned_upsampling": bool(reader.u8()),
    }
    _check_architecture(fields)
    return fields


def _read_synthesis_layer(reader: ByteReader) -> SynthesisLayer:
    out_channels, kernel_size, flags = reader.u16(), reader.u8(), reader.u8()
    return SynthesisLayer(
        out_channels=out_channels,
        kernel_size=kernel_size,
        residual=bool(flags & _RESIDUAL_FLAG),
        relu=bool(flags & _RELU_FLAG),
    )


def _check_architecture(fields: dict) -> None:
    """Refuse headers that would build absurd models (a corrupted file that passed the CRC)."""
    arm_hidden, synthesis = fields["arm_hidden"], fields["synthesis"]
    problems = []
    if not 1 <= fields["n_grids"] <= 16:
        problems.append(f"{fields['n_grids']} latent grids")
    if not 1 <= fields["arm_rowcol"] <= 8 or not 0 <= fields["arm_fraction_bits"] <= 16:
        problems.append("ARM context or precision")
    if any(not 1 <= w <= 1024 for w in arm_hidden) or len(arm_hidden) > 8:
        problems.append("ARM widths")
    if not synthesis or synthesis[-1].out_channels != 3:
        problems.append("synthesis output")
    if any(
        not 1 <= s.out_channels <= 1024 or s.kernel_size % 2 == 0 or s.kernel_size > 9
        for s in synthesis
    ):
        problems.append("synthesis layers")
    if problems:
        raise CodecError(f"corrupted header: invalid {', '.join(problems)}")


def _write_module_quantisation(writer: ByteWriter, header: Header) -> None:
    for name in _module_names(header.learned_upsampling):
        for group in header.modules[name]:
            if group is not None:
                writer.u8(group.exponent).varint(group.bound).f32(group.scale)


def _read_module_quantisation(reader: ByteReader, names: list[str]) -> ModuleGroups:
    modules = {}
    for name in names:
        weights = _read_group(reader, name)
        biases = None if name == "upsampling" else _read_group(reader, name)
        modules[name] = (weights, biases)
    return modules


def _read_group(reader: ByteReader, module_name: str) -> GroupHeader:
    group = GroupHeader(exponent=reader.u8(), bound=reader.varint(), scale=reader.f32())
    if not (group.exponent <= 30 and np.isfinite(group.scale) and group.scale > 0):
        raise CodecError(f"corrupted header: invalid quantisation of {module_name}")
    return group


def _write_latent_bounds(writer: ByteWriter, header: Header) -> None:
    for bound in header.latent_bounds:
        writer.varint(bound)


def _read_latent_bounds(reader: ByteReader, n_grids: int) -> tuple[int, ...]:
    return tuple(reader.varint() for _ in range(n_grids))

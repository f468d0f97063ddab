"""COOL-CHIC file layout inside the shared container (``inr_models.container``).

Header (after the container's magic, version and codec id):

    u16 height, u16 width
    architecture: u8 n_grids, u8 ARM context rows/cols, u8 ARM fixed-point bits,
                  u8 n ARM hidden layers + u16 each width,
                  u8 n synthesis layers + (u16 out channels, u8 kernel, u8 flags 1=residual 2=relu),
                  u8 learned upsampling
    per network module (synthesis, [upsampling,] arm), for weights then biases (if any):
                  u8 step exponent (step 2^-e), varint bound A, f32 Laplace scale
    per latent grid: varint bound A (0: all-zero grid, not coded)

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


@dataclass(frozen=True)
class GroupHeader:
    exponent: int
    bound: int
    scale: float  # float32 value


@dataclass(frozen=True)
class Header:
    height: int
    width: int
    n_grids: int
    arm_rowcol: int
    arm_fraction_bits: int
    arm_hidden: tuple[int, ...]
    synthesis: tuple[SynthesisLayer, ...]
    learned_upsampling: bool
    # module name -> (weights group, biases group or None)
    modules: dict[str, tuple[GroupHeader, GroupHeader | None]]
    latent_bounds: tuple[int, ...]

    def module_names(self) -> list[str]:
        return (
            ["synthesis", "upsampling", "arm"] if self.learned_upsampling else ["synthesis", "arm"]
        )

    def write(self) -> bytes:
        w = ByteWriter().u16(self.height).u16(self.width)
        w.u8(self.n_grids).u8(self.arm_rowcol).u8(self.arm_fraction_bits)
        w.u8(len(self.arm_hidden))
        for width in self.arm_hidden:
            w.u16(width)
        w.u8(len(self.synthesis))
        for layer in self.synthesis:
            w.u16(layer.out_channels).u8(layer.kernel_size).u8(
                int(layer.residual) | 2 * int(layer.relu)
            )
        w.u8(int(self.learned_upsampling))
        for name in self.module_names():
            for group in self.modules[name]:
                if group is not None:
                    w.u8(group.exponent).varint(group.bound).f32(group.scale)
        for bound in self.latent_bounds:
            w.varint(bound)
        return w.getvalue()

    @classmethod
    def read(cls, data: bytes) -> "Header":
        r = ByteReader(data)
        height, width = r.u16(), r.u16()
        n_grids, rowcol, fraction_bits = r.u8(), r.u8(), r.u8()
        arm_hidden = tuple(r.u16() for _ in range(r.u8()))
        synthesis = []
        for _ in range(r.u8()):
            out_channels, kernel, flags = r.u16(), r.u8(), r.u8()
            synthesis.append(SynthesisLayer(out_channels, kernel, bool(flags & 1), bool(flags & 2)))
        learned_upsampling = bool(r.u8())
        _check_architecture(height, width, n_grids, rowcol, fraction_bits, arm_hidden, synthesis)
        header = cls(
            height,
            width,
            n_grids,
            rowcol,
            fraction_bits,
            arm_hidden,
            tuple(synthesis),
            learned_upsampling,
            {},
            (),
        )
        modules = {}
        for name in header.module_names():
            weights = GroupHeader(r.u8(), r.varint(), r.f32())
            biases = None if name == "upsampling" else GroupHeader(r.u8(), r.varint(), r.f32())
            for group in filter(None, (weights, biases)):
                if not (group.exponent <= 30 and np.isfinite(group.scale) and group.scale > 0):
                    raise CodecError(f"corrupted header: invalid quantisation of {name}")
            modules[name] = (weights, biases)
        bounds = tuple(r.varint() for _ in range(n_grids))
        r.expect_end()
        return cls(**{**header.__dict__, "modules": modules, "latent_bounds": bounds})


def _check_architecture(
    height, width, n_grids, rowcol, fraction_bits, arm_hidden, synthesis
) -> None:
    """Refuse headers that would build absurd models (a corrupted file that passed the CRC)."""
    problems = []
    if not (1 <= height <= MAX_SIDE and 1 <= width <= MAX_SIDE):
        problems.append(f"image size {width}x{height}")
    if not 1 <= n_grids <= 16:
        problems.append(f"{n_grids} latent grids")
    if not 1 <= rowcol <= 8 or not 0 <= fraction_bits <= 16:
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

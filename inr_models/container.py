"""The file container shared by every INR codec: a versioned, checksummed envelope.

Layout (all integers little-endian)::

    magic "INRS" | format version u8 | codec id u8 | header length (varint) | header | payload
    | CRC-32

The format version is the codec's own (``Codec.format_version``): the envelope never changes, and
a codec that changes its header or payload layout raises its version, so a file of another layout
is refused with a message saying which side is older.

The CRC-32 covers everything before it, so a truncated or bit-flipped file is rejected before any
decoding starts. Header and payload are each codec's own business; ``ByteWriter`` / ``ByteReader``
give them typed fields without pickle or eval, and ``check_canonical`` refuses a header whose bytes
its writer would not produce.
"""

import struct
import zlib
from typing import TYPE_CHECKING

from inr_models.base import CodecError

if TYPE_CHECKING:
    from inr_models.base import Codec

MAGIC = b"INRS"
_CRC_BYTES = 4


class ByteWriter:
    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def u8(self, value: int) -> "ByteWriter":
        return self._pack("<B", value)

    def u16(self, value: int) -> "ByteWriter":
        return self._pack("<H", value)

    def u32(self, value: int) -> "ByteWriter":
        return self._pack("<I", value)

    def f32(self, value: float) -> "ByteWriter":
        return self._pack("<f", value)

    def varint(self, value: int) -> "ByteWriter":
        if value < 0:
            raise ValueError(f"varint takes non-negative integers, got {value}")
        out = bytearray()
        while True:
            byte, value = value & 0x7F, value >> 7
            out.append(byte | (0x80 if value else 0))
            if not value:
                break
        self._parts.append(bytes(out))
        return self

    def raw(self, data: bytes) -> "ByteWriter":
        self._parts.append(data)
        return self

    def _pack(self, fmt: str, value) -> "ByteWriter":
        try:
            self._parts.append(struct.pack(fmt, value))
        except struct.error as error:
            raise ValueError(f"value {value!r} does not fit the field ({error})") from None
        return self

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


class ByteReader:
    def __init__(self, data: bytes, what: str = "header") -> None:
        self._data = memoryview(data)
        self._offset = 0
        self._what = what

    def u8(self) -> int:
        return self._unpack("<B")

    def u16(self) -> int:
        return self._unpack("<H")

    def u32(self) -> int:
        return self._unpack("<I")

    def f32(self) -> float:
        return self._unpack("<f")

    def varint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.u8()
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 63:
                raise CodecError(f"corrupted {self._what}: varint longer than 64 bits")

    def raw(self, length: int) -> bytes:
        self._need(length)
        chunk = bytes(self._data[self._offset : self._offset + length])
        self._offset += length
        return chunk

    def rest(self) -> bytes:
        return self.raw(len(self._data) - self._offset)

    def expect_end(self) -> None:
        if self._offset != len(self._data):
            raise CodecError(f"corrupted {self._what}: {len(self._data) - self._offset} bytes left")

    def _need(self, length: int) -> None:
        if self._offset + length > len(self._data):
            raise CodecError(f"corrupted {self._what}: it ends early")

    def _unpack(self, fmt: str):
        size = struct.calcsize(fmt)
        self._need(size)
        (value,) = struct.unpack_from(fmt, self._data, self._offset)
        self._offset += size
        return value


def check_canonical(written: bytes, read: bytes) -> None:
    """CodecError unless a header read from ``read`` writes back to the same bytes: fields the
    reader accepts but the writer never produces (an over-long varint, a flag byte other than 0
    or 1, unused flag bits) mark a forged or corrupted file."""
    if written != read:
        raise CodecError(
            "corrupted header: not written as the encoder writes it (over-long varint or unused "
            "flag bits)"
        )


def pack(codec: "type[Codec] | Codec", header: bytes, payload: bytes) -> bytes:
    """The file of ``codec``, under the file id (stable: never renumbered) and format version
    its class declares."""
    body = (
        ByteWriter()
        .raw(MAGIC)
        .u8(codec.format_version)
        .u8(codec.file_id)
        .varint(len(header))
        .raw(header)
        .raw(payload)
        .getvalue()
    )
    return body + struct.pack("<I", zlib.crc32(body))


def _codec_name(file_id: int) -> str:
    from inr_models.registry import codec_for_file_id

    found = codec_for_file_id(file_id)
    return found.name if found is not None else f"an unknown codec (id {file_id})"


def unpack(data: bytes, codec: "type[Codec] | Codec") -> tuple[bytes, bytes]:
    """(header, payload) of a file written by ``pack`` for ``codec``; CodecError otherwise."""
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise CodecError("not an inr-study file (its first bytes are not the 'INRS' magic)")
    if len(data) < len(MAGIC) + 2 + 1 + _CRC_BYTES:
        raise CodecError("truncated inr-study file")
    body, (crc,) = data[:-_CRC_BYTES], struct.unpack("<I", data[-_CRC_BYTES:])
    if zlib.crc32(body) != crc:
        raise CodecError("truncated or corrupted inr-study file (CRC-32 mismatch)")
    reader = ByteReader(body[len(MAGIC) :], "container")
    found_version, found_id = reader.u8(), reader.u8()
    if found_id != codec.file_id:
        raise CodecError(f"this file was written by {_codec_name(found_id)}, not {codec.name}")
    if found_version != codec.format_version:
        older = found_version < codec.format_version
        made_by, action = ("an older", "encode again") if older else ("a newer", "upgrade")
        raise CodecError(
            f"{codec.name} file format {found_version}, made by {made_by} version of inr-study; "
            f"this one reads format {codec.format_version}: {action}"
        )
    header = reader.raw(reader.varint())
    return header, reader.rest()


def codec_of(data: bytes) -> str:
    """The codec name recorded in a file, for decoders that dispatch on it."""
    if len(data) < len(MAGIC) + 2 or data[: len(MAGIC)] != MAGIC:
        raise CodecError("not an inr-study file (its first bytes are not the 'INRS' magic)")
    from inr_models.registry import codec_for_file_id

    file_id = data[len(MAGIC) + 1]
    found = codec_for_file_id(file_id)
    if found is None:
        raise CodecError(f"unknown codec id {file_id} in file")
    return found.name

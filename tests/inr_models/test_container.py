"""The shared file container: envelope, checksum, codec ids from the codecs' declarations."""

from types import SimpleNamespace

import pytest

from inr_models import get_codec_class
from inr_models.base import CodecError
from inr_models.container import ByteReader, ByteWriter, codec_of, pack, unpack

NIF = get_codec_class("nif")


def test_pack_and_unpack_round_trip():
    data = pack(NIF, b"header", b"payload")
    assert unpack(data, NIF) == (b"header", b"payload")
    assert codec_of(data) == "nif"


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (1, "coolchic-v1 file format 1, made by an older version of inr-study; this one reads "
            "format 2: encode again"),
        (3, "coolchic-v1 file format 3, made by a newer version .*: upgrade"),
    ],
)  # fmt: skip
def test_a_file_of_another_format_version_says_which_side_is_older(version, message):
    codec = get_codec_class("coolchic-v1")
    assert codec.format_version == 2
    label = SimpleNamespace(file_id=codec.file_id, format_version=version)
    with pytest.raises(CodecError, match=message):
        unpack(pack(label, b"h", b"p"), codec)


def test_ids_come_from_the_codecs_and_are_unique():
    ids = {get_codec_class(name).file_id for name in ("coolchic-v1", "coolchic-v2", "nif")}
    assert ids == {1, 2, 3}  # written into files: never renumbered


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: b"XXXX" + d[4:], "not an inr-study file"),
        (lambda d: d[:-3], "CRC-32 mismatch"),
        (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "CRC-32 mismatch"),
        (lambda d: d[:6], "truncated inr-study file"),
    ],
)
def test_damaged_files_give_one_clear_error(mutate, message):
    data = pack(NIF, b"header", b"payload" * 4)
    with pytest.raises(CodecError, match=message):
        unpack(mutate(data), NIF)


def test_a_file_of_another_codec_is_named():
    data = pack(get_codec_class("coolchic-v1"), b"h", b"p")
    with pytest.raises(CodecError, match="written by coolchic-v1, not nif"):
        unpack(data, NIF)
    unknown = pack(SimpleNamespace(file_id=250, format_version=1), b"h", b"p")
    with pytest.raises(CodecError, match="unknown codec id 250"):
        codec_of(unknown)


def test_typed_fields_round_trip_and_refuse_overflow():
    written = ByteWriter().u8(7).u16(65535).u32(2**32 - 1).f32(0.5).varint(300).getvalue()
    reader = ByteReader(written)
    assert (reader.u8(), reader.u16(), reader.u32(), reader.f32(), reader.varint()) == (
        7, 65535, 2**32 - 1, 0.5, 300,
    )  # fmt: skip
    reader.expect_end()
    with pytest.raises(ValueError, match="does not fit"):
        ByteWriter().u8(256)
    with pytest.raises(CodecError, match="ends early"):
        ByteReader(b"\x01").u16()

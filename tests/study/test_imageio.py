"""Each input rule of study.data.imageio, checked on real pixels and by its message."""

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from study.data.imageio import ImageLoadError, load_rgb, save_png


def write_png16(path, array: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB)."""
    height, width = array.shape[:2]
    color_type = 2 if array.ndim == 3 else 0
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )  # fmt: skip


def test_rgb_is_returned_unchanged(crop64, write_png):
    np.testing.assert_array_equal(load_rgb(write_png(crop64)), crop64)


def test_grayscale_is_replicated_with_a_notice(crop64, write_png, caplog):
    gray = crop64[..., 1]
    loaded = load_rgb(write_png(gray, "gray.png"))
    assert loaded.shape == (64, 64, 3)
    for channel in range(3):
        np.testing.assert_array_equal(loaded[..., channel], gray)
    assert "gray.png: grayscale image (mode L) replicated to 3 RGB channels" in caplog.text


def test_rgba_is_an_error_unless_alpha_is_dropped(crop64, write_png, caplog):
    rgba = np.dstack([crop64, np.full(crop64.shape[:2], 128, np.uint8)])
    path = write_png(rgba, "alpha.png")
    with pytest.raises(ImageLoadError, match=r"alpha\.png: image has an alpha channel.*drop-alpha"):
        load_rgb(path)
    np.testing.assert_array_equal(load_rgb(path, drop_alpha=True), crop64)
    assert "alpha channel discarded" in caplog.text


def test_palette_with_transparency_counts_as_alpha(crop64, tmp_path):
    path = tmp_path / "palette.png"
    Image.fromarray(crop64).convert("P").save(path, transparency=0)
    with pytest.raises(ImageLoadError, match=r"alpha channel \(mode PA\)"):
        load_rgb(path)


def test_sixteen_bit_rgb_keeps_upper_byte_with_a_warning(tmp_path, caplog):
    array = np.random.default_rng(0).integers(0, 65536, (20, 24, 3), dtype=np.uint16)
    write_png16(tmp_path / "deep.png", array)
    loaded = load_rgb(tmp_path / "deep.png")
    np.testing.assert_array_equal(loaded, (array >> 8).astype(np.uint8))
    assert "deep.png: 16-bit RGB converted to 8-bit" in caplog.text
    assert any(r.levelname == "WARNING" for r in caplog.records)


def test_sixteen_bit_gray_keeps_upper_byte_with_a_warning(tmp_path, caplog):
    array = np.random.default_rng(1).integers(0, 65536, (20, 24), dtype=np.uint16)
    write_png16(tmp_path / "gray16.png", array)
    loaded = load_rgb(tmp_path / "gray16.png")
    np.testing.assert_array_equal(loaded[..., 2], (array >> 8).astype(np.uint8))
    assert "gray16.png: 16-bit grayscale converted to 8-bit" in caplog.text


def test_tiny_image_is_an_error(crop64, write_png):
    path = write_png(crop64[:15], "tiny.png")
    with pytest.raises(ImageLoadError, match=r"tiny\.png: image is 64x15, smaller than 16 px"):
        load_rgb(path)


def test_non_image_file_is_an_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(ImageLoadError, match=r"notes\.png: not an image file"):
        load_rgb(path)


def test_truncated_image_is_an_error(crop64, write_png):
    path = write_png(crop64, "cut.png")
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ImageLoadError, match=r"cut\.png: unreadable or truncated"):
        load_rgb(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nothing\.png: no such file"):
        load_rgb(tmp_path / "nothing.png")


def test_save_png_round_trips(crop64, tmp_path):
    save_png(tmp_path / "sub" / "out.png", crop64)
    np.testing.assert_array_equal(load_rgb(tmp_path / "sub" / "out.png"), crop64)

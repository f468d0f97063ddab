"""Each input rule of study.data.imageio, checked on real pixels and by its message."""

import os
import pwd
import struct
import zlib
from contextlib import contextmanager

import numpy as np
import pytest
from PIL import Image, ImageFile

from inr_models.limits import DEFAULT_MAX_PIXELS, MAX_PIXELS_ENV
from study.data.imageio import (
    ImageHeader,
    ImageLoadError,
    load_rgb,
    read_header,
    save_png,
)
from study.errors import InputError


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


def write_png_claiming(path, width: int, height: int) -> None:
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's header,
    with no memory behind it."""
    Image.new("RGB", (16, 16)).save(path)
    data = path.read_bytes()
    header = struct.pack(">II", width, height) + data[24:29]  # IHDR: size, then depth etc.
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(data[:16] + header + crc + data[33:])


@pytest.fixture
def pixel_cap(monkeypatch):
    """Sets INR_STUDY_MAX_PIXELS; Pillow's process-wide limit, which follows it, is restored."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)

    def set_cap(pixels: int | str) -> None:
        monkeypatch.setenv(MAX_PIXELS_ENV, str(pixels))

    return set_cap


@contextmanager
def unprivileged():
    """Root reads every file: as root, act as 'nobody' (effective uid only) meanwhile."""
    if os.geteuid() != 0:
        yield
        return
    os.seteuid(pwd.getpwnam("nobody").pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)


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


def test_corrupt_header_is_an_error(tmp_path):
    # Pillow raises ValueError here (IndexError, TypeError or struct.error for other damage).
    path = tmp_path / "bad.ppm"
    path.write_bytes(b"P6\nab 4\n255\n")
    with pytest.raises(ImageLoadError, match=r"bad\.ppm: unreadable or truncated image"):
        load_rgb(path)


def test_missing_file_is_an_error(tmp_path):
    with pytest.raises(ImageLoadError, match=r"nothing\.png: no such file$"):
        load_rgb(tmp_path / "nothing.png")


def test_directory_is_an_error(tmp_path):
    (tmp_path / "folder.png").mkdir()
    with pytest.raises(ImageLoadError, match=r"folder\.png: is a directory, not an image file$"):
        load_rgb(tmp_path / "folder.png")


def test_symlink_loop_and_broken_symlink_are_errors(tmp_path):
    (tmp_path / "loop.png").symlink_to("loop.png")
    with pytest.raises(ImageLoadError, match=r"loop\.png: symlink loop$"):
        load_rgb(tmp_path / "loop.png")
    (tmp_path / "dangling.png").symlink_to("gone.png")
    with pytest.raises(ImageLoadError, match=r"dangling\.png: broken symlink to gone\.png$"):
        load_rgb(tmp_path / "dangling.png")


def test_pipe_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(ImageLoadError, match=r"pipe\.png: not a regular file$"):
        load_rgb(tmp_path / "pipe.png")


def test_unreadable_file_is_an_error(crop64, write_png):
    path = write_png(crop64, "secret.png")
    path.chmod(0)
    with unprivileged(), pytest.raises(ImageLoadError) as caught:
        load_rgb(path)
    assert str(caught.value) == f"{path}: cannot read (Permission denied)"


def test_pixel_cap_is_checked_from_the_header(tmp_path):
    path = tmp_path / "bomb.png"
    write_png_claiming(path, 60000, 60000)
    with pytest.raises(ImageLoadError) as caught:
        load_rgb(path)
    assert str(caught.value) == (
        f"{path}: image is 60000x60000 (3,600,000,000 pixels), over the cap of 67,108,864 "
        "pixels; set INR_STUDY_MAX_PIXELS to a larger number to load it"
    )
    write_png_claiming(path, 12000, 12000)  # 144 Mpixel: Pillow alone would only warn
    with pytest.raises(ImageLoadError, match=r"12000x12000 \(144,000,000 pixels\), over the cap"):
        read_header(path)


def test_pixel_cap_is_set_by_the_environment(crop64, write_png, tmp_path, pixel_cap):
    assert DEFAULT_MAX_PIXELS == 2**26
    path = write_png(crop64)
    pixel_cap(64 * 64 - 1)
    with pytest.raises(ImageLoadError, match=r"64x64 \(4,096 pixels\), over the cap of 4,095"):
        load_rgb(path)
    pixel_cap(64 * 64)
    np.testing.assert_array_equal(load_rgb(path), crop64)
    # Raised past Pillow's own limit, the header is read without Pillow refusing it.
    pixel_cap(4 * 10**9)
    write_png_claiming(tmp_path / "bomb.png", 60000, 60000)
    assert read_header(tmp_path / "bomb.png") == ImageHeader(60000, 60000, "RGB")
    pixel_cap("lots")
    with pytest.raises(InputError, match=r"INR_STUDY_MAX_PIXELS='lots': expected a positive whole"):
        load_rgb(path)


def test_read_header_decodes_nothing(crop64, write_png, monkeypatch):
    path = write_png(crop64[:20], "strip.png")
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("decoded"))
    assert read_header(path) == ImageHeader(64, 20, "RGB")
    with pytest.raises(pytest.fail.Exception, match="decoded"):
        load_rgb(path)


@pytest.mark.parametrize(
    ("orientation", "displayed", "notice"),
    [
        (2, np.fliplr, "flipped left-right"),
        (3, lambda a: np.rot90(a, 2), "rotated 180°"),
        (4, np.flipud, "flipped top-bottom"),
        (5, lambda a: a.transpose(1, 0, 2), "flipped along its main diagonal"),
        (6, lambda a: np.rot90(a, -1), "rotated 90° clockwise"),
        (7, lambda a: np.rot90(a, 2).transpose(1, 0, 2), "flipped along its anti-diagonal"),
        (8, lambda a: np.rot90(a, 1), "rotated 90° counter-clockwise"),
    ],
)
def test_exif_orientation_is_applied_with_a_notice(
    crop64, tmp_path, caplog, orientation, displayed, notice
):
    stored = crop64[:40]
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "camera.png"
    Image.fromarray(stored).save(path, exif=exif)
    np.testing.assert_array_equal(load_rgb(path), displayed(stored))
    assert (
        f"camera.png: {notice} as its EXIF orientation ({orientation}) says, to code the image "
        "as displayed" in caplog.text
    )


def test_exif_rotated_jpeg_is_coded_as_displayed(crop64, tmp_path, caplog):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(crop64[:40]).save(tmp_path / "phone.jpg", exif=exif)
    assert load_rgb(tmp_path / "phone.jpg").shape == (64, 40, 3)
    assert "phone.jpg: rotated 90° clockwise as its EXIF orientation (6) says" in caplog.text


@pytest.mark.parametrize("name", ["animated.gif", "animated.png", "animated.webp", "pages.tif"])
def test_multi_frame_files_are_refused(crop64, tmp_path, name):
    frames = [Image.fromarray(crop64), Image.fromarray(crop64[::-1])]
    frames[0].save(tmp_path / name, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageLoadError) as caught:
        load_rgb(tmp_path / name)
    assert str(caught.value) == (
        f"{tmp_path / name}: has 2 frames; inr-study codes still images: extract the frame you want"
    )


def test_mpo_is_read_as_its_primary_image(crop64, tmp_path):
    # Cameras write MPO: a JPEG with a preview or a second stereo view after it.
    primary, preview = Image.fromarray(crop64), Image.fromarray(crop64[::-1])
    primary.save(tmp_path / "camera.mpo", save_all=True, append_images=[preview])
    loaded = load_rgb(tmp_path / "camera.mpo")
    assert loaded.shape == (64, 64, 3)
    assert np.abs(loaded.astype(int) - crop64).mean() < 10  # JPEG's error, not the flipped view


def test_save_png_round_trips(crop64, tmp_path):
    save_png(tmp_path / "sub" / "out.png", crop64)
    np.testing.assert_array_equal(load_rgb(tmp_path / "sub" / "out.png"), crop64)

"""Hostile image files given to ``inr-study encode`` and ``evaluate``: one line, exit 2, no
traceback, no pixel decoded for a header that claims too much."""

import json

import numpy as np
import pytest
from PIL import Image

from study.cli import main
from tests.study.test_imageio import write_png_claiming

ENCODE = ["--codec", "coolchic-v1", "--loss", "mse", "--lmbda", "4e-3", "--preset", "debug"]


def refusal(command: str, capsys) -> str:
    """The error line ``command`` printed last, after checking there was no traceback."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"inr-study {command}: error: ")
    return line.removeprefix(f"inr-study {command}: error: ")


@pytest.mark.parametrize("command", ["encode", "evaluate"])
def test_decompression_bomb_is_refused_from_its_header(command, tmp_path, capsys):
    bomb = tmp_path / "bomb.png"
    write_png_claiming(bomb, 60000, 60000)
    argv = {
        "encode": [str(bomb), "-o", str(tmp_path / "out.inr"), *ENCODE],
        "evaluate": [str(bomb), str(bomb)],
    }[command]
    assert main([command, *argv]) == 2
    assert refusal(command, capsys) == (
        f"{bomb}: image is 60000x60000 (3,600,000,000 pixels), over the cap of 67,108,864 "
        "pixels; set INR_STUDY_MAX_PIXELS to a larger number to load it"
    )
    assert not (tmp_path / "out.inr").exists()


@pytest.mark.parametrize(
    ("name", "write", "expected"),
    [
        ("folder.png", lambda path: path.mkdir(), "is a directory, not an image file"),
        ("loop.png", lambda path: path.symlink_to(path.name), "symlink loop"),
        (
            "moving.gif",
            lambda path: Image.new("RGB", (32, 32)).save(
                path,
                save_all=True,
                append_images=[Image.new("RGB", (32, 32), c) for c in ("red", "blue")],
            ),
            "has 3 frames; inr-study codes still images: extract the frame you want",
        ),
    ],
)
def test_evaluate_names_the_problem(name, write, expected, crop64, write_png, tmp_path, capsys):
    write(tmp_path / name)
    assert main(["evaluate", str(write_png(crop64)), str(tmp_path / name)]) == 2
    assert refusal("evaluate", capsys) == f"{tmp_path / name}: {expected}"


def test_evaluate_compares_an_exif_rotated_image_as_displayed(crop64, tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # stored on its side, displayed rotated 90° clockwise
    Image.fromarray(np.rot90(crop64[:40], 1)).save(tmp_path / "stored.png", exif=exif)
    Image.fromarray(crop64[:40]).save(tmp_path / "displayed.png")
    argv = ["evaluate", str(tmp_path / "displayed.png"), str(tmp_path / "stored.png")]
    assert main([*argv, "--no-optional-metrics"]) == 0
    printed = capsys.readouterr()
    assert json.loads(printed.out)["psnr"] is None  # identical: infinite PSNR
    assert "the images are identical: PSNR (dB) came out infinite (written as null)" in printed.err

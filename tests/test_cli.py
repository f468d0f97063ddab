import json

from study import cli


def test_usage_lists_commands(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "baselines" in out and "evaluate" in out


def test_unknown_command_is_refused(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_evaluate_says_when_the_images_are_identical(crop256, write_png, capsys):
    image = str(write_png(crop256, "a.png"))
    assert cli.main(["evaluate", image, image, "--no-optional-metrics"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["psnr"] is None
    assert json.loads(captured.out)["ms_ssim_db"] is None  # MS-SSIM 1: infinite in dB too
    expected = (
        "the images are identical: PSNR (dB), MS-SSIM (dB) came out infinite (written as null)"
    )
    assert expected in captured.err


def test_help_lists_every_command_without_heavy_imports():
    import subprocess
    import sys

    code = (
        "import sys; from study import cli; cli.main(['--help']); "
        "print(sorted(m for m in ('torch', 'ray', 'mlflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
    assert "dashboard" in out and "encode" in out and out.strip().endswith("[]")


def test_evaluate_prints_json_metrics(crop256, write_png, capsys):
    original = write_png(crop256, "a.png")
    decoded = write_png(255 - crop256, "b.png")
    assert cli.main(["evaluate", str(original), str(decoded), "--no-optional-metrics"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    # Every metric of the table (a plugin imported earlier in this process may have added one).
    assert {"psnr", "ssim", "ms_ssim", "ms_ssim_db", "lpips"} <= set(metrics)
    assert metrics["lpips"] is None and metrics["psnr"] < 15


def test_bad_input_gives_one_line_error_not_traceback(tmp_path, capsys):
    (tmp_path / "a.png").write_text("text")
    assert cli.main(["evaluate", str(tmp_path / "a.png"), str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inr-study evaluate: error: ") and "a.png: not an image file" in err


def test_encode_then_decode_through_the_cli(crop256, write_png, tmp_path, capsys):
    image = write_png(crop256, "crop.png")
    bitstream, decoded = tmp_path / "crop.inr", tmp_path / "decoded.png"
    argv = ["encode", str(image), "-o", str(bitstream), "--codec", "coolchic-v1", "--preset",
            "debug", "--loss", "l1_ssim(0.2)", "--lmbda", "4e-3", "--quiet",
            "--no-optional-metrics", "--decoded", str(tmp_path / "encoder-side.png")]  # fmt: skip
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["bpp"] == 8 * bitstream.stat().st_size / 256**2
    assert summary["loss"] == "l1_ssim(0.2)" and summary["convention"] == "coolchic"
    # The input by name and pixels, not by a path of this machine.
    assert summary["image"] == "crop.png" and len(summary["image_digest"]) == 16
    for key in ("psnr", "ms_ssim", "bpp_estimate", "iterations", "encode_seconds", "mac_per_pixel"):
        assert summary[key] is not None, key
    assert cli.main(["decode", str(bitstream), "-o", str(decoded)]) == 0
    from study.data.imageio import load_rgb

    assert (load_rgb(decoded) == load_rgb(tmp_path / "encoder-side.png")).all()


def test_encode_refuses_unknown_codec_and_loss(crop64, write_png, capsys):
    import pytest

    image = str(write_png(crop64))
    with pytest.raises(SystemExit):
        cli.main(["encode", image, "-o", "x.inr", "--codec", "jpeg"])
    valid = "valid: c3, coolchic-v1, coolchic-v2, nif"
    assert f"unknown INR codec 'jpeg'; {valid}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["encode", image, "-o", "x.inr", "--loss", "l3"])
    assert "unknown component 'l3'" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # refused before any fitting, naming the file
        cli.main(["encode", image, "-o", "x.inr", "--codec", "c3", "--loss", "ms_ssim"])
    err = capsys.readouterr().err
    assert f"{image}: its ms_ssim term needs a short side of at least 161 px, got 64" in err


def test_nif_through_the_cli(crop256, write_png, tmp_path, capsys):
    import pytest

    image = write_png(crop256, "crop.png")
    bitstream = tmp_path / "crop.nif.inr"
    argv = ["encode", str(image), "-o", str(bitstream), "--codec", "nif", "--config", "0_31",
            "--preset", "debug", "--quiet", "--no-optional-metrics"]  # fmt: skip
    assert cli.main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["loss"] == "lc_ssim(0.01)" and summary["convention"] == "nif"
    assert summary["configuration"] == "0_31" and summary["mac_per_pixel"] == 16768
    assert cli.main(["decode", str(bitstream), "-o", str(tmp_path / "out.png")]) == 0
    with pytest.raises(SystemExit):
        cli.main([*argv, "--lmbda", "1e-3"])
    assert "--lmbda does not apply to nif" in capsys.readouterr().err

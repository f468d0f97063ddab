import json

from study import cli


def test_usage_lists_commands(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    assert "baselines" in out and "evaluate" in out


def test_unknown_command_is_refused(capsys):
    assert cli.main(["trian"]) == 2
    assert "unknown command 'trian'" in capsys.readouterr().err


def test_evaluate_prints_json_metrics(crop256, write_png, capsys):
    original = write_png(crop256, "a.png")
    decoded = write_png(255 - crop256, "b.png")
    assert cli.main(["evaluate", str(original), str(decoded), "--no-lpips"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"psnr", "ssim", "ms_ssim", "ms_ssim_db", "lpips"}
    assert metrics["lpips"] is None and metrics["psnr"] < 15


def test_bad_input_gives_one_line_error_not_traceback(tmp_path, capsys):
    (tmp_path / "a.png").write_text("text")
    assert cli.main(["evaluate", str(tmp_path / "a.png"), str(tmp_path / "a.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inr-study evaluate: error: ") and "a.png: not an image file" in err

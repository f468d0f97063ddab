"""``inr-study mlflow``: the URLs it prints open the classic view and the study's trial tables."""

import json

import yaml
from mlflow.tracking import MlflowClient

from study.cli import main
from study.engine.mlflow_view import run_url
from study.layout import default_tracking_uri


def test_the_printed_urls_open_the_trial_tables_of_the_classic_view(tmp_path, small_config, capsys):
    config = small_config(
        codecs=[
            {"name": "coolchic-v1", "preset": "debug", "lmbdas": [2e-2]},
            {"name": "nif", "preset": "debug", "configs": ["0_31"]},
            {"name": "jpeg", "qualities": [30]},
        ],
        seeds=[0, 1],
    )
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "study.yaml").write_text(yaml.safe_dump(config))

    assert main(["mlflow", str(folder), "--no-serve", "--port", "5123"]) == 0
    out = capsys.readouterr().out
    ui = "http://127.0.0.1:5123/#/experiments/1/runs?workflowType=machine_learning"
    assert f"finished INR fits: {ui}&viewStateShareKey=fits" in out
    assert f"anchors, running and failed ones included: {ui}&viewStateShareKey=trials" in out

    # The tables are experiment tags; their columns come from the codecs' rate axes and the
    # metric table's headline figures.
    tags = MlflowClient(default_tracking_uri(folder)).get_experiment("1").tags
    fits = json.loads(tags["mlflow.sharedViewState.fits"])
    assert fits["selectedColumns"] == [
        "attributes.`Source`",
        *(f"params.`{p}`" for p in ("codec", "loss", "lmbda", "configuration", "quality")),
        *(f"params.`{p}`" for p in ("image", "seed")),
        *(f"metrics.`{m}`" for m in ("bpp", "psnr", "ms_ssim_db", "lpips")),
    ]
    assert fits["orderByKey"] == "metrics.`bpp`" and fits["orderByAsc"] is True
    assert run_url("http://h:1/", "1", "abc") == (
        "http://h:1/#/experiments/1/runs/abc?workflowType=machine_learning"
    )

"""The dashboard page and its payload, without a browser."""

import json
import re
from importlib import resources

from dashboards.data import StudyData, vocabulary
from dashboards.page import live_payload, render
from dashboards.style import page_style
from study.results.report import bd_rate_rows


def records() -> list[dict]:
    rows = []
    for loss, family, alpha in (("mse", "mse", None), ("lc_ssim(0.01)", "lc_ssim", 0.01)):
        for rank, lmbda in enumerate((2e-2, 4e-3)):
            rows.append(
                {
                    "run_id": f"{loss}{rank}",
                    "experiment_id": "1",
                    "trial_key": f"k{loss}{rank}",
                    "codec": "coolchic-v1",
                    "loss": loss,
                    "loss_family": family,
                    "alpha": alpha,
                    "rate_parameter": "lmbda",
                    "rate": lmbda,
                    "image": "kodim01",
                    "seed": 0,
                    "search": None,
                    "bpp": 0.3 * (rank + 1),
                    "psnr": 28.0 + rank,
                    "ms_ssim_db": 12.0 + rank,
                    "lpips": None,
                }
            )
    rows.append({**rows[0], "codec": "jpeg", "loss": None, "loss_family": None, "alpha": None,
                 "rate_parameter": "quality", "rate": 50, "run_id": "j"})  # fmt: skip
    return rows


def test_the_payload_declares_metrics_codecs_and_loss_families():
    words = vocabulary(records())
    assert [m["key"] for m in words["metrics"]] == ["psnr", "ms_ssim_db", "lpips"]
    assert words["metrics"][2]["label"] == "LPIPS (lower is better)"
    assert [c["name"] for c in words["codecs"]] == ["coolchic-v1", "jpeg"]
    assert words["codecs"][0]["rate_label"] == "λ" and not words["codecs"][1]["fits_network"]
    families = {f["name"]: f for f in words["loss_families"]}
    assert families["lc_ssim"]["structural"] and not families["mse"]["structural"]
    assert [m["key"] for m in words["bd_metrics"]] == ["psnr", "ms_ssim_db", "lpips"]


def test_the_page_embeds_its_data_and_reads_its_vocabulary_from_it():
    rows = records()
    data = StudyData("demo </script>", None, rows, bd_rate_rows(rows))
    page = render(data, references=[], crops=[], crops_image=None, crops_bpp=None,
                  mlflow_ui="http://127.0.0.1:5000/")  # fmt: skip
    embedded = re.search(r"<script id=study-data type=application/json>(.*?)</script>", page, re.S)
    payload = json.loads(embedded.group(1).replace("<\\/", "</"))
    assert payload == json.loads(json.dumps({**live_payload(data), **{
        k: payload[k] for k in ("references", "mlflow_ui", "live_seconds")}}))  # fmt: skip
    assert payload["mlflow_ui"] == "http://127.0.0.1:5000"
    assert payload["style"] == json.loads(json.dumps(page_style(rows)))  # as the figures draw
    assert "inr-study: demo &lt;/script&gt;" in page  # the title is escaped
    assert "<th>PSNR (dB)</th>" in page and "MS-SSIM (dB): mean of per-image dB values" in page


def test_the_script_names_no_codec_metric_or_loss():
    script = resources.files("dashboards").joinpath("static/dashboard.js").read_text()
    for name in ("psnr", "lpips", "ms_ssim", "coolchic", "nif", "jpeg", "mse", "ssim", "lmbda"):
        assert name not in script.lower(), name


def test_the_live_server_answers_only_its_own_host_names():
    import http.client
    import threading

    from dashboards.serve import make_server

    rows = records()
    data = StudyData("t", None, rows, [])
    server = make_server("<html>page</html>", lambda: data, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_port

    def status(host: str, path: str = "/") -> int:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("GET", path, headers={"Host": host})
        return connection.getresponse().status

    try:
        assert status(f"127.0.0.1:{port}") == 200
        assert status(f"localhost:{port}", "/data.json") == 200
        assert status(f"attacker.example:{port}") == 403  # DNS rebinding
        assert status(f"localhost:{port}", "/../study.yaml") == 404
    finally:
        server.shutdown()
        server.server_close()

"""The dashboard page and its payload, without a browser."""

import argparse
import json
import re
from importlib import resources
from pathlib import Path

import pytest

from dashboards.data import StudyData, metric_notes, vocabulary
from dashboards.page import live_payload, render
from dashboards.references import (
    ImageSet,
    Reference,
    match_references,
    read_references,
    reference_argument,
    reference_curves,
)
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
    # Points are joined along each codec's declared rate axis: λ grows as files shrink.
    assert words["codecs"][0]["rate_increases"] is False and words["codecs"][1]["rate_increases"]
    nif = vocabulary([{**records()[0], "codec": "nif", "rate": "0_31"}])["codecs"][0]
    assert nif["rate_choices"][:3] == ("120", "0_31", "200") and nif["rate_increases"]
    families = {f["name"]: f for f in words["loss_families"]}
    assert families["lc_ssim"]["structural"] and not families["mse"]["structural"]
    assert [m["key"] for m in words["bd_metrics"]] == ["psnr", "ms_ssim_db", "lpips"]
    assert {"key": "latent_bits", "label": "latents"} in words["rate_parts"]


def test_the_page_embeds_its_data_and_reads_its_vocabulary_from_it():
    rows = records()
    data = StudyData("demo </script>", None, rows, bd_rate_rows(rows))
    page = render(data, references=[], reference_notes=[], mlflow_ui="http://127.0.0.1:5000/")
    embedded = re.search(r"<script id=study-data type=application/json>(.*?)</script>", page, re.S)
    payload = json.loads(embedded.group(1).replace("<\\/", "</"))
    assert payload == json.loads(json.dumps({**live_payload(data), **{
        k: payload[k] for k in ("run_url", "live_seconds")}}))  # fmt: skip
    assert payload["run_url"].startswith("http://127.0.0.1:5000/#/experiments/{experiment}/")
    assert payload["style"] == json.loads(json.dumps(page_style(rows)))  # as the figures draw
    assert "inr-study: demo &lt;/script&gt;" in page  # the title is escaped
    assert "<th>PSNR (dB)</th>" in page and "MS-SSIM (dB): mean of per-image dB values" in page


def test_a_growing_study_s_bd_rate_names_the_images_its_curves_share():
    # kodim02 has MSE at both λ but the SSIM loss at one: the curves are compared on kodim01.
    rows = [r for r in records() if r["codec"] != "jpeg"]
    rows += [{**r, "image": "kodim02", "run_id": r["run_id"] + "b"} for r in rows[:3]]
    data = StudyData("growing", None, rows, bd_rate_rows(rows))
    page = render(data, references=[], reference_notes=[], mlflow_ui="http://127.0.0.1:5000/")
    table = re.search(r"<table id=bd-rate>.*?</table>", page, re.S).group(0)
    assert "<small>(over kodim01)</small>" in table


def test_the_page_shows_each_claim_s_verdict_and_a_live_look_redraws_it():
    from dashboards.page import served_payload
    from study.results.claims import judge_claims
    from study.results.report import read_per_image_csv

    published = Path(__file__).parents[2] / "results/icip24-cpu/reports/per_image.csv"
    rows = read_per_image_csv(published)  # COOL-CHIC v1's five losses, JPEG, AVIF: 8 crops
    data = StudyData("v1", None, rows, [], claims=judge_claims(rows)[1])
    page = render(data, references=[], reference_notes=[], mlflow_ui="")
    table = re.search(r"<table id=claims-table>.*?</table>", page, re.S).group(0)
    row = re.search(r"<tr><td>v1-ssim-psnr</td>.*?</tr>", table).group(0)
    assert "<b>does not hold</b>" in row and "<td>0 / 3 / 4 / 3</td>" in row
    assert table in served_payload(data)["claims_html"]
    bare = render(StudyData("t", None, records(), []), references=[], mlflow_ui="")
    assert "No claim of the paper speaks of these curves." in bare


def test_the_script_names_no_codec_metric_or_loss():
    script = resources.files("dashboards").joinpath("static/dashboard.js").read_text()
    names = ("psnr", "lpips", "ms_ssim", "coolchic", "nif", "jpeg", "mse", "ssim", "lmbda", "_bits")
    for name in names:
        assert name not in script.lower(), name


def test_the_live_server_answers_only_its_own_host_names():
    import http.client
    import threading

    from dashboards.serve import make_server

    rows = records()
    data = StudyData("t", None, rows, [])
    server = make_server("<html>page</html>", lambda: data, lambda _: {}, port=0)
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


def _reference(folder: Path, name: str) -> Path:
    path = folder / f"{name.lower()}.json"
    results = {"bpp": [0.5, 1.0], "psnr-rgb": [30.0, 33.0]}
    path.write_text(json.dumps({"name": name, "description": "", "results": results}))
    return path


def test_a_served_page_matches_references_to_the_images_its_study_holds_now(tmp_path):
    import threading
    import urllib.request

    from dashboards.serve import make_server

    # A reference over two crops; the study holds kodim01 at first, then kodim02 too.
    two = ImageSet("kodak", frozenset({"kodim01", "kodim02"}), 192)
    reference = Reference(_reference(tmp_path, "JPEG"), two)
    first = records()
    grown = first + [{**r, "image": "kodim02", "run_id": r["run_id"] + "b"} for r in first]
    looks = iter([first, grown])

    def load() -> StudyData:
        rows = next(looks)
        return StudyData("growing", None, rows, bd_rate_rows(rows), dataset="kodak", crop=192)

    read = read_references([reference])
    reference.path.unlink()  # read once, at start: matched again at each look

    def matched(data: StudyData) -> dict:
        references, notes = match_references(read, data.image_set())
        return {"references": references, "reference_notes": notes}

    server = make_server("<html>page</html>", load, matched, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/data.json"
    try:
        before, after = (json.load(urllib.request.urlopen(url, timeout=10)) for _ in range(2))
    finally:
        server.shutdown()
        server.server_close()
    assert before["references"] == [] and "left out" in before["reference_notes"][0]
    assert [c["name"] for c in after["references"]] == ["JPEG"] and after["reference_notes"] == []
    # The BD-rate table, drawn once on the page, comes with each look: now over two images.
    assert "<table id=bd-rate>" in before["bd_html"] and "n = 1" in before["bd_html"]
    assert "n = 2" in after["bd_html"]


def test_a_reference_states_its_images(tmp_path):
    path = _reference(tmp_path, "JPEG")
    kodak = reference_argument(f"{path}:kodak").images
    assert len(kodak.names) == 24 and "kodim24" in kodak.names and kodak.crop is None
    assert kodak.describe() == "24 kodak images at full size"
    crops = reference_argument(f"{path}:kodak@192-top-left").images
    assert (crops.crop, crops.anchor) == (192, "top-left") and crops.names == kodak.names
    assert reference_argument(str(path)) == Reference(path)  # images not stated
    with pytest.raises(argparse.ArgumentTypeError, match="DATASET@SIDE"):
        reference_argument(f"{path}:kodak@big")


def test_references_are_drawn_only_against_the_images_they_are_the_mean_over(tmp_path):
    jpeg, webp = _reference(tmp_path, "JPEG"), _reference(tmp_path, "WebP")
    full = reference_argument(f"{jpeg}:kodak")
    study = StudyData("demo", None, records(), dataset="kodak", crop=192)
    crops = study.image_set()
    assert crops == ImageSet("kodak", frozenset({"kodim01"}), 192)

    curves, notes = reference_curves([full], full.images)  # a full-size study of all 24
    assert notes == []
    assert curves == [{"name": "JPEG", "label": "JPEG (reference)", "bpp": [0.5, 1.0],
                       "psnr": [30.0, 33.0]}]  # fmt: skip

    curves, notes = reference_curves([full, Reference(webp)], crops)
    assert curves == []
    assert notes == [
        "Reference JPEG (jpeg.json) left out: it is the mean over 24 kodak images at full size; "
        "this study's curves over 1 kodak image as 192-px center crops.",
        "Reference WebP (webp.json) left out: its images are not stated (--reference "
        "FILE:DATASET[@SIDE]; CompressAI's Kodak files are the mean over the 24 full-size "
        "images: FILE:kodak).",
    ]

    curves, notes = reference_curves([full], crops, unmatched=True)  # forced: labelled
    assert curves[0]["label"] == (
        "JPEG (reference: 24 kodak images at full size; not this study's images)"
    )
    assert notes[0].startswith("Reference JPEG (jpeg.json) drawn although it is the mean over")
    _, notes = reference_curves([full], None)  # an experiment without its study folder
    assert "this study's images are unknown" in notes[0]


def test_a_metric_without_values_says_why_and_how_to_add_it():
    rows = [{**r, "height": 192, "width": 192} for r in records()]  # LPIPS recorded as missing
    rows[1]["psnr"] = None
    notes = metric_notes(StudyData("demo", None, rows, folder=Path("results/demo/demo")))
    assert set(notes) == {"lpips", "psnr"}
    assert notes["lpips"].startswith("LPIPS (lower is better): no values: recorded as missing")
    assert "`inr-study rescore results/demo/demo` adds it" in notes["lpips"]
    assert notes["psnr"].startswith("PSNR (dB): missing on 1 of 5 trials, whose points are left")

    small = [{**r, "height": 64, "width": 64, "ms_ssim_db": None} for r in records()]
    notes = metric_notes(StudyData("small", None, small))
    assert notes["ms_ssim_db"] == (
        "MS-SSIM (dB): no values: it needs images of at least 161 px a side, these have 64."
    )
    assert "`inr-study rescore STUDY_FOLDER`" in notes["lpips"]

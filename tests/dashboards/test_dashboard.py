"""The dashboard of a real (small) study, opened in headless Chromium."""

import json
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from dashboards.cli import main as dashboard
from dashboards.crops import LiveCrops, ShownCrops, decoded_crops
from dashboards.data import StudyData, from_study
from dashboards.page import render
from dashboards.references import reference_argument, reference_curves
from dashboards.serve import make_server
from study.commands.mlflow_ui import served
from study.config import parse_config
from study.engine.mlflow_view import experiment_url
from study.engine.runner import Study

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
REFERENCE = (
    Path(__file__).resolve().parents[3]
    / "shared/reference/InterDigitalInc_CompressAI/results/image/kodak/jpeg.json"
)


@pytest.fixture
def browser_page():
    if CHROMIUM is None:
        pytest.skip("chromium missing: run scripts/install-system-packages.sh as root")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        # Clicking a point opens its MLflow run: record the URL instead of opening a tab.
        page.add_init_script("window.open = (url) => { window.openedUrl = url; };")
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page, errors
        browser.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def y_title(page) -> str:
    return page.locator("#rd-plot .ytitle").text_content()


def text(page, selector: str) -> str:
    return page.locator(selector).text_content()


def test_dashboard_of_a_real_study_in_headless_chromium(
    tmp_path, study_env, small_config, browser_page
):
    config = small_config(losses=["mse", "lc_ssim(0.01)"])
    result = Study(parse_config(config)).run()
    out = tmp_path / "dashboard.html"
    argv = [str(result.folder), "-o", str(out)]
    if REFERENCE.exists():  # the 24 full-size images: not these crops
        argv += ["--reference", f"{REFERENCE}:kodak"]
    assert dashboard(argv) == 0
    assert out.stat().st_size < 10 * 2**20

    page, errors = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    names = page.evaluate("document.getElementById('rd-plot').data.map(t => t.name)")
    # Named and styled as the static figures are (dashboards/style.py).
    assert {"MSE", "LogCosh + 0.01·(1 − SSIM)", "jpeg", "Pareto front"} <= set(names)
    if REFERENCE.exists():
        assert not any("reference" in name for name in names)
        assert text(page, "#reference-notes") == (
            "Reference JPEG (jpeg.json) left out: it is the mean over 24 kodak images at full "
            "size; this study's curves over 2 kodak images as 64-px center crops."
        )
    assert page.locator("#bd-rate").count() == 1  # lc_ssim against COOL-CHIC's MSE

    assert y_title(page) == "PSNR (dB)"
    assert text(page, "#metric-note") == ""
    page.select_option("#metric", "lpips")  # the study ran without LPIPS
    assert y_title(page) == "LPIPS (lower is better)"
    assert text(page, "#metric option[value=lpips]").endswith("(no values)")
    assert f"`inr-study rescore {result.folder}` adds it" in text(page, "#metric-note")
    page.select_option("#metric", "ms_ssim_db")  # 64-px crops: too small for MS-SSIM
    assert y_title(page) == "MS-SSIM (dB = −10·log₁₀(1 − MS-SSIM) of each image)"
    assert "at least 161 px a side, these have 64" in text(page, "#metric-note")
    page.select_option("#metric", "psnr")

    # One image's curves link each point to its run.
    page.select_option("#image", "kodim23")
    page.locator("#codecs input[value=jpeg]").uncheck()
    trace = page.evaluate(
        "document.getElementById('rd-plot').data.findIndex(t => t.name === 'MSE')"
    )
    point = page.locator(f"#rd-plot .scatterlayer .trace:nth-child({trace + 1}) path.point").first
    point.click(force=True)
    url = page.locator("#run-link").get_attribute("href")
    assert url == page.evaluate("window.openedUrl")
    prefix = "http://127.0.0.1:5000/#/experiments/"
    assert url.startswith(prefix)
    experiment, _, run_id = url.removeprefix(prefix).partition("/runs/")
    run_id = run_id.partition("?")[0]  # the view's query
    run = MlflowClient(result.tracking_uri).get_run(run_id)
    assert run.info.experiment_id == experiment
    assert run.data.params["codec"] == "coolchic-v1" and run.data.params["loss"] == "mse"
    assert run.data.params["image"] == "kodim23"

    assert page.locator(".crops img").count() == 1 + 3  # original + v1 mse, v1 lc_ssim, jpeg
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    print(f"screenshot: {tmp_path / 'dashboard.png'}")
    assert errors == []

    # Published side by side: plotly.js from one shared copy; the run keeps the whole page.
    linked = tmp_path / "published" / "small" / "dashboard.html"
    argv = [str(result.folder), "-o", str(linked), "--plotly-dir", str(linked.parent.parent)]
    assert dashboard(argv) == 0
    (shared,) = (tmp_path / "published").glob("plotly-*.min.js")
    assert linked.stat().st_size < 2**20 < shared.stat().st_size
    assert f'<script src="../{shared.name}">' in linked.read_text()
    page.goto(linked.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    assert errors == []
    parent = from_study(result.folder).parent_run_id
    client = MlflowClient(result.tracking_uri)
    kept = Path(client.download_artifacts(parent, "dashboard/dashboard.html", tmp_path))
    assert kept.stat().st_size > 2**20  # plotly.js inlined: opens wherever it is copied
    alone = tmp_path / "alone.html"
    shutil.copy(linked, alone)
    page.goto(alone.as_uri())
    assert text(page, "body > p:first-child").startswith("plotly.js was not found at ../plotly-")
    errors.clear()

    # The live page (--serve) on the loopback: served, and refreshed from MLflow.
    html = render(
        from_study(result.folder),
        references=[],
        reference_notes=[],
        mlflow_ui="http://127.0.0.1:5000",
        live_seconds=3600,
    )
    looks = iter(range(1, 100))
    crops = LiveCrops(result.folder, None, None, 32)

    def look(data: StudyData) -> dict:
        notes = [f"look {next(looks)}: {len(data.records)} trials"]
        return {"reference_notes": notes, "crops": crops(data)}

    server = make_server(html, lambda: from_study(result.folder), look, port=0)
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_selector("body[data-ready=true]")
        page.evaluate("document.getElementById('bd-rate').dataset.drawn = 'by the page'")
        page.evaluate("refresh()")
        page.wait_for_function("document.getElementById('run-count').textContent === '12'")
        # What the page drew once is drawn again from the look: reference notes, BD-rates.
        assert text(page, "#reference-notes") == "look 1: 12 trials"
        assert page.locator("#bd-rates table#bd-rate").count() == 1
        assert page.locator("table#bd-rate[data-drawn]").count() == 0
        # The page began with no crops; the look chose them: the original, then each curve's.
        shown = crops(from_study(result.folder))
        assert len(shown.crops) > 2 and shown.crops[0].caption.startswith("original")
        assert page.locator("#decoded-crops figure").count() == len(shown.crops)
    finally:
        server.shutdown()
        server.server_close()
    assert errors == []

    # The same run in MLflow's UI (`inr-study mlflow`): the classic view, and the table of fits.
    port = free_port()
    ui = f"http://127.0.0.1:{port}"
    with served(result.tracking_uri, port):
        page.set_viewport_size({"width": 2400, "height": 900})  # every column rendered
        page.goto(url.replace("http://127.0.0.1:5000", ui))
        page.wait_for_selector("text=Parameters")
        sidebar = page.locator("nav").first.inner_text()
        assert "Runs" in sidebar and "Token Usage" not in page.inner_text("body")
        page.screenshot(path=tmp_path / "mlflow-run.png")
        page.goto(experiment_url(ui, experiment, "fits"))
        page.wait_for_selector("text=8 matching runs")  # 2 losses × 2 λ × 2 images
        headers = set(page.locator("[role=columnheader]").all_inner_texts())
        assert {"Source", "codec", "loss", "lmbda", "image", "bpp", "psnr"} <= headers
        commit = run.data.tags["git_commit"][:7]
        assert f"{commit} inr-study" in page.inner_text("body")  # the Source column
        page.screenshot(path=tmp_path / "mlflow-fits.png")
    print(f"screenshots: {tmp_path / 'mlflow-run.png'}, {tmp_path / 'mlflow-fits.png'}")


def _kodak_records() -> list[dict]:
    """The 24 full-size Kodak images: NIF's file shrinks from width 120 to 0_31 (made up, to be
    noted), COOL-CHIC's and JPEG's grow with their settings; no LPIPS."""
    curves = (
        ("nif", "mse", "configuration", {"120": 0.35, "0_31": 0.32, "280": 0.9}),
        ("coolchic-v1", "mse", "lmbda", {2e-2: 0.2, 4e-3: 0.5, 1e-3: 0.9}),
        ("jpeg", None, "quality", {5: 0.2, 20: 0.5, 80: 1.5}),
    )
    rows = []
    for i in range(1, 25):
        for codec, loss, axis, rates in curves:
            for rate, bpp in rates.items():
                rows.append(
                    {
                        "run_id": f"{codec}-{rate}-{i}", "experiment_id": "1", "codec": codec,
                        "loss": loss, "loss_family": loss, "rate_parameter": axis, "rate": rate,
                        "preset": "debug" if loss else None, "image": f"kodim{i:02d}", "seed": 0,
                        "bpp": bpp * (1 + i / 100), "psnr": 20 + 10 * bpp, "ms_ssim_db": 10 + bpp,
                        "lpips": None, "height": 512, "width": 768,
                    }
                )  # fmt: skip
    return rows


class _GreyImages:
    """A run store whose decoded images are grey."""

    def artifact(self, record, name, scratch):
        path = scratch / f"{record['run_id']}.png"
        Image.fromarray(np.full((32, 32, 3), 128, np.uint8)).save(path)
        return path


def test_the_page_says_what_it_leaves_out_and_where_a_curve_turns_back(tmp_path, browser_page):
    """Built from synthetic runs (no study to run): curves joined along each codec's rate axis,
    a reverse step noted, references of other images left out with a note, the missing LPIPS
    explained, crops captioned with their own bpp and the target."""
    data = StudyData("synthetic", _GreyImages(), _kodak_records(), dataset="kodak")
    data.folder = tmp_path / "study"
    jpeg, webp = tmp_path / "jpeg.json", tmp_path / "webp.json"
    for path, name in ((jpeg, "JPEG"), (webp, "WebP")):
        results = {"bpp": [0.3, 1.0], "psnr-rgb": [24.0, 30.0]}
        path.write_text(json.dumps({"name": name, "description": "", "results": results}))
    references = [reference_argument(f"{jpeg}:kodak"), reference_argument(f"{webp}:kodak@256")]
    curves, notes = reference_curves(references, data.image_set())
    crops = decoded_crops(data, "kodim01", 0.5, size=16)
    out = tmp_path / "page.html"
    shown = ShownCrops(crops, "kodim01", 0.5)
    page_html = render(
        data, references=curves, reference_notes=notes, crops=shown, mlflow_ui="http://x"
    )
    out.write_text(page_html)

    page, errors = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    traces = {t["name"]: t for t in page.evaluate("document.getElementById('rd-plot').data")}
    assert "JPEG (reference)" in traces and not any(name.startswith("WebP") for name in traces)
    assert text(page, "#reference-notes") == (
        "Reference WebP (webp.json) left out: it is the mean over 24 kodak images as 256-px "
        "center crops; this study's curves over 24 kodak images at full size."
    )

    def settings(name: str) -> list[str]:
        return [hover.split("<br>")[1] for hover in traces[name]["text"]]

    # Joined in the order of the setting, not of bpp (NIF) nor of the setting's text (JPEG).
    assert settings("nif · MSE") == ["width 120", "width 0_31", "width 280"]
    assert traces["nif · MSE"]["x"] == pytest.approx([0.35 * 1.125, 0.32 * 1.125, 0.9 * 1.125])
    assert settings("coolchic-v1 · MSE") == ["λ 0.02", "λ 0.004", "λ 0.001"]
    assert settings("jpeg") == ["quality 5", "quality 20", "quality 80"]
    assert text(page, "#rate-notes").endswith(
        "nif · MSE (preset debug): width 120 → 0_31, 0.394 → 0.360 bpp."
    )

    page.select_option("#metric", "lpips")
    assert text(page, "#metric option[value=lpips]") == "LPIPS (lower is better) (no values)"
    assert f"`inr-study rescore {data.folder}` adds it" in text(page, "#metric-note")

    assert text(page, "#crops-note").startswith(
        "kodim01: each curve's run nearest the target, 0.500 bpp"
    )
    captions = page.locator(".crops figcaption").all_text_contents()
    assert "nif · MSE: 0.353 bpp (target 0.500: -29%), PSNR 23.5 dB, MS-SSIM 10.35 dB" in captions

    # A study still growing (NIF on kodim01 alone so far): every dataset curve over kodim01.
    growing = [r for r in _kodak_records() if r["codec"] != "nif" or r["image"] == "kodim01"]
    bare = {"references": [], "reference_notes": []}
    out.write_text(render(StudyData("growing", None, growing), **bare, mlflow_ui=""))
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    traces = {t["name"]: t for t in page.evaluate("document.getElementById('rd-plot').data")}
    assert traces["coolchic-v1 · MSE"]["x"] == pytest.approx([0.2 * 1.01, 0.5 * 1.01, 0.9 * 1.01])
    title = page.evaluate("document.getElementById('rd-plot').layout.title.text")
    assert "mean over kodim01, the one image every curve holds at every rate setting" in title
    assert errors == []


def test_the_pareto_view_of_a_pareto_search(tmp_path, study_env, small_config,
                                                       browser_page):  # fmt: skip
    """A plugin codec searched in pareto mode: its samples and front are drawn."""
    common = {
        "plugins": ["extension"],
        "images": {"dataset": "kodak", "subset": ["kodim23"], "crop": 64},
        "codecs": [{"name": "posterize"}],
        "losses": ["mse_l1"],
    }
    pareto = Study(parse_config(small_config(
        name="pareto", **common, search={"mode": "pareto", "trials": 4, "metric": "psnr"}
    ))).run()  # fmt: skip
    front = json.loads((pareto.folder / "pareto.json").read_text())
    assert front and all(p["task"] == "posterize/mse_l1/pareto" for p in front)
    assert [p["bpp"] for p in front] == sorted(p["bpp"] for p in front)

    out = tmp_path / "pareto.html"
    assert dashboard([str(pareto.folder), "-o", str(out)]) == 0
    page, errors = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    names = page.evaluate("document.getElementById('pareto-plot').data.map(t => t.name)")
    assert names == ["posterize/mse_l1/pareto samples", "posterize/mse_l1/pareto front"]
    assert errors == []


def test_the_alpha_plot_draws_what_the_alpha_tables_decide(tmp_path, browser_page):
    """α at matched rate from the α tables' rule: filled where on target on every image, the
    best starred only under the search's metric, open while some planned α are not in."""
    from study.engine.reports import AlphaRule

    task = "coolchic-v1/lc_ssim/0.5bpp"
    records = []
    for alpha, bpps, psnr in ((0.0, (0.51, 0.49), 30.0), (0.01, (0.50, 0.50), 31.0),
                              (0.1, (0.50, 0.70), 33.0)):  # fmt: skip
        for image, bpp in zip(("kodim01", "kodim07"), bpps, strict=True):
            records.append({
                "run_id": f"{alpha}{image}", "experiment_id": "1", "trial_key": f"{alpha}{image}",
                "codec": "coolchic-v1", "loss": f"lc_ssim({alpha})", "loss_family": "lc_ssim",
                "alpha": alpha, "rate_parameter": "lmbda", "rate": 1e-3, "image": image,
                "seed": 0, "search": task, "bpp": bpp, "psnr": psnr, "ms_ssim_db": 12.0,
            })  # fmt: skip
    grid = {**records[0], "run_id": "g", "trial_key": "g", "search": None}
    data = StudyData("alpha", None, [grid, *records])
    data.alpha_rule = AlphaRule("psnr", 0.05, ["kodim01", "kodim07"], {"lc_ssim": [0, 0.01]})
    out = tmp_path / "alpha.html"
    out.write_text(
        render(data, references=[], reference_notes=[], mlflow_ui="http://127.0.0.1:5000")
    )
    page, errors = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#metric", "psnr")
    traces = page.evaluate(
        "document.getElementById('alpha-plot').data.map(t => [t.name, t.x, t.marker.symbol])"
    )
    # α 0.1 is off target on kodim07 (0.70 bpp): drawn open, and not the best.
    assert traces == [[task, [0, 0.01, 0.1], ["circle", "circle", "circle-open"]],
                      [f"{task}: best α", [0.01], "star"]]  # fmt: skip
    page.select_option("#metric", "ms_ssim_db")
    names = page.evaluate("document.getElementById('alpha-plot').data.map(t => t.name)")
    assert names == [task]  # the star belongs to the metric the α were judged by

    # Planned α 0.3 not fitted yet: the best so far, with an open star.
    data.alpha_rule = data.alpha_rule._replace(grid={"lc_ssim": [0, 0.01, 0.1, 0.3]})
    out.write_text(
        render(data, references=[], reference_notes=[], mlflow_ui="http://127.0.0.1:5000")
    )
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    page.select_option("#metric", "psnr")
    traces = page.evaluate(
        "document.getElementById('alpha-plot').data.map(t => [t.name, t.marker.symbol])"
    )
    assert traces[1] == [f"{task}: best α so far (2 of 4 α on target)", "star-open"]
    assert errors == []

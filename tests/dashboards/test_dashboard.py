"""The dashboard of a real (small) study, opened in headless Chromium."""

import json
import shutil
import threading
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from dashboards.cli import main as dashboard
from dashboards.data import from_study
from dashboards.page import render
from dashboards.serve import make_server
from study.config import parse_config
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


def y_title(page) -> str:
    return page.locator("#rd-plot .ytitle").text_content()


def test_dashboard_of_a_real_study_in_headless_chromium(
    tmp_path, study_env, small_config, browser_page
):
    config = small_config(losses=["mse", "lc_ssim(0.01)"])
    result = Study(parse_config(config)).run()
    out = tmp_path / "dashboard.html"
    argv = [str(result.folder), "-o", str(out)]
    if REFERENCE.exists():
        argv += ["--reference", str(REFERENCE)]
    assert dashboard(argv) == 0
    assert out.stat().st_size < 10 * 2**20

    page, errors = browser_page
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready=true]")
    names = page.evaluate("document.getElementById('rd-plot').data.map(t => t.name)")
    # Named and styled as the static figures are (dashboards/style.py).
    assert {"MSE", "LogCosh + 0.01·(1 − SSIM)", "jpeg", "Pareto front"} <= set(names)
    if REFERENCE.exists():
        assert "JPEG (reference)" in names
    assert page.locator("#bd-rate").count() == 1  # lc_ssim against COOL-CHIC's MSE

    assert y_title(page) == "PSNR (dB)"
    page.select_option("#metric", "lpips")
    assert y_title(page) == "LPIPS (lower is better)"
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
    run = MlflowClient(result.tracking_uri).get_run(run_id)
    assert run.info.experiment_id == experiment
    assert run.data.params["codec"] == "coolchic-v1" and run.data.params["loss"] == "mse"
    assert run.data.params["image"] == "kodim23"

    assert page.locator(".crops img").count() == 1 + 3  # original + v1 mse, v1 lc_ssim, jpeg
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)
    print(f"screenshot: {tmp_path / 'dashboard.png'}")
    assert errors == []

    # The live page (--serve) on the loopback: served, and refreshed from MLflow.
    html = render(
        from_study(result.folder),
        references=[],
        crops=[],
        crops_image=None,
        crops_bpp=None,
        mlflow_ui="http://127.0.0.1:5000",
        live_seconds=3600,
    )
    server = make_server(html, lambda: from_study(result.folder), port=0)
    assert server.server_address[0] == "127.0.0.1"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{server.server_port}/")
        page.wait_for_selector("body[data-ready=true]")
        page.evaluate("refresh()")
        page.wait_for_function("document.getElementById('run-count').textContent === '12'")
    finally:
        server.shutdown()
        server.server_close()
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

"""Dashboard page size and load time for a study of the paper's full size, in headless Chromium.

    python benchmarks/dashboard_load.py

Synthesises the runs of the ICIP 2024 design (COOL-CHIC v1 and v2 at 4 λ, NIF at 4 widths, 5 losses,
24 images = 1,440 runs; plausible log-linear R-D values), 16 decoded crops cut from a Kodak image,
renders the page and opens it from disk in Debian's chromium: "interactive" = navigation start until
the dashboard script has drawn both plots and wired its controls (body[data-ready]). Also times a
metric switch (redraw of the R-D plot).
"""

import math
import random
import shutil
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from dashboards.crops import Crop, ShownCrops
from dashboards.data import StudyData
from dashboards.page import render
from losses import parse_loss_spec
from study.data.datasets import kodak
from study.data.imageio import load_rgb
from study.results.report import bd_rate_rows

LOSSES = ["l1", "mse", "logcosh", "lc_ssim(0.01)", "l1_ssim(0.2)"]
CODECS = {
    "coolchic-v1": ("lmbda", [2e-2, 4e-3, 5e-4, 1e-4]),
    "coolchic-v2": ("lmbda", [2e-2, 4e-3, 5e-4, 1e-4]),
    "nif": ("configuration", ["0_31", "280", "450", "680"]),
}


def synthetic_records(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    records = []
    for codec, (parameter, points) in CODECS.items():
        for loss in LOSSES:
            for rank, point in enumerate(points):
                for image in range(1, 25):
                    bpp = 0.2 * 2**rank * rng.uniform(0.7, 1.4)
                    psnr = 25 + 4 * math.log2(bpp / 0.2) + rng.gauss(0, 0.5)
                    records.append(
                        {
                            "run_id": f"{rng.getrandbits(128):032x}",
                            "experiment_id": "1",
                            "trial_key": f"{rng.getrandbits(64):016x}",
                            "codec": codec,
                            "loss": loss,
                            "loss_family": parse_loss_spec(loss).family,
                            "alpha": 0.01 if loss.startswith("lc") else None,
                            "rate_parameter": parameter,
                            "rate": point,
                            "preset": "paper",
                            "image": f"kodim{image:02d}",
                            "seed": 0,
                            "search": None,
                            "bpp": bpp,
                            "psnr": psnr,
                            "ms_ssim": 1 - 10 ** (-(psnr - 14) / 10),
                            "ms_ssim_db": psnr - 14,
                            "lpips": max(0.02, 0.6 - 0.02 * psnr),
                        }
                    )
    return records


def main() -> None:
    records = synthetic_records()
    # The cache a study reads (INR_STUDY_KODAK_MIRROR copies from a local folder).
    [image] = kodak(only=["kodim23"], progress=False)
    pixels = load_rgb(image.path)
    crops = [Crop(f"crop {i}", pixels[i * 10 : i * 10 + 160, :160], 0.5) for i in range(16)]
    # No MLflow store: the crops are made here, not read from run artifacts.
    data = StudyData("icip24 (synthetic)", None, records, bd_rate_rows(records))
    with tempfile.TemporaryDirectory() as folder:
        page_path = Path(folder) / "dashboard.html"
        start = time.perf_counter()
        page_path.write_text(
            render(
                data,
                references=[],
                crops=ShownCrops(crops, "kodim23", 0.5),
                mlflow_ui="http://127.0.0.1:5000",
            )
        )
        render_s = time.perf_counter() - start
        size_mb = page_path.stat().st_size / 2**20
        chromium = shutil.which("chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
            )
            loads, switches = [], []
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.goto(page_path.as_uri(), wait_until="commit")
                page.wait_for_selector("body[data-ready=true]")
                loads.append(page.evaluate("performance.now()") / 1000)  # since navigation start
                start = time.perf_counter()
                page.select_option("#metric", "lpips")
                page.wait_for_function(
                    "document.querySelector('#rd-plot .ytitle').textContent.startsWith('LPIPS')"
                )
                switches.append(time.perf_counter() - start)
                page.close()
            browser.close()
    print(f"runs: {len(records)}; page: {size_mb:.2f} MiB; rendered in {render_s:.2f} s")
    print(f"time to interactive (3 loads): {', '.join(f'{t:.2f}' for t in loads)} s")
    print(f"metric switch: {', '.join(f'{t:.2f}' for t in switches)} s")


if __name__ == "__main__":
    main()

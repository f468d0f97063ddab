"""Screenshots of a study in MLflow's UI, as the README shows them: the table of fits and one run.

    .venv/bin/python scripts/mlflow_screenshots.py results/demo/demo -o results/screenshots

Serves the study's store on 127.0.0.1 (``inr-study mlflow``), opens the printed URLs in Debian's
chromium and writes ``mlflow-fits.png`` and ``mlflow-run.png``.
"""

import argparse
import shutil
from pathlib import Path

from study.commands.mlflow_ui import served
from study.engine.mlflow_view import FIRST_VIEW, experiment_url, run_url
from study.engine.tracking import study_store
from study.layout import load_study_config

TABLE_SIZE = {"width": 1900, "height": 900}


def close_assistant(page) -> None:
    """MLflow 3.17 opens its assistant panel beside every page; it hides half the table."""
    close = page.locator("button[aria-label='Close']").last
    if close.count():
        close.click()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", type=Path, help="a study folder")
    parser.add_argument("-o", "--out", type=Path, required=True, help="folder for the PNG files")
    parser.add_argument("--port", type=int, default=5077)
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    store = study_store(args.folder, load_study_config(args.folder))
    [fit] = store.client.search_runs(
        [store.experiment_id], "params.`loss` LIKE '%'", max_results=1, order_by=["metrics.bpp"]
    )
    args.out.mkdir(parents=True, exist_ok=True)
    with served(store.tracking_uri, args.port), sync_playwright() as playwright:
        ui = f"http://127.0.0.1:{args.port}"
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport=TABLE_SIZE)
        page.goto(experiment_url(ui, store.experiment_id, FIRST_VIEW))
        page.wait_for_selector("text=matching runs")
        close_assistant(page)
        page.wait_for_timeout(1000)
        page.screenshot(path=args.out / "mlflow-fits.png")
        page.goto(run_url(ui, store.experiment_id, fit.info.run_id))
        page.wait_for_selector("text=Parameters")
        close_assistant(page)
        page.wait_for_timeout(1000)
        page.screenshot(path=args.out / "mlflow-run.png")
        browser.close()
    print(f"wrote {args.out / 'mlflow-fits.png'} and {args.out / 'mlflow-run.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

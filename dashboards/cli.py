"""Interactive Plotly page of a study's runs (one HTML file, plotly.js inlined or shared).

From a study folder or an MLflow experiment: R-D curves and Pareto fronts, the BD-rate table,
α tuning and decoded crops, in one HTML file that works offline; or a live page (--serve).
"""

import argparse
import os
import tempfile
from functools import partial
from pathlib import Path

from dashboards.crops import LiveCrops, bitrate
from dashboards.data import StudyData, from_experiment, from_study
from dashboards.page import render, write_shared_plotly
from dashboards.references import add_reference_option, match_references, read_references
from dashboards.serve import make_server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study dashboard", description=__doc__)
    parser.add_argument("folder", type=Path, nargs="?", help="a study folder (holds study.yaml)")
    parser.add_argument("--experiment", help="an MLflow experiment instead of a study folder")
    parser.add_argument("--mlflow-uri", help="tracking URI (default: the study's own store)")
    parser.add_argument("-o", "--output", type=Path, help="HTML file to write")
    parser.add_argument(
        "--serve", action="store_true", help="serve a live page that refreshes as runs finish"
    )
    parser.add_argument("--host", default="127.0.0.1", help="--serve address (default loopback)")
    parser.add_argument(
        "--port", type=int, default=8050, help="--serve port (default: %(default)s; 0: any free)"
    )
    parser.add_argument(
        "--refresh", type=float, default=10.0, help="--serve: seconds between looks"
    )
    add_reference_option(parser)
    parser.add_argument(
        "--mlflow-ui",
        default="http://127.0.0.1:5000",
        help="MLflow UI address that clicked points link to",
    )
    parser.add_argument(
        "--plotly-dir",
        type=Path,
        help="load plotly.js from DIR/plotly-VERSION.min.js (written there if missing) instead of "
        "inlining it: pages published side by side share one copy (-o only)",
    )
    parser.add_argument("--crops-image", help="image of the decoded-crops panel (default: first)")
    parser.add_argument("--crops-bpp", type=bitrate, help="bitrate of the crops (default: median)")
    parser.add_argument(
        "--crop-size",
        type=int,
        default=160,
        help="side in pixels of the decoded crops' window (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if (args.folder is None) == (args.experiment is None):
        parser.error("give a study folder or --experiment NAME (with --mlflow-uri)")
    if args.experiment is not None and not args.mlflow_uri:
        parser.error("--experiment needs --mlflow-uri")
    if not (args.output or args.serve):
        parser.error("give -o OUT.html, --serve, or both")
    if args.plotly_dir and not args.output:
        parser.error("--plotly-dir needs -o OUT.html")

    def load():
        if args.folder is not None:
            return from_study(args.folder, args.mlflow_uri)
        return from_experiment(args.mlflow_uri, args.experiment)

    read = read_references(args.reference)  # first: a bad file stops it; matched at each look
    data = load()
    # Chosen again at each look of a live page: a growing study's images and runs change.
    crops = LiveCrops(
        args.folder, args.crops_image, args.crops_bpp, args.crop_size, strict=not args.serve
    )

    def look(data: StudyData) -> dict:
        references, notes = match_references(read, data.image_set(), args.unmatched_references)
        return {"references": references, "reference_notes": notes, "crops": crops(data)}

    first = look(data)
    page = partial(
        render,
        data,
        references=first["references"],
        reference_notes=first["reference_notes"],
        crops=first["crops"],
        mlflow_ui=args.mlflow_ui,
    )
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        whole = page(live_seconds=None)
        if args.plotly_dir:
            # By the paths' text, as a browser resolves "../" (not through symbolic links).
            shared = write_shared_plotly(Path(os.path.normpath(args.plotly_dir)))
            page_folder = os.path.abspath(args.output.parent)
            src = Path(os.path.relpath(os.path.abspath(shared), page_folder)).as_posix()
            args.output.write_text(page(live_seconds=None, plotly_src=src), encoding="utf-8")
        else:
            args.output.write_text(whole, encoding="utf-8")
        print(f"dashboard: {args.output.resolve()} ({args.output.stat().st_size / 2**20:.1f} MiB)")
        if args.folder is not None and data.parent_run_id:
            # The page is part of the study's record: keep it with the parent run, whole.
            with tempfile.TemporaryDirectory() as folder:
                kept = args.output
                if args.plotly_dir:  # the page written loads plotly.js from beside it
                    kept = Path(folder) / args.output.name
                    kept.write_text(whole, encoding="utf-8")
                data.store.log_parent_artifacts(data.parent_run_id, [kept], "dashboard")
    if args.serve:
        live_page = page(live_seconds=args.refresh)
        server = make_server(live_page, load, look, args.host, args.port)
        print(f"live dashboard: http://{args.host}:{server.server_port}/ (Ctrl-C stops it)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
    return 0

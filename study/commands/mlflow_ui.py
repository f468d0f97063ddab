"""Browse a study's trials in MLflow's UI: serve its store on 127.0.0.1 and print the tables' URLs.

The printed URLs open the classic view of the experiment with the trials as rows and codec, loss,
rate setting, image, bpp and the headline metrics as columns (``study.engine.mlflow_view``). A
study recorded on a tracking server is not served again: the URLs point at that server.
"""

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager, suppress
from pathlib import Path

STARTUP_SECONDS = 180


def _port_taken(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _wait_until_up(server: subprocess.Popen, ui: str, log: Path) -> None:
    from study.errors import InputError

    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise InputError(
                f"MLflow's UI stopped while starting (exit code {server.returncode}); "
                f"its log: {log}"
            )
        try:
            with urllib.request.urlopen(f"{ui}/health", timeout=2):
                return
        except OSError:
            time.sleep(1)
    raise InputError(
        f"MLflow's UI did not answer at {ui} within {STARTUP_SECONDS} s; its log: {log}"
    )


@contextmanager
def served(tracking_uri: str, port: int):
    """MLflow's UI for a store on 127.0.0.1:``port``, up and answering inside the block."""
    from study.errors import InputError

    if _port_taken(port):
        raise InputError(f"port {port} on 127.0.0.1 is taken; choose another with --port")
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    # The server logs every request; a file keeps them out of the way and at hand.
    log = Path(tempfile.mkstemp(prefix="inr-study-mlflow-", suffix=".log")[1])
    ui = f"http://127.0.0.1:{port}"
    print(f"starting MLflow's UI on {ui} (up to a minute; its log: {log}) ...", flush=True)
    with log.open("w") as log_file:
        server = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(server, ui, log)
        yield server
    finally:
        server.terminate()
        server.wait()


def print_urls(ui: str, experiment_id: str) -> None:
    from study.engine.mlflow_view import VIEWS, experiment_url

    for key, (holds, _) in VIEWS.items():
        print(f"  {holds}: {experiment_url(ui, experiment_id, key)}")
    nested = experiment_url(ui, experiment_id, None)
    print(f"  the experiment as MLflow shows it (trials nested under the study's run): {nested}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="inr-study mlflow", description=__doc__)
    parser.add_argument("folder", type=Path, help="the study folder (holds study.yaml)")
    parser.add_argument("--port", type=int, default=5000, help="port on 127.0.0.1 (default: 5000)")
    parser.add_argument(
        "--no-serve",
        action="store_true",
        help="only print the URLs (an MLflow UI on this store already runs at --port)",
    )
    args = parser.parse_args(argv)

    from study.engine.tracking import study_store
    from study.layout import load_study_config

    store = study_store(args.folder, load_study_config(args.folder))  # writes the tables' tags
    remote = store.tracking_uri.startswith(("http:", "https:"))
    ui = store.tracking_uri.rstrip("/") if remote else f"http://127.0.0.1:{args.port}"
    if remote or args.no_serve:
        print(f"MLflow UI of study folder {args.folder}: {ui}")
        print_urls(ui, store.experiment_id)
        return 0
    with served(store.tracking_uri, args.port) as server:
        print(f"MLflow UI of study folder {args.folder}: {ui} (Ctrl-C stops it)")
        print_urls(ui, store.experiment_id)
        sys.stdout.flush()
        with suppress(KeyboardInterrupt):
            server.wait()
    return 0

"""One driver per study folder, and a local Ray that only its own processes can use."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from study.cli import main
from study.engine.ray_session import ray_session
from study.layout import LOCK_HOLDER_FILE

pytestmark = pytest.mark.slow


def test_a_second_run_on_the_same_folder_is_refused_at_once(
    tmp_path, study_env, small_config, write_config, capsys
):
    # Two fits one after the other: the first run is still busy when the second one is tried.
    busy = {"dataset": "kodak", "subset": ["kodim01"], "crop": 64}
    coolchic = small_config()["codecs"][:1]
    path = write_config(small_config(name="busy", images=busy, codecs=coolchic, max_concurrent=1))
    first = subprocess.Popen(
        [sys.executable, "-m", "study.cli", "run", str(path), "--no-report"],
        env=study_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    holder = tmp_path / "studies" / "busy" / LOCK_HOLDER_FILE
    deadline = time.monotonic() + 60
    while not holder.exists() and time.monotonic() < deadline:
        assert first.poll() is None, first.stderr.read()
        time.sleep(0.2)
    assert json.loads(holder.read_text())["pid"] == first.pid

    start = time.monotonic()
    assert main(["run", str(path), "--no-report"]) == 2
    assert time.monotonic() - start < 10
    error = capsys.readouterr().err
    assert "this study is already running (pid " in error and f"pid {first.pid} on " in error

    assert first.wait(timeout=300) == 0  # the first finishes normally
    assert not holder.exists()


@pytest.fixture
def stale_cluster_pointer():
    """The file Ray leaves to name "the" running cluster, pointing at nothing."""
    pointer = Path("/tmp/ray/ray_current_cluster")
    saved = pointer.read_text() if pointer.exists() else None
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text("127.0.0.1:1")
    yield
    if saved is None:
        pointer.unlink(missing_ok=True)
    else:
        pointer.write_text(saved)


def test_local_ray_refuses_clients_without_this_runs_token(
    tmp_path, monkeypatch, stale_cluster_pointer
):
    # Stale pointers to another cluster must not redirect a local run.
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    import ray

    start = time.monotonic()
    with ray_session(None, tmp_path):
        assert time.monotonic() - start < 60  # started its own Ray, did not wait for 127.0.0.1:1
        assert os.environ["RAY_AUTH_MODE"] == "token"
        gcs = ray.get_runtime_context().gcs_address
        outsider = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_TOKEN"}
        outsider["RAY_AUTH_MODE"] = "token"
        outsider["RAY_AUTH_TOKEN"] = "not-the-token"
        # Refused on every attempt: two attempts instead of Ray's twenty, one second apart.
        outsider["RAY_gcs_server_port_wait_time_s"] = "2"
        code = f"import ray; ray.init(address={gcs!r}); print('connected')"
        result = subprocess.run(
            [sys.executable, "-c", code], env=outsider, capture_output=True, text=True, timeout=180
        )
    assert result.returncode != 0 and "connected" not in result.stdout
    assert "Authentication token is missing or incorrect" in result.stderr

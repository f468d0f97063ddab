"""``ray up`` / ``ray submit`` / ``ray down`` with the local provider against 127.0.0.1.

Needs root (sshd on 127.0.0.1:22) and sshd + rsync, which scripts/install-system-packages.sh
installs (CI runs it as root through ``make test``); elsewhere the test skips, saying why. The ssh
session gets a private HOME from our sshd (SetEnv), so no real shell profile is touched.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from study.engine.local_cluster import stop_processes_using

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to start sshd on 127.0.0.1:22 (CI runs as root)"
    if not (Path(SSHD).exists() and shutil.which("rsync")):
        return "sshd/rsync missing: run scripts/install-system-packages.sh"
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 22)) == 0:
            return "port 22 on 127.0.0.1 is taken by another sshd"
    return None


@dataclass(frozen=True)
class SshHead:
    key: Path  # root's private key for 127.0.0.1
    port: int  # where the head's Ray is to listen


@pytest.fixture
def ssh_head(tmp_path, study_env, ray_folder):
    """An sshd on 127.0.0.1:22 that lets root in with a fresh key into a private HOME."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    key = tmp_path / "id_ed25519"
    host_key = tmp_path / "host_ed25519"
    for path in (key, host_key):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path], check=True)
    home = tmp_path / "home"
    home.mkdir()
    # Ray's ssh commands run `bash --login -i` and source ~/.bashrc: both find this project's
    # venv first on PATH (`ray submit` runs a bare `python`) and the Kodak mirror.
    # `ray stop` there (ray down runs it) stops this test's Ray only, not every Ray process.
    port = _free_port()
    stop = (
        "python -c 'from study.engine.local_cluster import stop_processes_using; "
        f'stop_processes_using("{ray_folder}")\''
    )
    profile = (
        f'export PATH="{Path(sys.executable).parent}:$PATH"\n'
        "export RAY_AUTH_MODE=disabled\n"
        f'export INR_STUDY_KODAK_MIRROR="{study_env["INR_STUDY_KODAK_MIRROR"]}"\n'
        f'export INR_STUDY_CACHE="{study_env["INR_STUDY_CACHE"]}"\n'
        # `--address auto` reads Ray's default folder, not the one this test's head runs in.
        f"export RAY_ADDRESS=127.0.0.1:{port}\n"
        f'ray() {{ if [ "$1" = stop ]; then {stop}; else command ray "$@"; fi; }}\n'
    )
    for name in (".profile", ".bashrc"):
        (home / name).write_text(profile)
    authorized = tmp_path / "authorized_keys"
    authorized.write_text(Path(f"{key}.pub").read_text())
    config = tmp_path / "sshd_config"
    config.write_text(
        "ListenAddress 127.0.0.1\nPort 22\n"
        f"HostKey {host_key}\nPidFile {tmp_path / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {authorized}\nSetEnv HOME={home}\n"
        "PermitRootLogin prohibit-password\nAllowUsers root\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
    daemon = subprocess.Popen([SSHD, "-D", "-f", config, "-E", tmp_path / "sshd.log"])
    try:
        yield SshHead(key, port)
    finally:
        daemon.terminate()
        daemon.wait()


def _ray(*args, env) -> subprocess.CompletedProcess:
    ray = Path(sys.executable).parent / "ray"
    return subprocess.run(
        [ray, *map(str, args)], env=env, capture_output=True, text=True, timeout=180
    )


def test_ray_up_submit_down_runs_a_study_on_the_local_provider(
    tmp_path, ray_folder, ssh_head, study_env
):
    cluster = yaml.safe_load((ROOT / "study/cluster/local.yaml").read_text())
    cluster["cluster_name"] = name = f"inr-study-test-{os.getpid()}"
    # The "remote" head is this machine: its `ray stop` (before `ray start`, and in `ray down`)
    # must stop this test's Ray only (see ssh_head's profile).
    cluster["head_start_ray_commands"] = [
        command.replace("--port=6379", f"--port={ssh_head.port}") + f" --temp-dir={ray_folder}"
        for command in cluster["head_start_ray_commands"]
        if " ray stop" not in command
    ]
    cluster["auth"]["ssh_private_key"] = str(ssh_head.key)
    cluster["auth"]["ssh_user"] = "root"
    cluster_yaml = tmp_path / "cluster.yaml"
    cluster_yaml.write_text(yaml.safe_dump(cluster))

    shared = tmp_path / "shared"  # the cluster's "shared storage": one machine here
    shared.mkdir()
    study_config = shared / "tiny.yaml"
    study_config.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "storage": str(shared / "studies"),
                "images": {"dataset": "kodak", "subset": ["kodim01"], "crop": 64},
                "codecs": [{"name": "jpeg", "qualities": [30, 70]}],
                "optional_metrics": False,
            }
        )
    )
    env = {**study_env, "RAY_AUTH_MODE": "disabled"}
    up = _ray("up", "-y", "--no-config-cache", cluster_yaml, env=env)
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        submit = _ray(
            "submit",
            "--no-config-cache",
            cluster_yaml,
            ROOT / "study/cluster/submit_study.py",
            "--",
            "run",
            study_config,
            env=env,
        )
        assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
        assert "finished: 2, failed: 0" in submit.stdout
    finally:
        down = _ray("down", "-y", cluster_yaml, env=env)
        for leftover in Path("/tmp/ray").glob(f"cluster-{name}.*"):  # the launcher's state
            leftover.unlink()
    assert down.returncode == 0, down.stderr[-2000:]
    client = MlflowClient(f"sqlite:///{shared / 'studies/tiny/mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED'")
    assert len([r for r in runs if r.data.tags.get("inr_study.kind") == "trial"]) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def ray_folder():
    """Ray's folder for this test's nodes, stopped by it afterwards: ``ray stop`` would stop every
    Ray process on the machine, a study a researcher is running included. Short: Ray puts its
    sockets there."""
    folder = tempfile.mkdtemp(prefix="inr-test-ray-")
    yield folder
    stop_processes_using(folder)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def token_env(study_env, monkeypatch):
    """Token authentication for a cluster of this test; the driver in this process uses it too."""
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    for name, value in token.items():
        monkeypatch.setenv(name, value)
    return {**study_env, **token}


def test_trials_on_a_second_node_reach_the_recorder_on_the_head(
    tmp_path, ray_folder, token_env, small_config, write_config
):
    port = _free_port()
    node = ["--node-ip-address=127.0.0.1", f"--temp-dir={ray_folder}"]
    head = _ray("start", "--head", f"--port={port}", "--num-cpus=1", *node,
                "--include-dashboard=false", env=token_env)  # fmt: skip
    assert head.returncode == 0, head.stderr[-2000:]
    second = _ray("start", f"--address=127.0.0.1:{port}", "--num-cpus=2", *node,
                  '--resources={"second_node": 2}', env=token_env)  # fmt: skip
    assert second.returncode == 0, second.stderr[-2000:]

    config = small_config(
        name="two-nodes",
        images={"dataset": "kodak", "subset": ["kodim01"], "crop": 64},
        resources={"cpus": 1, "custom": {"second_node": 1}},
    )
    from study.cli import main

    assert main(["run", str(write_config(config)), "--address", f"127.0.0.1:{port}"]) == 0

    import ray

    ray.init(address=f"127.0.0.1:{port}")
    try:
        [second_node] = [n["NodeID"] for n in ray.nodes() if "second_node" in n["Resources"]]
    finally:
        ray.shutdown()
    folder = tmp_path / "studies" / "two-nodes"
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("two-nodes")
    runs = client.search_runs([experiment.experiment_id], "tags.`inr_study.kind` = 'trial'")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["ray_node"] for r in runs} == {second_node}
    for run in runs:  # the files crossed to the recorder's node
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert artifacts == {"bitstream.bin", "decoded.png", "trial.json"}


def test_ray_job_submit_keeps_the_study_where_asked_with_the_code_version(
    tmp_path, ray_folder, token_env
):
    # Ports of its own: another Ray on the machine (a study, a parallel test) may hold the defaults,
    # and a job agent that cannot listen leaves `ray job submit` with "no available agent".
    port, dashboard, agent = _free_port(), _free_port(), _free_port()
    head = _ray(
        "start",
        "--head",
        f"--port={port}",
        "--num-cpus=2",
        "--node-ip-address=127.0.0.1",
        f"--temp-dir={ray_folder}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--dashboard-agent-listen-port={agent}",
        env=token_env,
    )
    assert head.returncode == 0, head.stderr[-2000:]
    config = tmp_path / "tiny.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "tiny",
                "images": {"dataset": "kodak", "subset": ["kodim01"], "crop": 64},
                "codecs": [{"name": "jpeg", "qualities": [30, 70]}],
                "optional_metrics": False,
            }
        )
    )
    storage = tmp_path / "durable"
    commit = "0123456789abcdef0123456789abcdef01234567"
    runtime_env = {"env_vars": {"INR_STUDY_GIT_COMMIT": commit, "INR_STUDY_STORAGE": str(storage)}}
    for _ in range(12):  # the head's job agent may still be starting on a busy machine
        submit = _ray(
            "job", "submit", f"--address=http://127.0.0.1:{dashboard}", f"--working-dir={ROOT}",
            f"--runtime-env-json={json.dumps(runtime_env)}", "--",
            sys.executable,
            "study/cluster/submit_study.py", "run", config,
            env=token_env,
        )  # fmt: skip
        if "No available agent to submit job" not in submit.stderr + submit.stdout:
            break
        time.sleep(5)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    folder = storage / "tiny"
    assert f"study folder: {folder}" in submit.stdout
    client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("tiny")
    runs = client.search_runs([experiment.experiment_id])
    assert {r.data.tags["mlflow.source.git.commit"] for r in runs} == {commit}
    trials = [r for r in runs if r.data.tags.get("inr_study.kind") == "trial"]
    assert len(trials) == 2 and {r.info.status for r in trials} == {"FINISHED"}


def test_stopping_a_ray_folder_stops_what_its_processes_started_and_nothing_else(tmp_path):
    """Ray's agents rename themselves (``ray::DashboardAgent``) and so no longer name the folder:
    left running, they keep their ports and the next Ray on the machine has no job agent."""
    folder = str(tmp_path / "ray-folder")
    starts_a_child = (
        "import subprocess, sys, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", starts_a_child, folder])
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not _children(parent.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        [child] = _children(parent.pid)
        assert stop_processes_using(folder) == 2
        parent.wait(timeout=10)
        assert not Path(f"/proc/{child}").exists() or "Z" in _state(child)  # gone or a zombie
        assert bystander.poll() is None
    finally:
        bystander.kill()
        parent.kill()


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]

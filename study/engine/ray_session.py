"""The Ray a study runs on: a local instance of its own (token-authenticated) or a running
cluster, with Tune's own terminal output quieted (the study's progress bar replaces it)."""

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray

from study.engine import local_cluster
from study.errors import InputError

log = logging.getLogger(__name__)

# Tune's legacy output engine honours verbose=0; the new one still prints tables. Our progress bar
# replaces both.
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
# Each failure is reported in one line by StudyProgress, with its full traceback in the trial's
# MLflow run; Tune would print every traceback to the terminal as well.
QUIETED_LOGGERS = ("ray.tune.execution.tune_controller", "ray.tune.tune")


@contextmanager
def ray_session(
    address: str | None,
    folder: Path,
    local_cpus: int | None = None,
    local_gpus: int | None = None,
) -> Iterator[None]:
    """A local Ray instance of this study's own (token-authenticated, see
    ``study.engine.local_cluster``) or a running cluster (token authentication unless the user set
    ``RAY_AUTH_MODE`` otherwise)."""
    session = None
    if address is None:
        session = local_cluster.prepare(folder)
        _reload_ray_auth_settings()
        try:
            ray.init(
                address="local",
                num_cpus=local_cpus,
                num_gpus=local_gpus,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                _temp_dir=str(session.temp_dir),
                log_to_driver=False,
                configure_logging=False,
            )
        except Exception as error:
            raise RayStartError(f"local Ray did not start: {error}") from error
    else:
        if local_cluster.AUTH_MODE_ENV not in os.environ:
            log.info("RAY_AUTH_MODE is not set: using 'token', Ray's cluster default")
            os.environ[local_cluster.AUTH_MODE_ENV] = "token"
        _reload_ray_auth_settings()
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    levels = {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}
    for name in QUIETED_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        ray.shutdown()
        if session is not None:
            local_cluster.finish(session)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


def _reload_ray_auth_settings() -> None:
    """Make this process see the authentication settings just put in its environment: Ray reads
    them once, when it is imported (the pinned Ray's own way to refresh them)."""
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


class RayStartError(InputError):
    """Ray could not be started on this machine; the message says why."""

"""A search's image jobs hold their CPUs while they wait on Ray, so no more fits run than CPUs."""

import itertools
import time

import pytest

from study.engine.ray_session import ray_session
from study.engine.ray_trials import run_in_actors

pytestmark = pytest.mark.slow


def test_jobs_blocked_in_ray_get_keep_their_cpu(tmp_path, study_env):
    import ray

    def pause(seconds):
        time.sleep(seconds)

    class Job:
        def run(self, index, seconds):
            start = time.monotonic()
            # A job asks the recorder (an actor) between fits; a Ray task waiting so would lend
            # its CPU to the next job, and two fits would share one core.
            ray.get(ray.remote(num_cpus=0)(pause).remote(seconds))
            return index, start, time.monotonic()

    with ray_session(None, tmp_path, local_cpus=1):
        job = ray.remote(Job).options(num_cpus=1)
        spans = run_in_actors(job, [(index,) for index in range(3)], {"seconds": 1.0})
    assert [index for index, _, _ in spans] == [0, 1, 2]  # in the calls' order
    ordered = sorted(spans, key=lambda span: span[1])
    for (_, _, end), (_, start, _) in itertools.pairwise(ordered):
        assert start >= end  # one after another on the one CPU

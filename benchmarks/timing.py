"""Timing helpers shared by the benchmark scripts."""

import statistics
import time


def median_seconds(work, repeats: int = 3, warm: bool = False) -> float:
    """Median wall time of ``work()`` over ``repeats`` calls, after one untimed call if ``warm``."""
    if warm:
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_decode_seconds(codec_name: str, data: bytes, repeats: int = 3) -> float:
    """Median wall time of decoding ``data`` with a freshly created codec."""
    from inr_models import create_codec  # lazily: scripts that run the paper's code import this

    return median_seconds(lambda: create_codec(codec_name).decode(data), repeats)

"""Timing helpers shared by the benchmark scripts."""

import statistics
import time

from inr_models import create_codec


def median_decode_seconds(codec_name: str, data: bytes, repeats: int = 3) -> float:
    """Median wall time of decoding ``data`` with a freshly created codec."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        create_codec(codec_name).decode(data)
        times.append(time.perf_counter() - start)
    return statistics.median(times)

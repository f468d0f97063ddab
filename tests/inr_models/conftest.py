import subprocess
import sys

import numpy as np
import pytest

DECODE_SCRIPT = """
import sys, numpy as np, torch
from inr_models.container import codec_of
from inr_models import create_codec
torch.set_num_threads(int(sys.argv[1]))
for path in sys.argv[2:]:
    data = open(path, "rb").read()
    np.save(path + f".t{sys.argv[1]}.npy", create_codec(codec_of(data)).decode(data))
"""


@pytest.fixture(scope="session")
def decode_in_fresh_process():
    """Decode files in a new Python process with a given torch thread count."""

    def decode(paths, threads: int) -> list[np.ndarray]:
        command = [sys.executable, "-c", DECODE_SCRIPT, str(threads), *map(str, paths)]
        subprocess.run(command, check=True)
        return [np.load(f"{path}.t{threads}.npy") for path in paths]

    return decode


@pytest.fixture
def check_fresh_decodes(tmp_path, decode_in_fresh_process):
    """Writes each encoding to a file and decodes it in new processes with 1 and 2 threads;
    asserts both give the encoder's reconstruction, and returns the decoded images."""

    def check(results) -> list[np.ndarray]:
        paths = []
        for index, result in enumerate(results):
            paths.append(tmp_path / f"file{index}.inr")
            paths[-1].write_bytes(result.data)
        one_thread = decode_in_fresh_process(paths, threads=1)
        two_threads = decode_in_fresh_process(paths, threads=2)
        for result, decoded_1, decoded_2 in zip(results, one_thread, two_threads, strict=True):
            assert decoded_1.dtype == np.uint8
            np.testing.assert_array_equal(decoded_1, result.reconstruction)
            np.testing.assert_array_equal(decoded_2, decoded_1)
        return one_thread

    return check

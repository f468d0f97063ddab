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

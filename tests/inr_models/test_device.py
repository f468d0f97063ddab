"""Files made on another device decode bit-identically on the CPU (COOL-CHIC: exact arithmetic)."""

import numpy as np
import pytest
import torch

from inr_models import create_codec


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("name", ["coolchic-v1", "coolchic-v2"])
def test_a_cuda_encode_decodes_identically_on_the_cpu(name, crop64):
    encoded = create_codec(name, preset="debug", lmbda=4e-3, device="cuda").encode(crop64)
    decoded = create_codec(name).decode(encoded.data)
    np.testing.assert_array_equal(decoded, encoded.reconstruction)

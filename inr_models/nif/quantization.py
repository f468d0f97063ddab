"""NIF's 8-bit per-tensor symmetric quantisation, computed in float16 with truncation, as run.

q = int8(trunc(fp16(clamp(w, ±b) / b) · 127)),  ŵ = fp16(fp16(q) / 127) · fp16(b),  b = max|w|.
"""

import torch
from torch import Tensor

LEVELS = 127  # 2^(8-1) - 1


def tensor_bound(tensor: Tensor) -> Tensor:
    """The per-tensor bound max|w|, as the float16 value the codec stores."""
    return tensor.detach().abs().max().to(torch.float16)


def quantize(tensor: Tensor, bound: Tensor) -> Tensor:
    bound32 = bound.float()
    normalized = tensor.detach().float().clamp(-bound32, bound32) / bound32
    return (normalized.half() * torch.tensor(LEVELS, dtype=torch.float16)).to(torch.int8)


def dequantize(integers: Tensor, bound: Tensor) -> Tensor:
    levels = torch.tensor(LEVELS, dtype=torch.float16)
    return (integers.half() / levels * bound.half()).float()


def fake_quantize(tensor: Tensor) -> Tensor:
    return dequantize(quantize(tensor, tensor_bound(tensor)), tensor_bound(tensor))

"""GELU for the exact decoder: the same bits on every machine.

GELU(x) = x·Φ(x) = relu(x) − h(|x|), with h(a) = a·Φ(−a). ``h`` is tabulated on multiples of
2^-8 over [0, 8] (beyond 8 it is below 2^-47) and interpolated linearly: the table comes from
integer arithmetic (series of Φ and of exp in 128-bit fixed point), rounded to 2^-32, so no libm
function is involved; for inputs on the synthesis' 2^-16 grid every interpolation step is an
exact float64 operation. The interpolation error is below 2e-6, about an eighth of that grid's step.
"""

from functools import cache
from math import isqrt

import torch
from torch import Tensor

TABLE_BITS = 8  # table spacing 2^-8
TABLE_LIMIT = 8  # h(a) = 0 from here on
VALUE_BITS = 32  # table entries are multiples of 2^-32
_FIXED_BITS = 128
# π to 59 decimals, for √(2π) in fixed point.
_PI_DIGITS = "314159265358979323846264338327950288419716939937510582097494"


def _tail_fixed(k: int) -> int:
    """h(k·2^-8) in units of 2^-128, by integer series: S(a) = Σ a^(2n+1)/(2n+1)!! and
    Φ(−a) = ½ − φ(a)·S(a), φ(a) = 1 / (√(2π)·exp(a²/2))."""
    one = 1 << _FIXED_BITS
    x = (k << _FIXED_BITS) >> TABLE_BITS
    x2 = (x * x) >> _FIXED_BITS
    term, series, n = x, x, 0
    while term:
        n += 1
        term = ((term * x2) >> _FIXED_BITS) // (2 * n + 1)
        series += term
    half_square = x2 >> 1
    term, exp_half_square, n = one, one, 0
    while term:
        n += 1
        term = ((term * half_square) >> _FIXED_BITS) // n
        exp_half_square += term
    pi = int(_PI_DIGITS) * one // 10 ** (len(_PI_DIGITS) - 1)
    sqrt_two_pi = isqrt(2 * pi * one)
    density = (one << _FIXED_BITS) // exp_half_square * one // sqrt_two_pi
    return (x * ((one >> 1) - ((density * series) >> _FIXED_BITS))) >> _FIXED_BITS


@cache
def tail_table() -> Tensor:
    """h on k·2^-8, k = 0..2048, in float64 multiples of 2^-32, and a closing 0."""
    shift = _FIXED_BITS - VALUE_BITS
    entries = [
        ((_tail_fixed(k) >> (shift - 1)) + 1) >> 1 for k in range(TABLE_LIMIT << TABLE_BITS | 1)
    ]
    return torch.tensor([*entries, 0], dtype=torch.float64) / 2.0**VALUE_BITS


def gelu_exact(t: Tensor) -> Tensor:
    """GELU of float64 ``t`` whose values are multiples of 2^-16 below 2^12 in magnitude, every
    operation exact; round the result to the caller's grid."""
    table = tail_table().to(t.device)
    scaled = t.abs() * 2.0**TABLE_BITS
    index = scaled.floor().clamp_max(TABLE_LIMIT << TABLE_BITS)
    fraction = (scaled - index).clamp_max(1.0)
    index = index.long()
    low = table[index]
    tail = low + fraction * (table[index + 1] - low)
    return t.clamp_min(0.0) - tail

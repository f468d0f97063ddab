"""Entropy-coding helpers on top of constriction's range coder, identical on every machine.

Encoder and decoder must build bit-identical probability tables. Library ``exp`` functions
(libm, numpy's SIMD kernels) may differ in the last bit between machines, so the Laplace
probabilities here use ``deterministic_exp``: range reduction and a fixed polynomial evaluated
with IEEE-754 basic operations only, which every conforming machine rounds the same way.
"""

import math

import constriction
import numpy as np

from inr_models.base import CodecError

_LN2_HI = 6.93147180369123816490e-01  # ln 2 split so k·LN2_HI is exact for |k| < 2^20
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.0 / math.log(2)
# Taylor coefficients 1/n!, n = 8..0, for |r| <= ln2/2: relative error < 3e-10, far below the
# 2^-24 resolution at which the range coder quantises probabilities. Fixed float64 constants:
# the polynomial rounds the same everywhere.
_EXP_COEFFICIENTS = tuple(1.0 / math.factorial(n) for n in range(8, -1, -1))
# Smallest probability the range coder must still be able to code for in-range symbols.
_PMF_FLOOR = 2.0**-20
# Probabilities per table built at once (rows × alphabet): about 8 MB per float64 array, whatever
# the bounds, so a wide alphabet costs time, never memory.
_TABLE_ENTRIES = 1 << 20


def deterministic_exp(x: np.ndarray) -> np.ndarray:
    """exp(x) for float64 x in about [-700, 700], bit-identical on any IEEE-754 machine."""
    x = np.asarray(x, dtype=np.float64)
    k = x * _INV_LN2
    k += 0.5
    np.floor(k, out=k)
    r = x - k * _LN2_HI
    r -= k * _LN2_LO
    result = r * _EXP_COEFFICIENTS[0]
    result += _EXP_COEFFICIENTS[1]
    for coefficient in _EXP_COEFFICIENTS[2:]:  # Horner, highest power first
        result *= r
        result += coefficient
    return np.ldexp(result, k.astype(np.int64), out=result)


def laplace_pmf(mu: np.ndarray, scale: np.ndarray, low: int, high: int) -> np.ndarray:
    """P(symbol = v) for v in [low, high] under Laplace(mu, scale) discretised on integers.

    The tails below ``low`` and above ``high`` are folded into the end symbols. Returns an
    (n, high - low + 1) float64 array; rows need not sum exactly to 1 (the coder normalises).
    """
    mu = np.asarray(mu, dtype=np.float64)[:, None]
    scale = np.asarray(scale, dtype=np.float64)[:, None]
    edges = np.arange(low - 0.5, high + 1.0)  # bin boundaries
    # Laplace CDF: ½·e^(d/b) below the mean, 1 − ½·e^(−d/b) from it up (d = edge − μ).
    below = edges < mu
    exponent = np.abs(edges - mu)
    exponent /= -scale
    half_tail = deterministic_exp(exponent)
    half_tail *= 0.5
    cdf = np.where(below, half_tail, 1.0 - half_tail)
    cdf[:, 0], cdf[:, -1] = 0.0, 1.0
    pmf = cdf[:, 1:] - cdf[:, :-1]
    return np.maximum(pmf, _PMF_FLOOR, out=pmf)


_CATEGORICAL = constriction.stream.model.Categorical(perfect=False)


def _table_chunks(count: int, low: int, high: int):
    rows = max(1, _TABLE_ENTRIES // (high - low + 1))
    return (slice(start, start + rows) for start in range(0, count, rows))


def encode_laplace(
    encoder, symbols: np.ndarray, mu: np.ndarray, scale: np.ndarray, low: int, high: int
) -> None:
    """Append ``symbols`` (integers in [low, high]) to a RangeEncoder, in order."""
    for part in _table_chunks(len(symbols), low, high):
        pmf = laplace_pmf(mu[part], scale[part], low, high)
        encoder.encode((symbols[part] - low).astype(np.int32), _CATEGORICAL, pmf)


class LaplaceDecoder:
    """Decodes what ``encode_laplace`` wrote into one payload, and checks that the payload holds
    exactly that: no byte missing, changed or left over.

    constriction's decoder cannot tell how much of its input it has read: it reads zeros past the
    end, so an emptied payload decodes without error and reports itself exhausted, and one
    appended zero word decodes the same. The range coder is deterministic, though, so the decoder
    re-encodes each symbol with the table it decoded it with: the payload is exact if and only if
    that re-encoding equals it. Re-encoding only ever grows, so a payload too short for what has
    been decoded so far is refused at once, not after decoding the rest.
    """

    def __init__(self, payload: bytes):
        if len(payload) % 4:
            raise CodecError(f"payload: {len(payload)} bytes, not whole 32-bit words")
        self._words = np.frombuffer(payload, dtype=np.uint32).copy()
        self._decoder = constriction.stream.queue.RangeDecoder(self._words)
        self._encoder = new_encoder()

    def decode(self, mu: np.ndarray, scale: np.ndarray, low: int, high: int) -> np.ndarray:
        values = np.concatenate(
            [self._decode_table(mu[part], scale[part], low, high) for part in
             _table_chunks(len(mu), low, high)]
        )  # fmt: skip
        if self._encoder.num_words() > len(self._words):
            raise CodecError(
                f"payload: ends early (its {4 * len(self._words)} bytes are too few for the "
                "values decoded so far)"
            )
        return values

    def bits_read(self) -> int:
        """Bits of the payload that what has been decoded so far takes, to the coder's 32-bit
        word (the coder's state included): a part of a file, measured."""
        return self._encoder.num_bits()

    def _decode_table(self, mu: np.ndarray, scale: np.ndarray, low: int, high: int) -> np.ndarray:
        pmf = laplace_pmf(mu, scale, low, high)
        try:
            symbols = self._decoder.decode(_CATEGORICAL, pmf)
        except (AssertionError, ValueError) as error:  # constriction's for invalid data
            raise CodecError(f"payload: corrupted entropy-coded data ({error})") from None
        self._encoder.encode(symbols, _CATEGORICAL, pmf)
        return symbols.astype(np.int64) + low

    def finish(self, last: str) -> None:
        """CodecError unless the payload is exactly the encoding of everything decoded;
        ``last`` names what was decoded last, for the message."""
        expected = self._encoder.get_compressed()
        found, length = self._words, min(len(self._words), len(expected))
        if np.array_equal(found[:length], expected[:length]):
            if len(found) > length:
                raise CodecError(f"payload: {4 * (len(found) - length)} bytes left after {last}")
            if len(expected) > length:
                raise CodecError(f"payload: ends {4 * (len(expected) - length)} bytes early")
            return
        raise CodecError(
            "payload: corrupted entropy-coded data (not what the encoder writes for the values "
            "it decodes to)"
        )


def laplace_scale_of(values: np.ndarray, minimum: float = 1.0 / 1024.0) -> np.float32:
    """Scale of a zero-mean Laplace fitted to integer ``values`` (std / √2), as float32.

    float32 so that the value written in the header is exactly the one the encoder used.
    """
    std = float(np.std(values)) if values.size > 1 else 0.0
    return np.float32(max(std / math.sqrt(2.0), minimum))


def laplace_bits(values: np.ndarray, scale: float) -> float:
    """Estimated bits of integer ``values`` under a zero-mean Laplace (2^-32 probability floor)."""
    values = np.asarray(values, dtype=np.float64)
    upper = _laplace_cdf(values + 0.5, scale)
    lower = _laplace_cdf(values - 0.5, scale)
    return float(-np.log2(np.maximum(upper - lower, 2.0**-32)).sum())


def _laplace_cdf(x: np.ndarray, scale: float) -> np.ndarray:
    return 0.5 - 0.5 * np.sign(x) * np.expm1(-np.abs(x) / scale)


def new_encoder():
    return constriction.stream.queue.RangeEncoder()


def finish(encoder) -> bytes:
    return encoder.get_compressed().tobytes()

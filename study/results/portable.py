"""Base-10 logarithms and powers that give the same bits on every machine, for the reports.

A published study's reports must come out byte for byte the same wherever it is rebuilt, and
neither numpy nor the C library promises that of a logarithm: numpy runs its own SIMD log10 on
CPUs with AVX-512, and glibc picks other code for log10 and pow on x86-64 CPUs with FMA than
without (each differs from the others in the last bit of some results). ``decimal`` computes in
software alone, so its result, rounded once to a float, is the same everywhere. It is slow (tens
of microseconds), so results are kept: a report takes the logarithm of the same few hundred rates
again and again.
"""

import decimal
import functools

# Digits carried before the one rounding to a float (which holds 17): the result is then the
# float nearest the true value in all but vanishingly rare cases, and the same bits everywhere.
# Overflow and underflow are not trapped: they give infinity and zero, as a float would.
_CONTEXT = decimal.Context(prec=34, traps=[decimal.InvalidOperation, decimal.DivisionByZero])


@functools.lru_cache(maxsize=1 << 16)
def log10(x: float) -> float:
    """log10(x) for a finite x > 0."""
    return float(_CONTEXT.log10(decimal.Decimal(x)))


@functools.lru_cache(maxsize=1 << 16)
def pow10(y: float) -> float:
    """10 ** y for a finite y; +inf past the float range, 0.0 below it."""
    return float(_CONTEXT.power(decimal.Decimal(10), decimal.Decimal(y)))

"""Read a pickle that may hold only NumPy float32 arrays in nested dicts: nothing else is built.

The pretrained backbones travel as Flax checkpoints, which are plain pickles. ``pickle.load`` on
them would run whatever callables the file names. This reader resolves exactly three globals —
NumPy's array reconstruction, the array class and the dtype constructor — to stand-ins of its own:
the dtype is always the built-in float32 (whose state a file cannot change), an array is built
empty and takes its data only after its state is checked (version, shape, dtype, C order, a bytes
buffer of exactly the right length, and no more array bytes in all than the file holds), and a file
cannot change the stand-ins themselves. Every other global, persistent reference or malformed
state is refused with one ``UnsafePickle`` before any of it runs or is allocated.
"""

import io
import math
import pickle
from contextvars import ContextVar

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct


class UnsafePickle(ValueError):
    """The file names something other than NumPy float32 arrays in nested dicts."""


FLOAT32 = np.dtype(np.float32)  # the built-in instance: BUILD leaves it as it is
_MAX_DIMENSIONS = 8
# Array bytes this load may still take: shared buffers must not multiply what the file holds.
_bytes_left: ContextVar[list[int]] = ContextVar("bytes_left")


class _Provided:
    """What a global resolves to: callable, and closed to a file's BUILD opcode."""

    __slots__ = ()

    def __setstate__(self, state):
        raise UnsafePickle("refuses to change what the reader provides")


class _ArrayClass(_Provided):
    """Stands in for ``numpy.ndarray``: called directly it would allocate any shape."""

    __slots__ = ()

    def __call__(self, *args, **kwargs):
        raise UnsafePickle("refuses to call the array class directly")


class _Reconstruct(_Provided):
    __slots__ = ()

    def __call__(self, cls, shape, typecode):
        if cls is not _ARRAY_CLASS or shape != (0,) or typecode != b"b":
            raise UnsafePickle("only plain NumPy arrays are allowed")
        return _reconstruct(_CheckedArray, (0,), b"b")


class _Dtype(_Provided):
    __slots__ = ()

    def __call__(self, spec, align=False, copy=False):
        if spec != "f4":
            raise UnsafePickle(f"array dtype {spec!r} is not allowed (float32 only)")
        return FLOAT32


class _CheckedArray(np.ndarray):
    """An array that takes its state only after checking it."""

    def __setstate__(self, state):
        _check_array_state(state)
        super().__setstate__(state)


def _check_array_state(state) -> None:
    if not (isinstance(state, tuple) and len(state) == 5):
        raise UnsafePickle("malformed array state")
    version, shape, dtype, fortran_order, raw = state
    if version != 1 or dtype is not FLOAT32 or fortran_order is not False:
        raise UnsafePickle("only C-ordered float32 arrays are allowed")
    shape_ok = isinstance(shape, tuple) and len(shape) <= _MAX_DIMENSIONS
    if not (shape_ok and all(type(n) is int and n >= 0 for n in shape)):
        raise UnsafePickle(f"malformed array shape {shape!r}")
    if type(raw) is not bytes or len(raw) != FLOAT32.itemsize * math.prod(shape):
        raise UnsafePickle(f"array data does not fill shape {shape}")
    left = _bytes_left.get()
    left[0] -= len(raw)
    if left[0] < 0:
        raise UnsafePickle("the arrays claim more data than the file holds")


_ARRAY_CLASS = _ArrayClass()
# (module, name) -> what it resolves to; both spellings of NumPy's core module (1.x wrote
# numpy.core, 2.x writes numpy._core).
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy._core.multiarray", "_reconstruct"): _Reconstruct(),
    ("numpy", "ndarray"): _ARRAY_CLASS,
    ("numpy", "dtype"): _Dtype(),
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return _GLOBALS[module, name]
        except KeyError:
            raise UnsafePickle(f"refuses {module}.{name}: only NumPy arrays may be read") from None

    def persistent_load(self, pid):
        raise UnsafePickle("refuses persistent references")


def load_arrays(data: bytes) -> dict:
    """The nested dicts of float32 arrays that ``data`` pickles; UnsafePickle for anything else."""
    token = _bytes_left.set([len(data)])
    try:
        found = _Unpickler(io.BytesIO(data)).load()
    except UnsafePickle:
        raise
    except Exception as error:  # truncated or malformed: one error, not a traceback
        raise UnsafePickle(
            f"not a readable pickle of arrays ({type(error).__name__}: {error})"
        ) from None
    finally:
        _bytes_left.reset(token)
    return _plain_tree(found, "")


def _plain_tree(node, path: str):
    """The tree with every array checked and as a plain ``numpy.ndarray``."""
    if type(node) is dict:
        for key in node:
            if type(key) is not str:
                raise UnsafePickle(f"{path or '/'}: keys must be strings, got {type(key).__name__}")
        return {key: _plain_tree(child, f"{path}/{key}") for key, child in node.items()}
    if type(node) is _CheckedArray and node.dtype is FLOAT32 and node.flags.c_contiguous:
        return node.view(np.ndarray)
    raise UnsafePickle(f"{path}: expected a float32 array, got {type(node).__name__}")

"""Read a pickle that may hold only NumPy float32 arrays in nested dicts: nothing else is built.

The pretrained backbones travel as Flax checkpoints, which are plain pickles. ``pickle.load`` on
them would run whatever callables the file names; this reader resolves exactly NumPy's array
reconstruction and refuses every other global, so a hostile file fails before any of its code runs.
"""

import io
import pickle

import numpy as np

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # NumPy 1.x
    from numpy.core.multiarray import _reconstruct


class UnsafePickle(ValueError):
    """The file names something other than a NumPy float32 array."""


# Only float32: an object dtype would let a file build arbitrary objects through array state.
_ALLOWED_DTYPES = frozenset({"f4"})


def _dtype(spec, align=False, copy=False):
    if spec not in _ALLOWED_DTYPES:
        raise UnsafePickle(f"array dtype {spec!r} is not allowed (float32 only)")
    return np.dtype(spec, align, copy)


# The array class resolves to a marker, not to np.ndarray itself: called directly, the class would
# allocate any shape the file asks for. Reconstruction starts empty; its state then brings the data,
# whose length NumPy checks against the shape.
_NDARRAY = object()


def _array(cls, shape, typecode):
    if cls is not _NDARRAY or shape != (0,):
        raise UnsafePickle("only plain NumPy arrays are allowed")
    return _reconstruct(np.ndarray, shape, typecode)


# (module, name) -> what it resolves to; both spellings of NumPy's core module (1.x wrote
# numpy.core, 2.x writes numpy._core).
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _array,
    ("numpy._core.multiarray", "_reconstruct"): _array,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _dtype,
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
    try:
        found = _Unpickler(io.BytesIO(data)).load()
    except UnsafePickle:
        raise
    except Exception as error:  # truncated or malformed: one error, not a traceback
        raise UnsafePickle(
            f"not a readable pickle of arrays ({type(error).__name__}: {error})"
        ) from None
    _check_tree(found, "")
    return found


def _check_tree(node, path: str) -> None:
    if isinstance(node, dict):
        for key, child in node.items():
            if not isinstance(key, str):
                raise UnsafePickle(f"{path or '/'}: keys must be strings, got {type(key).__name__}")
            _check_tree(child, f"{path}/{key}")
    elif not (isinstance(node, np.ndarray) and node.dtype == np.float32):
        raise UnsafePickle(f"{path}: expected a float32 array, got {type(node).__name__}")

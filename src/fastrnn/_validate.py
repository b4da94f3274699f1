"""Argument checking shared by every backend.

Everything a user passes is checked here, once, before any backend runs, so
that a bad argument produces a ValueError/TypeError naming it and the
expected shape and dtype - never a crash in C or a silent cast. The rules:

* float32 and float64 only; every array of a call has the dtype of ``x``
  (mixing is a TypeError: fastrnn never up- or down-casts silently);
* inputs that are not C-contiguous are copied (documented behaviour);
  read-only inputs are fine (they are only read);
* caller-provided output arrays must already be C-contiguous, writable, of
  the right shape and dtype, and must not overlap any input: they are written
  in place, so a copy would silently drop the result;
* NaN and inf are not checked for: they propagate as IEEE arithmetic says.
"""
from __future__ import annotations

import math
import numbers
from typing import Optional

import numpy as np

CELLS = ("rnn_tanh", "rnn_relu", "rnn_sigmoid", "lstm", "gru")
GATES = {"rnn_tanh": 1, "rnn_relu": 1, "rnn_sigmoid": 1, "lstm": 4, "gru": 3}
WORKSPACE_WIDTH = {"rnn_tanh": 0, "rnn_relu": 0, "rnn_sigmoid": 0, "lstm": 5, "gru": 4}
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {CELLS}, got {cell!r}")
    return cell


def as_input(name: str, value, ndim: int, dtype: np.dtype | None = None) -> np.ndarray:
    """A C-contiguous float array of rank ``ndim``; ``dtype`` must match if given."""
    if value is None:
        raise TypeError(f"{name} is required")
    arr = np.asarray(value)
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}"
            + (" (integer arrays are not converted implicitly)" if arr.dtype.kind in "iub" else "")
        )
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {arr.dtype} but x has dtype {dtype}; fastrnn does not mix "
            f"dtypes: convert with .astype(np.{dtype})"
        )
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def expect_shape(name: str, arr: np.ndarray, shape: tuple, meaning: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {meaning} = {shape}, got {arr.shape}")


def as_output(name: str, value, shape: tuple, dtype: np.dtype, inputs) -> np.ndarray:
    """Validate a caller-provided output array (written in place)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {value.dtype}")
    if value.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (it is written in place)")
    if not value.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for other_name, other in inputs:
        if other is not None and np.may_share_memory(value, other):
            raise ValueError(f"{name} must not overlap the input {other_name}")
    return value


# -- scalars: sizes, flags and hyperparameters --

def integer(name: str, value, minimum: Optional[int] = None) -> int:
    """An integer argument (int or numpy integer, never bool or float)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def boolean(name: str, value) -> bool:
    """A flag: bool or numpy bool (an int 1 is a TypeError, not True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def real_number(name: str, value, low: float, high: float = math.inf, *,
                low_open: bool = False, high_open: bool = True) -> float:
    """A finite real number in the interval given (open or closed at each end)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    x = float(value)
    ok = math.isfinite(x) and (x > low if low_open else x >= low) and \
        (x < high if high_open else x <= high)
    if not ok:
        interval = (("(" if low_open else "[") + f"{low:g}, " + (f"{high:g}" if math.isfinite(high)
                    else "inf") + (")" if high_open else "]"))
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x

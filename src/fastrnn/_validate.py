"""Argument checking shared by every backend.

Everything a user passes is checked here, once, before any backend runs, so
that a bad argument produces a ValueError/TypeError naming it and the
expected shape and dtype - never a crash in C or a silent cast. The rules:

* float32 and float64 only; every array of a call has the dtype of ``x``
  (mixing is a TypeError: fastrnn never up- or down-casts silently);
* inputs that are not C-contiguous, or not aligned to their element size,
  are copied (documented behaviour);
  read-only inputs are fine (they are only read);
* caller-provided output arrays must already be C-contiguous, aligned, writable, of
  the right shape and dtype, and must not overlap any input: they are written
  in place, so a copy would silently drop the result;
* NaN and inf are not checked for: they propagate as IEEE arithmetic says.
"""
from __future__ import annotations

import math
import numbers
from typing import NamedTuple, Optional

import numpy as np

from . import cells

#: The cells' names (fastrnn.cells describes each).
CELLS = cells.NAMES
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_input(name: str, value, ndim: int, dtype: np.dtype | None = None,
             dtype_of: str = "x") -> np.ndarray:
    """A C-contiguous float array of rank ``ndim``; ``dtype`` (that of the
    argument ``dtype_of``) must match if given."""
    if type(value) is np.ndarray:  # the common case, on every call: no conversion
        arr = value
    elif value is None:
        raise TypeError(f"{name} is required")
    else:
        try:
            arr = np.asarray(value)
        except (ValueError, TypeError) as exc:  # ragged nested lists and the like
            raise TypeError(f"{name} must be a float32 or float64 array: {exc}") from None
    if arr.dtype not in FLOAT_DTYPES:
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}"
            + (" (integer arrays are not converted implicitly)" if arr.dtype.kind in "iub" else "")
        )
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(
            f"{name} has dtype {arr.dtype} but {dtype_of} has dtype {dtype}; fastrnn does not "
            f"mix dtypes: convert with .astype(np.{dtype})"
        )
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-D array, got shape {arr.shape}")
    if arr.flags.c_contiguous and arr.flags.aligned:
        return arr
    # a broadcast, strided or unaligned view: its aligned contiguous copy may not fit
    element_count(f"a C-contiguous copy of {name}", *arr.shape)
    try:
        return np.array(arr, order="C", copy=True)
    except MemoryError:
        raise MemoryError(f"not enough memory for a C-contiguous copy of {name} (shape "
                          f"{arr.shape}, {arr.size * arr.itemsize:,} bytes)") from None


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
    if not (value.flags.c_contiguous and value.flags.aligned):
        raise ValueError(f"{name} must be C-contiguous and aligned (it is written in place)")
    if not value.flags.writeable:
        raise ValueError(f"{name} is read-only")
    for other_name, other in inputs:
        if other is not None and np.may_share_memory(value, other):
            raise ValueError(f"{name} must not overlap the input {other_name}")
    return value


# -- one layer's parameters and states: the rules every entry point shares --

class LayerParameters(NamedTuple):  # a tuple: built on every call, so cheaply
    """One layer's validated parameters (see :func:`layer_parameters`).

    weight_ih [G*H, I], weight_hh [G*H, H], bias_ih / bias_hh [G*H]: C-contiguous,
    aligned, all of ``dtype``; an absent bias is zeros (and ``has_bias_*`` False).
    """

    cell: cells.Cell
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray
    bias_hh: np.ndarray
    has_bias_ih: bool
    has_bias_hh: bool
    input_size: int
    hidden_size: int
    dtype: np.dtype
    weight_hr: Optional[np.ndarray] = None  # (P, H): an LSTM's projection, None for none
    proj_size: int = 0  # P; 0: no projection (h is H wide)


def layer_parameters(cell, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *,
                     dtype: Optional[np.dtype] = None, dtype_of: str = "weight_hh",
                     input_size: Optional[int] = None) -> LayerParameters:
    """Check one layer's parameters against its cell (PyTorch layout).

    cell: a name or a :class:`fastrnn.cells.Cell`. dtype: the dtype every
    parameter must have (that of the argument ``dtype_of``), or None to take
    weight_hh's. input_size: what weight_ih's second dimension must be (the
    input's last), or None for any size >= 1. weight_hh decides H; its rows
    must be G*H for the cell's G gates. Non-contiguous or unaligned arrays
    are copied (as_input); a mismatch is a TypeError (dtype) or ValueError
    (shape, rank) naming the argument.
    """
    spec = cells.get(cell)
    weight_hh = as_input("weight_hh", weight_hh, 2, dtype, dtype_of)
    dtype = weight_hh.dtype
    G = spec.gates
    GH, H = weight_hh.shape
    if H < 1 or GH != G * H:
        raise ValueError(
            f"weight_hh must have shape (gates*hidden_size, hidden_size) = ({G}*H, H) "
            f"with H >= 1 for cell {spec.name!r}, got {weight_hh.shape}")
    weight_ih = as_input("weight_ih", weight_ih, 2, dtype, dtype_of)
    if input_size is not None:
        expect_shape("weight_ih", weight_ih, (GH, input_size), "(gates*hidden_size, input_size)")
    elif weight_ih.shape[0] != GH or weight_ih.shape[1] < 1:
        raise ValueError(f"weight_ih must have shape (gates*hidden_size, input_size) = "
                         f"({GH}, input_size >= 1), got {weight_ih.shape}")
    biases = []
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is None:
            biases.append(np.zeros(GH, dtype))
        else:
            b = as_input(name, bias, 1, dtype, dtype_of)
            expect_shape(name, b, (GH,), "(gates*hidden_size,)")
            biases.append(b)
    return LayerParameters(spec, weight_ih, weight_hh, biases[0], biases[1], bias_ih is not None,
                           bias_hh is not None, weight_ih.shape[1], H, dtype)


def projected_layer_parameters(cell, weight_ih, weight_hh, weight_hr, bias_ih=None,
                               bias_hh=None, *, dtype: Optional[np.dtype] = None,
                               dtype_of: str = "weight_hh",
                               input_size: Optional[int] = None) -> LayerParameters:
    """Check the parameters of an LSTM whose hidden state is projected
    (torch.nn.LSTM(proj_size=P)): weight_hr (P, H) decides H and P,
    weight_hh must be (4H, P), weight_ih (4H, input_size), the biases (4H,).
    Only the LSTM has a projection (a ValueError for another cell)."""
    spec = cells.get(cell)
    if spec.layer != "LSTM" or spec.layer_options:
        raise ValueError(f"weight_hr (a projection, proj_size) exists only for the LSTM cell, "
                         f"not {spec.label!r}")
    weight_hr = as_input("weight_hr", weight_hr, 2, dtype, dtype_of)
    dtype = weight_hr.dtype
    P, H = weight_hr.shape
    if P < 1 or H < 1:
        raise ValueError(f"weight_hr must have shape (proj_size, hidden_size) with both >= 1, "
                         f"got {weight_hr.shape}")
    G = spec.gates
    weight_hh = as_input("weight_hh", weight_hh, 2, dtype, dtype_of)
    if weight_hh.shape != (G * H, P):
        raise ValueError(f"weight_hh must have shape (gates*hidden_size, proj_size) = "
                         f"({G * H}, {P}) for weight_hr of shape (proj_size, hidden_size) = "
                         f"{weight_hr.shape}, got {weight_hh.shape}")
    weight_ih = as_input("weight_ih", weight_ih, 2, dtype, dtype_of)
    if input_size is not None:
        expect_shape("weight_ih", weight_ih, (G * H, input_size),
                     "(gates*hidden_size, input_size)")
    elif weight_ih.shape[0] != G * H or weight_ih.shape[1] < 1:
        raise ValueError(f"weight_ih must have shape (gates*hidden_size, input_size) = "
                         f"({G * H}, input_size >= 1), got {weight_ih.shape}")
    biases = []
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is None:
            biases.append(np.zeros(G * H, dtype))
        else:
            b = as_input(name, bias, 1, dtype, dtype_of)
            expect_shape(name, b, (G * H,), "(gates*hidden_size,)")
            biases.append(b)
    return LayerParameters(spec, weight_ih, weight_hh, biases[0], biases[1], bias_ih is not None,
                           bias_hh is not None, weight_ih.shape[1], H, dtype, weight_hr, P)


def state(cell, name: str, value, batch: int, hidden_size: int, dtype: np.dtype, *,
          cell_state: bool = False, dtype_of: str = "x",
          zeros: bool = True) -> Optional[np.ndarray]:
    """A recurrent state argument (h0, h, c0, c, or a gradient w.r.t. one),
    shape (batch, hidden_size), of ``dtype``; None becomes zeros (or stays
    None with ``zeros=False``).

    cell_state: the argument belongs to the cell state c, which only some
    cells carry: for any other cell the result is None, and a value given
    is a ValueError.
    """
    if cell_state and not cells.get(cell).has_cell_state:
        if value is not None:
            raise ValueError(f"{name} is only meaningful for a cell with a cell state "
                             f"{_cells_with_state()}, not {cells.get(cell).name!r}")
        return None
    if value is None:
        return np.zeros((batch, hidden_size), dtype) if zeros else None
    arr = as_input(name, value, 2, dtype, dtype_of)
    expect_shape(name, arr, (batch, hidden_size), "(batch, hidden_size)")
    return arr


def _cells_with_state() -> str:
    return "(" + ", ".join(repr(n) for n, c in cells.CELLS.items() if c.has_cell_state) + ")"


def upstream(name: str, value, shape: tuple, meaning: str, dtype: np.dtype,
             dtype_of: str = "x") -> np.ndarray:
    """An upstream gradient of ``shape`` (zeros for None)."""
    if value is None:
        return np.zeros(shape, dtype)
    arr = as_input(name, value, len(shape), dtype, dtype_of)
    expect_shape(name, arr, shape, meaning)
    return arr


def lengths(value, batch: int, T: int) -> Optional[np.ndarray]:
    """Per-row sequence lengths: None (every row runs all T steps) or an
    integer array-like of shape (batch,), in any order, each 0 <= length <= T.
    Returns an int64 C-contiguous copy (the backend contract's form), so that
    the caller's array may change later without touching a saved forward.
    Floats and bools are a TypeError (a length is never rounded), a wrong
    shape or a value out of range a ValueError naming the first bad row."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and len(value) == 0:
        value = np.zeros(0, np.int64)  # np.asarray([]) would be float64
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise TypeError(f"lengths must be an integer array of shape (batch,) = ({batch},): "
                        f"{exc}") from None
    if arr.dtype.kind not in "iu":
        raise TypeError(f"lengths must be an integer array of shape (batch,) = ({batch},) "
                        f"with values in [0, T] = [0, {T}], got dtype {arr.dtype}"
                        + (" (lengths are never rounded)" if arr.dtype.kind in "fc" else ""))
    if arr.shape != (batch,):
        raise ValueError(f"lengths must have shape (batch,) = ({batch},), got {arr.shape}")
    bad = np.flatnonzero((arr < 0) | (arr > T))
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"lengths must be in [0, T] = [0, {T}] (T = x.shape[0]), got "
                         f"lengths[{row}] = {int(arr[row])}")
    return np.array(arr, dtype=np.int64, order="C", copy=True)


# -- scalars: sizes, flags and hyperparameters --

def integer(name: str, value, minimum: Optional[int] = None,
            maximum: Optional[int] = None) -> int:
    """An integer argument (int or numpy integer, never bool or float) in
    [minimum, maximum]; TypeError for another type, ValueError out of range,
    both saying what was expected."""
    what = ("a positive integer" if minimum == 1 else "an integer" if minimum is None
            else f"an integer >= {minimum}") + ("" if maximum is None else f" and <= {maximum}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    value = int(value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return value


# The most elements one array may have: numpy's (and the C core's) sizes
# are signed 64-bit byte counts.
MAX_ELEMENTS = np.iinfo(np.intp).max // 8


def element_count(what: str, *dims: int) -> int:
    """The product of ``dims`` as a Python int (no wrap-around), or
    ValueError naming ``what`` if no array of that many elements can exist."""
    count = math.prod(int(d) for d in dims)
    if count > MAX_ELEMENTS:
        raise ValueError(f"{what} would have {count:,} elements, more than any array can hold "
                         f"({MAX_ELEMENTS:,})")
    return count


def allocate(what: str, shape: tuple, dtype) -> np.ndarray:
    """np.empty, with a MemoryError that says which array did not fit."""
    element_count(what, *shape)
    try:
        return np.empty(shape, dtype)
    except MemoryError:
        nbytes = math.prod(shape) * np.dtype(dtype).itemsize
        raise MemoryError(f"not enough memory for {what}: shape {shape}, {nbytes:,} bytes") from None


def seed(name: str, value) -> Optional[int]:
    """A random seed: None (fresh entropy) or a non-negative integer."""
    if value is None:
        return None
    return integer(name, value, 0)


def float_dtype(name: str, value) -> np.dtype:
    """A dtype argument: anything numpy.dtype takes that names float32 or
    float64 (a layer's or model's dtype; never another one, never a cast)."""
    try:
        dtype = np.dtype(value)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {value!r}") from None
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dtype}")
    return dtype


def boolean(name: str, value) -> bool:
    """A flag: bool or numpy bool (an int 1 is a TypeError, not True)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def real_number(name: str, value, low: float, high: float = math.inf, *,
                low_open: bool = False, high_open: bool = True) -> float:
    """A finite real number in the interval given (open or closed at each end);
    TypeError for another type, ValueError outside, both saying what was expected."""
    if low_open and math.isinf(high):
        what = f"a finite number > {low:g}"
    else:
        what = ("a finite number in " + ("(" if low_open else "[") + f"{low:g}, "
                + (f"{high:g}" if math.isfinite(high) else "inf") + (")" if high_open else "]"))
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be {what}, got {type(value).__name__} {value!r}")
    try:
        x = float(value)
    except OverflowError:  # an int beyond float range (10**400)
        x = math.inf
    ok = math.isfinite(x) and (x > low if low_open else x >= low) and \
        (x < high if high_open else x <= high)
    if not ok:
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return x

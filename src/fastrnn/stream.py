"""Streaming: one time step per call, with the weights prepared once.

A *stream* is a recurrent layer frozen for step-by-step inference (online
audio, control loops, token-by-token generation): it owns the state and
advances it one input at a time::

    lstm = fastrnn.LSTM(32, 32, seed=0)
    s = lstm.stream()                 # batch=1, state starts at zeros
    for x_t in frames:                # x_t: (1, 32) float32, C-contiguous
        h = s(x_t)                    # the new hidden state, (1, 32)
    s.c                               # LSTM: the cell state, (1, 32)
    s.reset()                         # back to zeros (or s.reset(h, c))

Semantics, for every backend:

* ``s(x)`` / ``s.step(x)`` takes x of shape (batch, input_size), C-contiguous
  and of the stream's dtype (never converted: a wrong dtype is a TypeError,
  a wrong shape or a non-contiguous x a ValueError, each naming ``x``);
* it returns ``s.h`` itself - the same array object on every call, updated
  in place; copy it (``h.copy()``) to keep a step's value;
* ``s.h`` and ``s.c`` (LSTM; None otherwise) are the state arrays, writable
  in place (``s.h[...] = 0``); assigning ``s.h = value`` copies into them;
* the weights are copied when the stream is created: later changes to the
  layer's parameters are not seen by an existing stream (create a new one);
* a stream is not thread-safe: use one stream per thread (the C stream
  raises RuntimeError if two threads step it at once).

Backends. On the C backend, :func:`create` returns a
:class:`fastrnn._core.Stream`: the weights are packed once for the GEMM
kernels (W_ih^T and W_hh^T), every buffer is preallocated, and a call costs
about a microsecond for a small LSTM - it checks only x's shape, dtype and
contiguity and releases the GIL around the C step. The packed weights belong
to the ISA that was active at creation (``s.isa``), which the stream keeps
using even if :func:`fastrnn.backends.c.select_isa` picks another later. On
the numba and numpy backends it returns a :class:`PyStream` with the same
interface built on :func:`fastrnn.functional.step` (correct, but paying that
function's full validation on every call). Both are instances of
:class:`Stream`.
"""
from __future__ import annotations

import abc
from typing import Optional

import numpy as np

from . import _validate as v
from . import cells
from . import functional as F
from .backends import select

__all__ = ["Stream", "PyStream", "create"]


class Stream(abc.ABC):
    """What every stream provides (see the module docstring).

    Attributes: ``cell`` (the name), ``descriptor`` (the fastrnn.cells.Cell,
    hyperparameters included), ``batch``, ``input_size``, ``hidden_size``,
    ``dtype``, ``backend``, ``isa`` (C: the kernel table in use; None
    otherwise), ``h``, ``c``. Methods: ``__call__(x)`` / ``step(x)`` -> h,
    ``reset(h=None, c=None)``.
    """

    @abc.abstractmethod
    def step(self, x) -> np.ndarray: ...

    @abc.abstractmethod
    def reset(self, h=None, c=None) -> None: ...


def check_input(x, dtype, batch: int, input_size: int) -> np.ndarray:
    """x as an array of the stream's dtype, shape (batch, input_size), C order,
    or the exception that names what is wrong (every stream's rules: no
    dtype conversion, no copy of a non-contiguous input)."""
    try:
        a = np.asarray(x)
    except Exception as exc:
        raise TypeError(f"x must be a {dtype} array of shape (batch, input_size) = "
                        f"({batch}, {input_size}), got {type(x).__name__}") from exc
    if a.dtype != dtype:
        raise TypeError(
            f"x must have dtype {dtype} (the stream's dtype), got {a.dtype}; "
            f"fastrnn does not convert dtypes implicitly: use x.astype(np.{dtype})")
    if a.shape != (batch, input_size):
        raise ValueError(f"x must have shape (batch, input_size) = ({batch}, {input_size}), "
                         f"got {a.shape}")
    if not a.flags.c_contiguous:
        raise ValueError("x must be C-contiguous (a stream does not copy its input): "
                         "use np.ascontiguousarray(x)")
    return a


class PyStream(Stream):
    """A stream on any backend through :func:`fastrnn.functional.step`.

    Used for the numba and numpy backends; same interface and semantics as
    the C stream, at the cost of functional.step's per-call validation.
    """

    isa = None

    def __init__(self, cell, weight_ih, weight_hh, bias_ih, bias_hh, batch, h0, c0,
                 backend: str):
        # cell: the name, as the C stream's; descriptor: the Cell it runs
        # (the leaky cell's rate included), which every step is given
        self.descriptor = cells.get(cell)
        self.cell, self.backend = self.descriptor.name, backend
        # copies: later changes to the caller's arrays are not seen
        self._w = tuple(None if a is None else np.array(a, order="C", copy=True)
                        for a in (weight_ih, weight_hh, bias_ih, bias_hh))
        self.dtype = self._w[0].dtype
        self.batch, self.hidden_size = batch, self._w[1].shape[1]
        self.input_size = self._w[0].shape[1]
        self._h = np.zeros((batch, self.hidden_size), self.dtype)
        self._c = np.zeros_like(self._h) if cells.get(cell).has_cell_state else None
        self.reset(h0, c0)

    def _check_x(self, x):
        a = check_input(x, self.dtype, self.batch, self.input_size)
        if np.may_share_memory(a, self._h) or (self._c is not None
                                               and np.may_share_memory(a, self._c)):
            a = a.copy()
        return a

    def step(self, x) -> np.ndarray:
        """Advance one step with x (batch, input_size), in place; returns ``self.h``."""
        x = self._check_x(x)
        w_ih, w_hh, b_ih, b_hh = self._w
        F.step(self.descriptor, x, w_ih, w_hh, b_ih, b_hh, self._h, self._c, backend=self.backend,
               h_out=self._h, c_out=self._c)
        return self._h

    __call__ = step

    @property
    def h(self) -> np.ndarray:
        """The hidden state (batch, hidden_size), updated in place by every step."""
        return self._h

    @h.setter
    def h(self, value):
        self._h[...] = _required(_state(self.cell, "h", value, self.batch, self.hidden_size,
                                        self.dtype), "h")

    @property
    def c(self) -> Optional[np.ndarray]:
        """The LSTM cell state (batch, hidden_size), updated in place; None otherwise."""
        return self._c

    @c.setter
    def c(self, value):
        value = _state(self.cell, "c", _required(value, "c"), self.batch, self.hidden_size,
                       self.dtype, cell_state=True)
        self._c[...] = value

    def reset(self, h=None, c=None) -> None:
        """Set the state to h / c (batch, hidden_size), zeros where None."""
        _state(self.cell, "c", c, self.batch, self.hidden_size, self.dtype, cell_state=True)
        if h is None:
            self._h[...] = 0
        else:
            self.h = h
        if self._c is not None:
            if c is None:
                self._c[...] = 0
            else:
                self.c = c

    def __repr__(self) -> str:
        return (f"fastrnn.stream.PyStream({self.descriptor.label!r}, batch={self.batch}, "
                f"input_size={self.input_size}, hidden_size={self.hidden_size}, "
                f"dtype={self.dtype.name}, backend={self.backend!r})")


def _required(value, name):
    if value is None:
        raise TypeError(f"{name} is required (a (batch, hidden_size) array)")
    return value


def _state(spec, name, value, B, H, dtype, cell_state=False):
    """A state argument (zeros never substituted: None stays None)."""
    return v.state(spec, name, value, B, H, dtype, cell_state=cell_state,
                   dtype_of="weight_hh", zeros=False)


def create(cell: str, weight_ih, weight_hh, bias_ih=None, bias_hh=None, *, batch: int = 1,
           h0=None, c0=None, backend: Optional[str] = None) -> Stream:
    """A :class:`Stream` for one layer's parameters (PyTorch layout, as in
    :func:`fastrnn.functional.forward`).

    batch: rows stepped together (>= 1). h0, c0: (batch, hidden_size) initial
    state, zeros if None (c0: cells with a cell state only). The parameters
    are copied. backend: as everywhere (None: FASTRNN_BACKEND or the fastest
    available); a backend with its own streams (the C core: weights packed
    once) gives one of those, the others a :class:`PyStream`.
    """
    spec = cells.get(cell)
    batch = v.integer("batch", batch, 1)
    p = v.layer_parameters(spec, weight_ih, weight_hh, bias_ih, bias_hh)
    h0 = _state(spec, "h0", h0, batch, p.hidden_size, p.dtype)
    c0 = _state(spec, "c0", c0, batch, p.hidden_size, p.dtype, cell_state=True)
    name, module = select(backend, "stream")
    # absent biases go to the stream as None: it copies what it is given
    b_ih = p.bias_ih if p.has_bias_ih else None
    b_hh = p.bias_hh if p.has_bias_hh else None
    native = getattr(module, "create_stream", None)
    if native is not None:
        return native(spec, p.weight_ih, p.weight_hh, b_ih, b_hh, batch, h0, c0)
    return PyStream(spec, p.weight_ih, p.weight_hh, b_ih, b_hh, batch, h0, c0, name)


def _register():
    try:
        from . import _core
    except ImportError:
        return
    Stream.register(_core.Stream)


_register()

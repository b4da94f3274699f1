"""Layer objects: parameters with PyTorch's names and initialisation.

``RNN``, ``LSTM`` and ``GRU`` hold ``weight_ih``, ``weight_hh``, ``bias_ih``,
``bias_hh`` as NumPy arrays laid out exactly like torch.nn.RNN / LSTM / GRU
(one layer, one direction), and call :mod:`fastrnn.functional`. They are
containers, not an autograd system: ``forward(..., training=True)`` returns
what ``backward`` needs, and the gradients come back as a
:class:`~fastrnn.functional.Gradients`.

Streaming: ``layer.stream(batch=1, h0=None, c0=None)`` returns a
:class:`fastrnn.stream.Stream` for step-by-step inference: ``s = lstm.stream()``
then ``h = s(x_t)`` for each x_t of shape (batch, input_size). The stream
owns the state (``s.h``, and ``s.c`` for LSTM), updates it in place and
returns ``s.h`` itself every call. The weights are copied (on the C backend,
packed) when the stream is created, so later changes to the layer's
parameters are not seen by an existing stream. On the C backend a step costs
about a microsecond for a small layer, against several for :meth:`step`,
which validates every argument on every call; see :mod:`fastrnn.stream`.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _validate as v
from . import cells
from . import functional as F
from . import stream as _stream

__all__ = ["RNN", "LSTM", "GRU"]


class _Recurrent:
    cell: str = ""  # a name in fastrnn.cells.CELLS: the layer's shapes and math

    def __init__(self, input_size: int, hidden_size: int, *, bias: bool = True,
                 dtype=np.float32, seed: Optional[int] = None, backend: Optional[str] = None):
        input_size = v.integer("input_size", input_size, 1)
        hidden_size = v.integer("hidden_size", hidden_size, 1)
        bias = v.boolean("bias", bias)
        dtype = v.float_dtype("dtype", dtype)
        self.input_size, self.hidden_size = input_size, hidden_size
        seed = v.seed("seed", seed)
        self.dtype, self.backend = dtype, backend
        GH, H, I = cells.get(self.cell).gate_rows(hidden_size), hidden_size, input_size
        # sizes no array can have are refused before anything is drawn
        v.element_count(f"weight_ih ({GH}, input_size={I})", GH, I)
        v.element_count(f"weight_hh ({GH}, hidden_size={H})", GH, H)
        # PyTorch's default: every parameter ~ U(-1/sqrt(H), 1/sqrt(H)).
        rng = np.random.default_rng(seed)
        k = 1.0 / np.sqrt(H)
        self.weight_ih = rng.uniform(-k, k, (GH, I)).astype(dtype)
        self.weight_hh = rng.uniform(-k, k, (GH, H)).astype(dtype)
        self.bias_ih = rng.uniform(-k, k, GH).astype(dtype) if bias else None
        self.bias_hh = rng.uniform(-k, k, GH).astype(dtype) if bias else None

    # -- parameters --------------------------------------------------------
    def parameters(self) -> dict:
        """The parameters by PyTorch name (biases omitted when absent)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}

    def state_dict(self) -> dict:
        """Parameters under torch.nn's layer-0 keys (``weight_ih_l0`` ...)."""
        return {f"{n}_l0": a for n, a in self.parameters().items()}

    def load_state_dict(self, state: dict) -> None:
        """Load torch.nn-style keys (``weight_ih_l0`` or ``weight_ih``).

        Values may be arrays or torch tensors; they are converted to this
        layer's dtype (an explicit, requested conversion) and shape-checked.
        """
        for name, current in self.parameters().items():
            key = f"{name}_l0" if f"{name}_l0" in state else name
            if key not in state:
                raise KeyError(f"state is missing {name}_l0")
            value = state[key]
            if hasattr(value, "detach"):
                value = value.detach().cpu().numpy()
            value = np.array(value, dtype=self.dtype, order="C")
            if value.shape != current.shape:
                raise ValueError(f"{key} must have shape {current.shape}, got {value.shape}")
            setattr(self, name, value)

    @classmethod
    def from_torch(cls, module, *, dtype=None, backend: Optional[str] = None):
        """Build from a one-layer, unidirectional, time-major torch module."""
        for attr, ok in (("num_layers", 1), ("bidirectional", False), ("batch_first", False)):
            if getattr(module, attr) != ok:
                raise ValueError(f"fastrnn layers need {attr}={ok}, the module has "
                                 f"{attr}={getattr(module, attr)}")
        if getattr(module, "proj_size", 0):
            raise ValueError("LSTM with proj_size > 0 is not supported")
        kwargs = {}
        if cls is RNN:  # the Elman layer's cell is its nonlinearity's
            kwargs["nonlinearity"] = module.nonlinearity
        if dtype is None:
            dtype = np.float64 if str(module.weight_hh_l0.dtype) == "torch.float64" else np.float32
        layer = cls(module.input_size, module.hidden_size, bias=module.bias, dtype=dtype,
                    backend=backend, **kwargs)
        layer.load_state_dict(module.state_dict())
        return layer

    # -- computation -------------------------------------------------------
    def forward(self, x, h0=None, c0=None, *, training: bool = False,
                out: Optional[np.ndarray] = None) -> F.ForwardResult:
        """x: (T, B, input_size) -> ForwardResult(output, h_n, c_n, saved)."""
        return F.forward(self.cell, x, self.weight_ih, self.weight_hh, self.bias_ih,
                         self.bias_hh, h0, c0, backend=self.backend, training=training, out=out)

    __call__ = forward

    def backward(self, result: F.ForwardResult, d_output=None, d_h_n=None,
                 d_c_n=None) -> F.Gradients:
        """Gradients of a forward(..., training=True) run (see functional.backward)."""
        return F.backward(result, d_output, d_h_n, d_c_n)

    def step(self, x, h=None, c=None, *, h_out=None, c_out=None):
        """One time step: x (B, input_size) -> new h (or (h, c) for LSTM)."""
        return F.step(self.cell, x, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh,
                      h, c, backend=self.backend, h_out=h_out, c_out=c_out)

    def stream(self, batch: int = 1, h0=None, c0=None) -> _stream.Stream:
        """A :class:`fastrnn.stream.Stream` stepping this layer one input at a time.

        batch: rows per step; h0, c0: (batch, hidden_size) initial state,
        zeros if None (c0: LSTM only). ``s(x)`` with x (batch, input_size)
        advances the state in place and returns ``s.h`` (the same array every
        call); ``s.c`` holds the LSTM cell state. The parameters are copied
        now: later changes to this layer are not seen by the stream. On the
        C backend the weights are packed once and a step costs about a
        microsecond; on numba / numpy the same interface runs through
        :func:`fastrnn.functional.step`.
        """
        return _stream.create(self.cell, self.weight_ih, self.weight_hh, self.bias_ih,
                              self.bias_hh, batch=batch, h0=h0, c0=c0, backend=self.backend)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, "
                f"bias={self.bias_ih is not None}, dtype={self.dtype.name})")


class _HiddenStateOnly(_Recurrent):
    """A layer whose cell carries h alone (no c): the signatures without c."""

    def forward(self, x, h0=None, *, training: bool = False, out=None) -> F.ForwardResult:
        return super().forward(x, h0, None, training=training, out=out)

    __call__ = forward
    forward.__doc__ = _Recurrent.forward.__doc__

    def step(self, x, h=None, *, h_out=None):
        return super().step(x, h, None, h_out=h_out)

    step.__doc__ = _Recurrent.step.__doc__

    def stream(self, batch: int = 1, h0=None) -> _stream.Stream:
        return super().stream(batch, h0, None)

    stream.__doc__ = _Recurrent.stream.__doc__


class RNN(_HiddenStateOnly):
    """Elman RNN: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).

    nonlinearity: "tanh" (default), "relu" or "sigmoid".
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", **kwargs):
        elman = {c.nonlinearity: c.name for c in cells.CELLS.values() if c.layer == "RNN"}
        if nonlinearity not in elman:
            raise ValueError(f"nonlinearity must be one of {tuple(elman)}, got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.cell = elman[nonlinearity]
        super().__init__(input_size, hidden_size, **kwargs)


class LSTM(_Recurrent):
    """LSTM with PyTorch's gate order i, f, g, o; step returns (h, c)."""

    cell = "lstm"


class GRU(_HiddenStateOnly):
    """GRU as PyTorch defines it (reset gate applied to W_hn h + b_hn)."""

    cell = "gru"

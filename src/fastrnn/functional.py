"""The functional API: forward, backward and step for one recurrent layer.

These functions own the contract between users and backends: they validate
every argument (_validate), allocate outputs, substitute zeros for absent
biases / initial states / upstream gradients, handle empty problems
(T = 0 or B = 0) without calling a backend, and dispatch to the selected
backend. Backends therefore only ever see valid, C-contiguous, same-dtype
arrays with T >= 1 and B >= 1.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from . import _validate as v
from .backends import get_backend, resolve_backend

__all__ = ["ForwardResult", "Gradients", "forward", "backward", "step"]


@dataclass
class _Saved:
    """What backward needs from forward (kept only when training=True)."""

    cell: str
    backend: str
    x: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: np.ndarray  # zeros when the layer has no bias_ih
    bias_hh: np.ndarray
    has_bias_ih: bool
    has_bias_hh: bool
    h0: np.ndarray  # zeros when no h0 was given
    c0: Optional[np.ndarray]
    workspace: np.ndarray  # (T, B, W) layout in docs/ARCHITECTURE.md
    output: np.ndarray  # the very array forward returned as result.output
    sizes: tuple  # (cell, T, B, I, H, dtype) of the forward, which every array must match


def _check_saved(result: "ForwardResult") -> "_Saved":
    """What backward reads must still be what forward saved.

    The arrays are reachable (result.output, result.saved.*), and the kernels
    read them by the sizes of x and h0: an array replaced by one of another
    shape or dtype would be read past its end. One comparison per array.
    """
    s = result.saved
    if not isinstance(s, _Saved):
        raise TypeError(f"result.saved must be what forward(..., training=True) saved, got "
                        f"{type(s).__name__}")
    if result.output is not s.output:
        raise ValueError("result.output is not the array forward returned: backward needs "
                         "the forward's own outputs (do not replace result.output)")
    cell, T, B, I, H, dtype = s.sizes
    if s.cell != cell:
        raise ValueError(f"result.saved.cell was changed after forward: the forward ran {cell!r}")
    G = v.GATES[s.cell]
    expected = {"x": (T, B, I), "weight_ih": (G * H, I), "weight_hh": (G * H, H),
                "bias_ih": (G * H,), "bias_hh": (G * H,), "h0": (B, H),
                "workspace": (T, B, v.WORKSPACE_WIDTH[s.cell] * H), "output": (T, B, H)}
    if s.cell == "lstm":
        expected["c0"] = (B, H)
    elif s.c0 is not None:
        raise ValueError(f"result.saved.c0 must be None for cell {s.cell!r}")
    for name, shape in expected.items():
        arr = getattr(s, name)
        if not (isinstance(arr, np.ndarray) and arr.shape == shape and arr.dtype == dtype
                and arr.flags.c_contiguous):
            got = f"{arr.dtype}{arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ValueError(f"result.saved.{name} was changed after forward: expected a "
                             f"C-contiguous {dtype} array of shape {shape}, got {got}")
    return s


@dataclass
class ForwardResult:
    """Outputs of :func:`forward`.

    output: (T, B, H) hidden state after every step; h_n: (B, H) final hidden
    state; c_n: (B, H) final cell state (LSTM, else None). ``saved`` holds what
    :func:`backward` needs when forward ran with ``training=True``; it refers to
    (does not copy) the arrays passed to forward, so do not modify those in
    place before calling backward. backward refuses a result whose ``output``
    or saved arrays were replaced (ValueError), since it reads them by the
    forward's sizes.
    """

    output: np.ndarray
    h_n: np.ndarray
    c_n: Optional[np.ndarray] = None
    saved: Optional[_Saved] = None


@dataclass
class Gradients:
    """Gradients from :func:`backward`, named after what they differentiate.

    bias_ih / bias_hh are None when the layer has no such bias; c0 is None
    except for LSTM. h0 / c0 are returned even when forward started from the
    default zero state.
    """

    x: np.ndarray
    weight_ih: np.ndarray
    weight_hh: np.ndarray
    bias_ih: Optional[np.ndarray]
    bias_hh: Optional[np.ndarray]
    h0: np.ndarray
    c0: Optional[np.ndarray] = None


def _check_params(cell, x, weight_ih, weight_hh, bias_ih, bias_hh):
    """Validate x and parameters; returns arrays (biases zero-filled) and sizes."""
    v.check_cell(cell)
    x = v.as_input("x", x, 3)
    dtype = x.dtype
    weight_hh = v.as_input("weight_hh", weight_hh, 2, dtype)
    G = v.GATES[cell]
    GH, H = weight_hh.shape
    if H < 1 or GH != G * H:
        raise ValueError(
            f"weight_hh must have shape (gates*hidden_size, hidden_size) = ({G}*H, H) "
            f"with H >= 1 for cell {cell!r}, got {weight_hh.shape}"
        )
    T, B, I = x.shape
    if I < 1:
        raise ValueError(f"x must have shape (T, B, input_size) with input_size >= 1, got {x.shape}")
    weight_ih = v.as_input("weight_ih", weight_ih, 2, dtype)
    v.expect_shape("weight_ih", weight_ih, (GH, I), "(gates*hidden_size, input_size)")
    biases = []
    for name, bias in (("bias_ih", bias_ih), ("bias_hh", bias_hh)):
        if bias is None:
            biases.append((np.zeros(GH, dtype), False))
        else:
            b = v.as_input(name, bias, 1, dtype)
            v.expect_shape(name, b, (GH,), "(gates*hidden_size,)")
            biases.append((b, True))
    return x, weight_ih, weight_hh, biases, (T, B, I, H, GH)


def _check_state(cell, name, state, B, H, dtype):
    if name in ("c0", "c") and cell != "lstm":
        if state is not None:
            raise ValueError(f"{name} is only meaningful for cell 'lstm', not {cell!r}")
        return None
    if state is None:
        return np.zeros((B, H), dtype)
    s = v.as_input(name, state, 2, dtype)
    v.expect_shape(name, s, (B, H), "(batch, hidden_size)")
    return s


def forward(cell: str, x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, h0=None, c0=None,
            *, backend: Optional[str] = None, training: bool = False,
            out: Optional[np.ndarray] = None) -> ForwardResult:
    """Run one recurrent layer over a sequence.

    cell: "rnn_tanh" | "rnn_relu" | "rnn_sigmoid" | "lstm" | "gru".
    x: (T, B, I). weight_ih: (G*H, I), weight_hh: (G*H, H), bias_ih, bias_hh:
    (G*H,) or None, with G = 1 / 4 (i, f, g, o) / 3 (r, z, n) as in PyTorch.
    h0, c0: (B, H) initial state, zeros if None (c0 for LSTM only).
    training: keep what :func:`backward` needs in ``result.saved``.
    out: optional caller-provided (T, B, H) array for ``result.output``.

    T = 0 or B = 0 is allowed and returns empty outputs with h_n = h0.
    """
    training = v.boolean("training", training)
    x, weight_ih, weight_hh, biases, (T, B, I, H, GH) = _check_params(
        cell, x, weight_ih, weight_hh, bias_ih, bias_hh)
    dtype = x.dtype
    h0 = _check_state(cell, "h0", h0, B, H, dtype)
    c0 = _check_state(cell, "c0", c0, B, H, dtype)
    (b_ih, has_b_ih), (b_hh, has_b_hh) = biases
    inputs = [("x", x), ("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias_ih", b_ih),
              ("bias_hh", b_hh), ("h0", h0), ("c0", c0)]
    if out is None:
        out = v.allocate("the output (T, batch, hidden_size)", (T, B, H), dtype)
    else:
        out = v.as_output("out", out, (T, B, H), dtype, inputs)
    h_n = np.empty((B, H), dtype)
    c_n = np.empty((B, H), dtype) if cell == "lstm" else None
    ws = v.allocate("the training workspace (T, batch, width)",
                    (T, B, v.WORKSPACE_WIDTH[cell] * H), dtype) if training else None
    name = resolve_backend(backend)
    if T == 0 or B == 0:
        h_n[...] = h0
        if c_n is not None:
            c_n[...] = c0
    else:
        get_backend(name).forward(cell, x, weight_ih, weight_hh, b_ih, b_hh, h0, c0,
                                  out, h_n, c_n, ws)
    saved = None
    if training:
        saved = _Saved(cell, name, x, weight_ih, weight_hh, b_ih, b_hh, has_b_ih, has_b_hh,
                       h0, c0, ws, out, (cell, T, B, I, H, dtype))
    return ForwardResult(out, h_n, c_n, saved)


def backward(result: ForwardResult, d_output=None, d_h_n=None, d_c_n=None, *,
             backend: Optional[str] = None) -> Gradients:
    """Full backpropagation through time for a :func:`forward` run with training=True.

    d_output: (T, B, H) gradient of the loss w.r.t. ``result.output``;
    d_h_n, d_c_n: (B, H) gradients w.r.t. the final state. Any of them may be
    None (zero). The backend defaults to the one that ran forward.
    """
    if not isinstance(result, ForwardResult):
        raise TypeError(f"result must be the ForwardResult of forward(), got {type(result).__name__}")
    if result.saved is None:
        raise ValueError("backward needs a ForwardResult from forward(..., training=True)")
    s = _check_saved(result)
    T, B, I = s.x.shape
    H = s.weight_hh.shape[1]
    dtype = s.x.dtype

    def upstream(name, value, shape, meaning):
        if value is None:
            return np.zeros(shape, dtype)
        arr = v.as_input(name, value, len(shape), dtype)
        v.expect_shape(name, arr, shape, meaning)
        return arr

    d_output = upstream("d_output", d_output, (T, B, H), "(T, batch, hidden_size)")
    d_h_n = upstream("d_h_n", d_h_n, (B, H), "(batch, hidden_size)")
    if s.cell == "lstm":
        d_c_n = upstream("d_c_n", d_c_n, (B, H), "(batch, hidden_size)")
    elif d_c_n is not None:
        raise ValueError(f"d_c_n is only meaningful for cell 'lstm', not {s.cell!r}")

    dx = np.empty_like(s.x)
    dw_ih = np.empty_like(s.weight_ih)
    dw_hh = np.empty_like(s.weight_hh)
    db_ih = np.empty_like(s.bias_ih)
    db_hh = np.empty_like(s.bias_hh)
    dh0 = np.empty((B, H), dtype)
    dc0 = np.empty((B, H), dtype) if s.cell == "lstm" else None
    if T == 0 or B == 0:
        for g in (dw_ih, dw_hh, db_ih, db_hh):
            g.fill(0)
        dh0[...] = d_h_n
        if dc0 is not None:
            dc0[...] = d_c_n
    else:
        get_backend(backend or s.backend).backward(
            s.cell, s.x, s.weight_ih, s.weight_hh, s.bias_ih, s.bias_hh, s.h0, s.c0,
            s.output, s.workspace, d_output, d_h_n, d_c_n,
            dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)
    return Gradients(dx, dw_ih, dw_hh, db_ih if s.has_bias_ih else None,
                     db_hh if s.has_bias_hh else None, dh0, dc0)


def step(cell: str, x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, h=None, c=None, *,
         backend: Optional[str] = None, h_out: Optional[np.ndarray] = None,
         c_out: Optional[np.ndarray] = None):
    """One time step for streaming: x (B, I), state (B, H) in, new state out.

    Returns the new h, or (h, c) for LSTM. h_out / c_out may be caller-provided
    arrays, and may be the very arrays passed as h / c (update in place).
    """
    if x is not None:
        x = v.as_input("x", x, 2)  # type and dtype first, then the rank step needs
    x3, weight_ih, weight_hh, biases, (_, B, I, H, GH) = _check_params(
        cell, None if x is None else x[None], weight_ih, weight_hh, bias_ih, bias_hh)
    x = x3[0]
    dtype = x.dtype
    h = _check_state(cell, "h", h, B, H, dtype)
    c = _check_state(cell, "c", c, B, H, dtype)
    (b_ih, _), (b_hh, _) = biases
    inputs = [("x", x), ("weight_ih", weight_ih), ("weight_hh", weight_hh), ("bias_ih", b_ih),
              ("bias_hh", b_hh)]
    h_out = np.empty((B, H), dtype) if h_out is None else v.as_output(
        "h_out", h_out, (B, H), dtype, inputs + [("c", c)])
    if cell == "lstm":
        c_out = np.empty((B, H), dtype) if c_out is None else v.as_output(
            "c_out", c_out, (B, H), dtype, inputs + [("h", h), ("h_out", h_out)])
    elif c_out is not None:
        raise ValueError(f"c_out is only meaningful for cell 'lstm', not {cell!r}")
    if B > 0:
        get_backend(backend).step(cell, x, weight_ih, weight_hh, b_ih, b_hh, h, c, h_out, c_out)
    return (h_out, c_out) if cell == "lstm" else h_out

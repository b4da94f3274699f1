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
from . import cells
from .backends import get_backend, select

__all__ = ["ForwardResult", "Gradients", "forward", "backward", "step"]


@dataclass
class _Saved:
    """What backward needs from forward (kept only when training=True)."""

    cell: cells.Cell  # the descriptor, hyperparameters included (the leaky cell's rate)
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
    lengths: Optional[np.ndarray] = None  # int64 (B,) per-row lengths, None = all T
    weight_hr: Optional[np.ndarray] = None  # (P, H): the LSTM's projection, None for none


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
        raise ValueError(f"result.saved.cell was changed after forward: the forward ran "
                         f"{cell.label!r}")
    spec = cells.get(cell)
    P = H if s.weight_hr is None else s.weight_hr.shape[0]  # the width of h
    expected = dict(spec.parameter_shapes(I, H), x=(T, B, I), h0=(B, P),
                    workspace=(T, B, spec.workspace_width(H)), output=(T, B, P))
    if s.weight_hr is not None:
        expected.update(weight_hh=(spec.gates * H, P), weight_hr=(P, H))
    if spec.has_cell_state:
        expected["c0"] = (B, H)
    elif s.c0 is not None:
        raise ValueError(f"result.saved.c0 must be None for cell {spec.name!r}")
    for name, shape in expected.items():
        arr = getattr(s, name)
        if not (isinstance(arr, np.ndarray) and arr.shape == shape and arr.dtype == dtype
                and arr.flags.c_contiguous):
            got = f"{arr.dtype}{arr.shape}" if isinstance(arr, np.ndarray) else type(arr).__name__
            raise ValueError(f"result.saved.{name} was changed after forward: expected a "
                             f"C-contiguous {dtype} array of shape {shape}, got {got}")
    if s.lengths is not None:  # the backend indexes by them: same checks as forward's
        lengths = s.lengths
        if not (isinstance(lengths, np.ndarray) and lengths.dtype == np.int64
                and lengths.shape == (B,) and lengths.flags.c_contiguous
                and (B == 0 or (int(lengths.min()) >= 0 and int(lengths.max()) <= T))):
            raise ValueError(f"result.saved.lengths was changed after forward: expected a "
                             f"C-contiguous int64 array of shape ({B},) with values in "
                             f"[0, {T}]")
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
    weight_hr: Optional[np.ndarray] = None  # (P, H), a projected LSTM's only


def _check_params(cell, x, weight_ih, weight_hh, bias_ih, bias_hh, weight_hr=None):
    """Validate x and the parameters (biases zero-filled); returns x, the
    parameters and the sizes (T, B, I, H)."""
    spec = cells.get(cell)
    x = v.as_input("x", x, 3)
    T, B, I = x.shape
    if I < 1:
        raise ValueError(f"x must have shape (T, B, input_size) with input_size >= 1, got {x.shape}")
    if weight_hr is not None:
        params = v.projected_layer_parameters(spec, weight_ih, weight_hh, weight_hr, bias_ih,
                                              bias_hh, dtype=x.dtype, dtype_of="x",
                                              input_size=I)
        return x, params, (T, B, I, params.hidden_size)
    params = v.layer_parameters(spec, weight_ih, weight_hh, bias_ih, bias_hh, dtype=x.dtype,
                                dtype_of="x", input_size=I)
    return x, params, (T, B, I, params.hidden_size)


def forward(cell: str, x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, h0=None, c0=None,
            *, backend: Optional[str] = None, training: bool = False,
            out: Optional[np.ndarray] = None, lengths=None,
            weight_hr=None) -> ForwardResult:
    """Run one recurrent layer over a sequence.

    cell: a name in fastrnn.CELLS ("rnn_tanh", "rnn_relu", "rnn_sigmoid",
    "lstm", "gru", "gru_original", "leaky") or a fastrnn.cells.Cell, e.g.
    ``fastrnn.cells.get("leaky").with_hyperparameters(leak_rate=0.3)`` (a
    name runs the cell with its default hyperparameters: leak_rate 1.0).
    x: (T, B, I). weight_ih: (G*H, I), weight_hh: (G*H, H), bias_ih, bias_hh:
    (G*H,) or None, with G = 1 / 4 (i, f, g, o) / 3 (r, z, n) as in PyTorch.
    h0, c0: (B, H) initial state, zeros if None (c0 for LSTM only).
    training: keep what :func:`backward` needs in ``result.saved``.
    out: optional caller-provided (T, B, H) array for ``result.output``.
    lengths: optional per-row sequence lengths, integers (B,) in any order,
    each 0 <= length <= T (None: every row runs all T steps). As PyTorch's
    pack_padded_sequence(..., enforce_sorted=False): output[t, b] = 0 for
    t >= lengths[b], h_n[b] / c_n[b] is row b's state after its last valid
    step (its initial state for a length of 0), and backward ignores
    d_output past a row's length. Only backends with the "lengths" feature
    take it (fastrnn.backends.features): naming another is a
    BackendFeatureError, and "auto" picks one that has it. The work is that
    of the valid steps: rows are ordered by length once and step t runs on
    the rows still active.

    weight_hr: the LSTM's projection (P, H), torch.nn.LSTM(proj_size=P)'s
    weight_hr_l0, or None. With it ``m_t = o ⊙ tanh(c_t)`` and
    ``h_t = W_hr m_t``: weight_hh is (4H, P), h0, h_n and the output are P
    wide, c0 and c_n stay H wide, and backward returns its gradient. Only
    backends with the "projection" feature run it. With lengths too, one
    backend call runs each run of steps over which the same rows are active
    (one per distinct length), the same plan as the C core's lengths path.

    T = 0 or B = 0 is allowed and returns empty outputs with h_n = h0.
    """
    training = v.boolean("training", training)
    x, p, (T, B, I, H) = _check_params(cell, x, weight_ih, weight_hh, bias_ih, bias_hh,
                                       weight_hr)
    spec, dtype = p.cell, x.dtype
    lengths = v.lengths(lengths, B, T)
    projected = p.weight_hr is not None
    if projected and lengths is not None and T > 0 and B > 0 and int(lengths.min()) == T:
        lengths = None  # every row runs T steps: the plain call, bitwise the same
    Hc, H = H, (p.proj_size if projected else H)  # the cell state's width, h's width
    h0 = v.state(spec, "h0", h0, B, H, dtype)
    c0 = v.state(spec, "c0", c0, B, Hc, dtype, cell_state=True)
    inputs = [("x", x), ("weight_ih", p.weight_ih), ("weight_hh", p.weight_hh),
              ("bias_ih", p.bias_ih), ("bias_hh", p.bias_hh), ("h0", h0), ("c0", c0)]
    if projected:
        inputs.append(("weight_hr", p.weight_hr))
    if out is None:
        out = v.allocate("the output (T, batch, hidden_size)", (T, B, H), dtype)
    else:
        out = v.as_output("out", out, (T, B, H), dtype, inputs)
    h_n = np.empty((B, H), dtype)
    c_n = np.empty((B, Hc), dtype) if spec.has_cell_state else None
    ws = v.allocate("the training workspace (T, batch, width)",
                    (T, B, spec.workspace_width(Hc)), dtype) if training else None
    name, module = select(backend, "projection" if projected else
                          "forward" if lengths is None else "lengths")
    if T == 0 or B == 0:
        h_n[...] = h0
        if c_n is not None:
            c_n[...] = c0
    elif projected and lengths is None:
        module.forward_proj(spec, x, p.weight_ih, p.weight_hh, p.weight_hr, p.bias_ih,
                            p.bias_hh, h0, c0, out, h_n, c_n, ws)
    elif projected:
        forward_proj_lengths(module, spec, x, p.weight_ih, p.weight_hh, p.weight_hr, p.bias_ih,
                             p.bias_hh, h0, c0, out, h_n, c_n, ws, lengths)
    elif lengths is None:  # the contract's plain call: backends without "lengths" see no keyword
        module.forward(spec, x, p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh, h0, c0,
                       out, h_n, c_n, ws)
    else:
        module.forward(spec, x, p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh, h0, c0,
                       out, h_n, c_n, ws, lengths=lengths)
    saved = None
    if training:
        saved = _Saved(spec, name, x, p.weight_ih, p.weight_hh, p.bias_ih, p.bias_hh,
                       p.has_bias_ih, p.has_bias_hh, h0, c0, ws, out,
                       (spec, T, B, I, Hc, dtype), lengths, p.weight_hr)
    return ForwardResult(out, h_n, c_n, saved)


def backward(result: ForwardResult, d_output=None, d_h_n=None, d_c_n=None, *,
             backend: Optional[str] = None) -> Gradients:
    """Full backpropagation through time for a :func:`forward` run with training=True.

    d_output: (T, B, H) gradient of the loss w.r.t. ``result.output``;
    d_h_n, d_c_n: (B, H) gradients w.r.t. the final state. Any of them may be
    None (zero). The backend defaults to the one that ran forward.
    A forward run with ``lengths`` is differentiated with the same lengths:
    d_output past a row's length is ignored (those outputs are the constant
    0), d_h_n enters each row at its last valid step (a row of length 0
    passes it straight to the h0 gradient), and the x gradient past a row's
    length is 0.
    """
    if not isinstance(result, ForwardResult):
        raise TypeError(f"result must be the ForwardResult of forward(), got {type(result).__name__}")
    if result.saved is None:
        raise ValueError("backward needs a ForwardResult from forward(..., training=True)")
    s = _check_saved(result)
    spec = cells.get(s.cell)
    T, B, I = s.x.shape
    H = s.weight_hh.shape[1]  # h's width: P with a projection
    Hc = s.sizes[4]  # the cell state's
    dtype = s.x.dtype
    d_output = v.upstream("d_output", d_output, (T, B, H), "(T, batch, hidden_size)", dtype)
    d_h_n = v.upstream("d_h_n", d_h_n, (B, H), "(batch, hidden_size)", dtype)
    d_c_n = v.state(spec, "d_c_n", d_c_n, B, Hc, dtype, cell_state=True)

    dx = np.empty_like(s.x)
    dw_ih = np.empty_like(s.weight_ih)
    dw_hh = np.empty_like(s.weight_hh)
    db_ih = np.empty_like(s.bias_ih)
    db_hh = np.empty_like(s.bias_hh)
    dw_hr = None if s.weight_hr is None else np.empty_like(s.weight_hr)
    dh0 = np.empty((B, H), dtype)
    dc0 = np.empty((B, Hc), dtype) if spec.has_cell_state else None
    if T == 0 or B == 0:
        for g in (dw_ih, dw_hh, db_ih, db_hh) + (() if dw_hr is None else (dw_hr,)):
            g.fill(0)
        dh0[...] = d_h_n
        if dc0 is not None:
            dc0[...] = d_c_n
    elif dw_hr is not None and s.lengths is None:
        get_backend(backend or s.backend, "projection").backward_proj(
            s.cell, s.x, s.weight_ih, s.weight_hh, s.weight_hr, s.h0, s.c0, s.output,
            s.workspace, d_output, d_h_n, d_c_n, dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0)
    elif dw_hr is not None:
        backward_proj_lengths(get_backend(backend or s.backend, "projection"), s.cell, s.x,
                              s.weight_ih, s.weight_hh, s.weight_hr, s.h0, s.c0, s.output,
                              s.workspace, d_output, d_h_n, d_c_n, dx, dw_ih, dw_hh, dw_hr,
                              db_ih, db_hh, dh0, dc0, s.lengths)
    elif s.lengths is None:
        get_backend(backend or s.backend, "backward").backward(
            s.cell, s.x, s.weight_ih, s.weight_hh, s.bias_ih, s.bias_hh, s.h0, s.c0,
            s.output, s.workspace, d_output, d_h_n, d_c_n,
            dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)
    else:
        get_backend(backend or s.backend, "lengths").backward(
            s.cell, s.x, s.weight_ih, s.weight_hh, s.bias_ih, s.bias_hh, s.h0, s.c0,
            s.output, s.workspace, d_output, d_h_n, d_c_n,
            dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths=s.lengths)
    return Gradients(dx, dw_ih, dw_hh, db_ih if s.has_bias_ih else None,
                     db_hh if s.has_bias_hh else None, dh0, dc0, dw_hr)


# -- a projected LSTM over rows of different lengths --------------------------
#
# The backends' projection entry points run whole windows; per-row lengths
# are composed here from them, with the plan of the C core's lengths.c: the
# rows ordered by length once (stable, longest first, as torch's
# enforce_sorted=False), and each run of steps over which the same rows are
# active (a segment, one per distinct length) one backend call on those
# rows, the state carried between segments. Backward walks the segments
# last first: a row's d_h_n / d_c_n enters at the end of its last segment
# (until then the carried gradient of a row that ended is untouched), the
# parameter gradients add up over segments. The padded output and workspace
# are 0 past each row's length, as the lengths contract says.

def _segments(lengths: np.ndarray):
    """(order, [(t0, t1, rows)]): the rows by length, longest first, and the
    segments, rows being the first n of order (n active over [t0, t1))."""
    order = np.argsort(-lengths, kind="stable")
    by_length = lengths[order]
    segments, t0 = [], 0
    n = int(np.count_nonzero(by_length > 0))
    while n > 0:
        t1 = int(by_length[n - 1])
        segments.append((t0, t1, order[:n]))
        t0 = t1
        n = int(np.count_nonzero(by_length > t0))
    return order, segments


def forward_proj_lengths(module, spec, x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, out, h_n, c_n,
                         ws, lengths):
    """``module.forward_proj`` (a backend with "projection") over rows of
    different lengths (int64 (B,), not all T): the contract's arguments, as
    the backend's (fastrnn.torch calls it too)."""
    order, segments = _segments(lengths)
    h, c = h0[order], c0[order]  # the sorted running state
    out.fill(0)
    if ws is not None:
        ws.fill(0)
    dtype, P, Hc = x.dtype, h0.shape[1], c0.shape[1]
    for t0, t1, rows in segments:
        n = rows.shape[0]
        seg_out = np.empty((t1 - t0, n, P), dtype)
        seg_ws = None if ws is None else np.empty((t1 - t0, n, ws.shape[2]), dtype)
        seg_h, seg_c = np.empty((n, P), dtype), np.empty((n, Hc), dtype)
        module.forward_proj(spec, np.ascontiguousarray(x[t0:t1][:, rows]), w_ih, w_hh, w_hr,
                            b_ih, b_hh, np.ascontiguousarray(h[:n]), np.ascontiguousarray(c[:n]),
                            seg_out, seg_h, seg_c, seg_ws)
        out[t0:t1, rows] = seg_out
        if ws is not None:
            ws[t0:t1, rows] = seg_ws
        h[:n], c[:n] = seg_h, seg_c
    h_n[order] = h
    c_n[order] = c


def backward_proj_lengths(module, cell, x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_output, d_h_n,
                          d_c_n, dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0, lengths):
    """BPTT of :func:`forward_proj_lengths` through ``module.backward_proj``."""
    order, segments = _segments(lengths)
    Hc = c0.shape[1]
    at = cells.get(cell).workspace_names.index("c") * Hc
    dh, dc = d_h_n[order], d_c_n[order]  # the gradient carried into each row's state
    dx.fill(0)
    for g in (dw_ih, dw_hh, dw_hr, db_ih, db_hh):
        g.fill(0)
    seg_grads = [np.empty_like(g) for g in (dw_ih, dw_hh, dw_hr, db_ih, db_hh)]
    for t0, t1, rows in reversed(segments):
        n = rows.shape[0]
        gather = lambda a: np.ascontiguousarray(a[t0:t1][:, rows])  # noqa: E731
        h_start = h0[rows] if t0 == 0 else out[t0 - 1, rows]
        c_start = c0[rows] if t0 == 0 else ws[t0 - 1, rows, at:at + Hc]
        seg_dx = np.empty((t1 - t0, n, dx.shape[2]), dx.dtype)
        seg_dh, seg_dc = np.empty_like(dh[:n]), np.empty_like(dc[:n])
        module.backward_proj(cell, gather(x), w_ih, w_hh, w_hr,
                             np.ascontiguousarray(h_start), np.ascontiguousarray(c_start),
                             gather(out), gather(ws), gather(d_output),
                             np.ascontiguousarray(dh[:n]), np.ascontiguousarray(dc[:n]),
                             seg_dx, *seg_grads[:3], *seg_grads[3:], seg_dh, seg_dc)
        for total, part in zip((dw_ih, dw_hh, dw_hr, db_ih, db_hh), seg_grads):
            total += part
        dx[t0:t1, rows] = seg_dx
        dh[:n], dc[:n] = seg_dh, seg_dc
    dh0[order] = dh
    dc0[order] = dc


def step(cell: str, x, weight_ih, weight_hh, bias_ih=None, bias_hh=None, h=None, c=None, *,
         backend: Optional[str] = None, h_out: Optional[np.ndarray] = None,
         c_out: Optional[np.ndarray] = None):
    """One time step for streaming: x (B, I), state (B, H) in, new state out.

    Returns the new h, or (h, c) for LSTM. h_out / c_out may be caller-provided
    arrays, and may be the very arrays passed as h / c (update in place).
    """
    if x is not None:
        x = v.as_input("x", x, 2)  # type and dtype first, then the rank step needs
    x3, p, (_, B, I, H) = _check_params(cell, None if x is None else x[None], weight_ih,
                                        weight_hh, bias_ih, bias_hh)
    spec, x = p.cell, x3[0]
    dtype = x.dtype
    h = v.state(spec, "h", h, B, H, dtype)
    c = v.state(spec, "c", c, B, H, dtype, cell_state=True)
    inputs = [("x", x), ("weight_ih", p.weight_ih), ("weight_hh", p.weight_hh),
              ("bias_ih", p.bias_ih), ("bias_hh", p.bias_hh)]
    h_out = np.empty((B, H), dtype) if h_out is None else v.as_output(
        "h_out", h_out, (B, H), dtype, inputs + [("c", c)])
    if spec.has_cell_state:
        c_out = np.empty((B, H), dtype) if c_out is None else v.as_output(
            "c_out", c_out, (B, H), dtype, inputs + [("h", h), ("h_out", h_out)])
    elif c_out is not None:
        raise ValueError(f"c_out is only meaningful for a cell with a cell state "
                         f"{v._cells_with_state()}, not {spec.name!r}")
    if B > 0:
        get_backend(backend, "step").step(spec, x, p.weight_ih, p.weight_hh, p.bias_ih,
                                          p.bias_hh, h, c, h_out, c_out)
    return (h_out, c_out) if spec.has_cell_state else h_out

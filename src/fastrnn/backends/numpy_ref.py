"""The NumPy reference backend: the contract written as plainly as possible.

This is the readable statement of the math (see docs/ARCHITECTURE.md for the
equations) and the fallback when nothing compiled is available. It favours
clarity over speed: one matrix product per step, no fusion, no scratch reuse.
It is not a training framework - only the backend contract.

Per-row sequence lengths (the "lengths" feature) run the packed path of
PyTorch's pack_padded_sequence(..., enforce_sorted=False): rows are ordered
by length once, step t runs on the rows still active, and the results are
un-permuted; lengths all equal to T take the plain path, so they give
bitwise the results of lengths=None.
"""
from __future__ import annotations

import numpy as np

from .. import cells


def _sigmoid(v):
    # exp(-v) overflows to inf for v << 0, giving the correct limit 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


_ACTIVATIONS = {
    "rnn_tanh": np.tanh,
    "rnn_relu": lambda v: np.maximum(v, 0),
    "rnn_sigmoid": _sigmoid,
}


def _activation_delta(cell, y, dh):
    """dh times d act / d pre-activation, written in terms of the output y.
    ReLU selects rather than multiplies, as the C kernels and PyTorch do: a
    unit that is off passes no gradient, not even a NaN or inf one."""
    if cell == "rnn_tanh":
        return dh * (1 - y * y)
    if cell == "rnn_relu":
        return np.where(y > 0, dh, 0).astype(y.dtype, copy=False)
    return dh * (y * (1 - y))


def cell_step(cell, xp_t, h, c, w_hh, b_hh):
    """One step of the recurrence from the projected input ``xp_t = x_t W_ih^T + b_ih``.

    ``cell``: a name or a Cell (the leaky cell's rate is its
    hyperparameter; a name runs the default). Returns ``(h, c, ws_t)``: the
    new state (``c`` None except for LSTM, whose ``h`` here is o tanh(c)
    before any projection, forward_proj) and what the backward needs of
    this step (LSTM ``[i, f, g, o, c]``, GRU ``[r, z, n, W_hn h + b_hn]``,
    the original GRU ``[r, z, n, r h]``, the leaky cell ``[u]``, None for
    Elman, whose output is enough).
    """
    spec = cells.get(cell)
    cell = spec.name
    H = h.shape[-1]
    if cell == "leaky":
        # u = tanh(.), h_t = (1 - a) h_(t-1) + a u; u is saved: h_t is not u_t for a < 1
        a = spec.hyperparameter("leak_rate")
        u = np.tanh(xp_t + h @ w_hh.T + b_hh)
        return (1 - a) * h + a * u, None, u
    if cell == "lstm":
        H = c.shape[-1]  # c's width: with a projection (forward_proj) h is narrower
        gates = xp_t + h @ w_hh.T + b_hh
        i = _sigmoid(gates[..., :H])
        f = _sigmoid(gates[..., H:2 * H])
        g = np.tanh(gates[..., 2 * H:3 * H])
        o = _sigmoid(gates[..., 3 * H:])
        c = f * c + i * g
        h = o * np.tanh(c)
        return h, c, np.concatenate([i, f, g, o, c], axis=-1)
    if cell == "gru":
        hp = h @ w_hh.T + b_hh
        r = _sigmoid(xp_t[..., :H] + hp[..., :H])
        z = _sigmoid(xp_t[..., H:2 * H] + hp[..., H:2 * H])
        n = np.tanh(xp_t[..., 2 * H:] + r * hp[..., 2 * H:])
        h = (1 - z) * n + z * h
        return h, None, np.concatenate([r, z, n, hp[..., 2 * H:]], axis=-1)
    if cell == "gru_original":
        # r multiplies h before W_hn, so the n block's product waits for r
        hp = h @ w_hh[:2 * H].T + b_hh[:2 * H]
        r = _sigmoid(xp_t[..., :H] + hp[..., :H])
        z = _sigmoid(xp_t[..., H:2 * H] + hp[..., H:2 * H])
        rh = r * h
        n = np.tanh(xp_t[..., 2 * H:] + (rh @ w_hh[2 * H:].T + b_hh[2 * H:]))
        h = (1 - z) * n + z * h
        return h, None, np.concatenate([r, z, n, rh], axis=-1)
    return _ACTIVATIONS[cell](xp_t + h @ w_hh.T + b_hh), None, None


def step_gate_grads(cell, w_hh, h_t, ws_t, h_prev, c_prev, dh, dc):
    """Backward through one step, given ``dh`` = dL/dh_t (all paths) and, for
    LSTM, ``dc`` = dL/dc_t arriving from step t+1.

    Returns ``(gx, gh, dh_prev, dc_prev)``: the gradients of the input-side and
    hidden-side pre-activations (the same array except for GRU, whose reset
    gate scales the hidden side of n) and the gradients passed on to h_{t-1}
    (and c_{t-1}). Leading dimensions broadcast, so a stack of deltas (the
    per-output-depth trainer's ages) runs through in one call. The weight
    gradients from them: ``hidden_weight_grads``. ``cell``: a name or a Cell.
    """
    spec = cells.get(cell)
    cell = spec.name
    H = h_t.shape[-1]
    if cell == "leaky":
        # G = a dh (1 - u^2); h_(t-1) reaches h_t directly ((1 - a)) and through W_hh
        a = spec.hyperparameter("leak_rate")
        u = ws_t[..., :H]
        gx = a * dh * (1 - u * u)
        return gx, gx, (1 - a) * dh + gx @ w_hh, None
    if cell == "lstm":
        i, f, g, o, c = (ws_t[..., k * H:(k + 1) * H] for k in range(5))
        tc = np.tanh(c)
        dc = dc + dh * o * (1 - tc * tc)
        gx = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                             dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=-1)
        return gx, gx, gx @ w_hh, dc * f
    if cell == "gru":
        r, z, n, hn = (ws_t[..., k * H:(k + 1) * H] for k in range(4))
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (h_prev - n) * z * (1 - z)
        dr = dn * hn * r * (1 - r)
        gx = np.concatenate([dr, dz, dn], axis=-1)
        gh = np.concatenate([dr, dz, dn * r], axis=-1)
        return gx, gh, dh * z + gh @ w_hh, None
    if cell == "gru_original":
        # n = tanh(W_in x + b_in + W_hn (r h) + b_hn): the delta into r h is
        # dn W_hn, and it reaches h_{t-1} through r and r through h_{t-1}
        r, z, n = (ws_t[..., k * H:(k + 1) * H] for k in range(3))
        dn = dh * (1 - z) * (1 - n * n)
        dz = dh * (h_prev - n) * z * (1 - z)
        drh = dn @ w_hh[2 * H:]
        dr = drh * h_prev * r * (1 - r)
        gx = np.concatenate([dr, dz, dn], axis=-1)
        dh_prev = dh * z + drh * r + gx[..., :2 * H] @ w_hh[:2 * H]
        return gx, gx, dh_prev, None
    gx = _activation_delta(cell, h_t, dh)
    return gx, gx, gx @ w_hh, None


def hidden_weight_grads(cell, gh, h_prev, ws):
    """``(dW_hh, db_hh)`` from the hidden-side gate gradients ``gh`` [N, GH],
    the states ``h_prev`` [N, H] the products read and the workspace rows
    ``ws`` [N, W] (None for the Elman cells): ``gh^T h_prev`` and the column
    sums of gh, except where a gate's product reads something else - the
    original GRU's W_hn multiplies ``r h_{t-1}``, its workspace's rh block:
    dW_hn = dn^T (r h)."""
    dw_hh = gh.T @ h_prev
    if cells.get(cell).name == "gru_original":
        H = h_prev.shape[-1]
        dw_hh[2 * H:] = gh[:, 2 * H:].T @ ws[:, 3 * H:4 * H]
    return dw_hh, gh.sum(axis=0)


def forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws, lengths=None):
    if lengths is not None and int(lengths.min()) < x.shape[0]:
        return _forward_lengths(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws,
                                lengths)
    spec = cells.get(cell)
    xp = x @ w_ih.T + b_ih  # input projection for every step at once: [T, B, GH]
    h, c = h0, c0
    for t in range(x.shape[0]):
        h, c, ws_t = cell_step(cell, xp[t], h, c, w_hh, b_hh)
        out[t] = h
        if ws is not None and ws_t is not None:
            ws[t] = ws_t
    hn[...] = h
    if spec.has_cell_state:
        cn[...] = c


def backward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
             dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths=None):
    if lengths is not None and int(lengths.min()) < x.shape[0]:
        return _backward_lengths(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, ws, d_out, d_hn,
                                 d_cn, dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths)
    spec = cells.get(cell)
    T, H = x.shape[0], h0.shape[1]
    h_prev = np.concatenate([h0[None], out[:-1]], axis=0)  # h_{t-1} for every t
    if spec.has_cell_state:  # c_{t-1} for every t: c0, then the workspace's c blocks
        at = spec.workspace_names.index("c") * H
        c_prev = np.concatenate([c0[None], ws[:-1, :, at:at + H]], axis=0)
    else:
        c_prev = [None] * T
    gx = np.empty((T,) + h0.shape[:1] + (w_ih.shape[0],), dtype=x.dtype)
    gh = np.empty_like(gx) if spec.separate_hidden_grad else gx
    dh_next = d_hn.copy()
    dc = d_cn.copy() if spec.has_cell_state else None
    for t in range(T - 1, -1, -1):
        ws_t = None if ws is None or ws.shape[2] == 0 else ws[t]
        gx[t], gh[t], dh_next, dc = step_gate_grads(cell, w_hh, out[t], ws_t, h_prev[t], c_prev[t],
                                                    d_out[t] + dh_next, dc)
    dh0[...] = dh_next
    if spec.has_cell_state:
        dc0[...] = dc

    gx2 = gx.reshape(-1, gx.shape[2])
    gh2 = gh.reshape(-1, gh.shape[2])
    dx[...] = (gx2 @ w_ih).reshape(dx.shape)
    dw_ih[...] = gx2.T @ x.reshape(-1, x.shape[2])
    db_ih[...] = gx2.sum(axis=0)
    rows = gh2.shape[0]  # T * B (an Elman ws is (T, B, 0): no -1 in its reshape)
    dw_hh[...], db_hh[...] = hidden_weight_grads(
        cell, gh2, h_prev.reshape(rows, H), None if ws is None else ws.reshape(rows, ws.shape[2]))


# -- the LSTM with a projection (the "projection" feature) --

def forward_proj(cell, x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, out, hn, cn, ws):
    """torch.nn.LSTM(proj_size=P): the LSTM's step reads h_{t-1} (B, P)
    through w_hh (4H, P) and gives m_t = o tanh(c_t) (B, H); the new state
    is h_t = m_t W_hr^T (B, P). The workspace is the LSTM's [i f g o c]."""
    xp = x @ w_ih.T + b_ih
    h, c = h0, c0
    for t in range(x.shape[0]):
        m, c, ws_t = cell_step(cell, xp[t], h, c, w_hh, b_hh)
        h = m @ w_hr.T
        out[t] = h
        if ws is not None:
            ws[t] = ws_t
    hn[...] = h
    cn[...] = c


def backward_proj(cell, x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn,
                  dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0):
    """BPTT of forward_proj: with D_t = dL/dh_t (all paths), dL/dm_t = D_t
    W_hr enters the LSTM's step as its dh; dW_hr = sum_t D_t^T m_t, m_t =
    o tanh(c_t) recomputed from the workspace."""
    T, H = x.shape[0], w_hr.shape[1]
    h_prev = np.concatenate([h0[None], out[:-1]], axis=0)
    c_prev = np.concatenate([c0[None], ws[:-1, :, 4 * H:5 * H]], axis=0)
    gx = np.empty((T,) + h0.shape[:1] + (w_ih.shape[0],), dtype=x.dtype)
    d_h = np.empty_like(out)  # D_t
    dh_next, dc = d_hn.copy(), d_cn.copy()
    for t in range(T - 1, -1, -1):
        d_h[t] = d_out[t] + dh_next
        d_m = d_h[t] @ w_hr
        # the LSTM's step reads only the width of its h_t argument: m_t's, H
        gx[t], _, dh_next, dc = step_gate_grads(cell, w_hh, d_m, ws[t], h_prev[t], c_prev[t],
                                                d_m, dc)
    dh0[...] = dh_next
    dc0[...] = dc
    m = ws[..., 3 * H:4 * H] * np.tanh(ws[..., 4 * H:5 * H])
    dw_hr[...] = d_h.reshape(-1, d_h.shape[2]).T @ m.reshape(-1, H)
    gx2 = gx.reshape(-1, gx.shape[2])
    dx[...] = (gx2 @ w_ih).reshape(dx.shape)
    dw_ih[...] = gx2.T @ x.reshape(-1, x.shape[2])
    db_ih[...] = gx2.sum(axis=0)
    dw_hh[...] = gx2.T @ h_prev.reshape(-1, h_prev.shape[2])
    db_hh[...] = db_ih


# -- per-row lengths: the packed path --

def _schedule(lengths, T):
    """``(order, active)``: the rows by length, longest first (a stable sort,
    so equal lengths keep their order, as torch's enforce_sorted=False does),
    and active[t] = how many rows are still running at step t (length > t),
    nonincreasing, so step t works on ``order[:active[t]]``."""
    order = np.argsort(-lengths, kind="stable")
    ended_by = np.cumsum(np.bincount(lengths, minlength=T + 1))  # rows with length <= t
    active = lengths.shape[0] - ended_by[:T]
    return order, active


def _packed_rows(order, active):
    """Per step t, the (time, row) pairs of the valid entries, concatenated in
    step order: the index arrays that gather a packed (N_valid, ...) array out
    of a (T, B, ...) one. One gather then serves every step's matrix product,
    and the work is proportional to the valid steps, not to T x B."""
    steps = [t for t in range(active.shape[0]) if active[t] > 0]
    if not steps:  # every row has length 0
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(1, np.intp), 0
    time_index = np.concatenate([np.full(active[t], t, np.intp) for t in steps])
    row_index = np.concatenate([order[:active[t]] for t in steps])
    offsets = np.concatenate([[0], np.cumsum(active)])
    return time_index, row_index, offsets, len(steps)


def _forward_lengths(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws, lengths):
    spec = cells.get(cell)
    T = x.shape[0]
    order, active = _schedule(lengths, T)
    time_index, row_index, offsets, steps = _packed_rows(order, active)
    xp = x[time_index, row_index] @ w_ih.T + b_ih  # packed input projection [N_valid, GH]
    h = h0[order]  # the state in length order: rows that ended keep their final state
    c = c0[order] if spec.has_cell_state else None
    out.fill(0)  # outputs past a row's length are the constant 0
    if ws is not None:
        ws.fill(0)  # unspecified there, but finite
    for t in range(steps):
        a = int(active[t])
        rows = order[:a]
        h_t, c_t, ws_t = cell_step(cell, xp[offsets[t]:offsets[t] + a], h[:a],
                                   None if c is None else c[:a], w_hh, b_hh)
        h[:a] = h_t
        if c is not None:
            c[:a] = c_t
        out[t, rows] = h_t
        if ws is not None and ws_t is not None:
            ws[t, rows] = ws_t
    hn[order] = h
    if spec.has_cell_state:
        cn[order] = c


def _backward_lengths(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
                      dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths):
    spec = cells.get(cell)
    T, H = x.shape[0], h0.shape[1]
    order, active = _schedule(lengths, T)
    time_index, row_index, offsets, steps = _packed_rows(order, active)
    at = spec.workspace_names.index("c") * H if spec.has_cell_state else 0
    N = time_index.shape[0]
    gx = np.empty((N, w_ih.shape[0]), dtype=x.dtype)
    gh = np.empty_like(gx) if spec.separate_hidden_grad else gx
    h_prev_packed = np.empty((N, H), dtype=x.dtype)
    # dL/dh (and dL/dc) in length order: d_h_n enters each row at its last
    # valid step, and a row of length 0 is never touched, so it reaches dh0
    dh = d_hn[order]
    dc = d_cn[order] if spec.has_cell_state else None
    for t in range(steps - 1, -1, -1):
        a = int(active[t])
        rows = order[:a]
        h_prev = h0[rows] if t == 0 else out[t - 1, rows]
        c_prev = None
        if spec.has_cell_state:
            c_prev = c0[rows] if t == 0 else ws[t - 1, rows, at:at + H]
        ws_t = None if ws is None or ws.shape[2] == 0 else ws[t, rows]
        block = slice(offsets[t], offsets[t] + a)
        gx[block], gh[block], dh_prev, dc_prev = step_gate_grads(
            cell, w_hh, out[t, rows], ws_t, h_prev, c_prev, d_out[t, rows] + dh[:a],
            None if dc is None else dc[:a])
        h_prev_packed[block] = h_prev
        dh[:a] = dh_prev
        if dc is not None:
            dc[:a] = dc_prev
    dh0[order] = dh
    if spec.has_cell_state:
        dc0[order] = dc

    dx.fill(0)  # the inputs past a row's length do not reach any result
    dx[time_index, row_index] = gx @ w_ih
    dw_ih[...] = gx.T @ x[time_index, row_index]
    db_ih[...] = gx.sum(axis=0)
    dw_hh[...], db_hh[...] = hidden_weight_grads(
        cell, gh, h_prev_packed, None if ws is None else ws[time_index, row_index])


def step(cell, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out, c_out):
    out = np.empty((1,) + h.shape, dtype=h.dtype)
    hn = np.empty_like(h)
    cn = np.empty_like(h) if c_out is not None else None
    forward(cell, x[None], w_ih, w_hh, b_ih, b_hh, h, c, out, hn, cn, None)
    h_out[...] = hn
    if c_out is not None:
        c_out[...] = cn

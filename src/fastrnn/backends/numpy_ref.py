"""The NumPy reference backend: the contract written as plainly as possible.

This is the readable statement of the math (see docs/ARCHITECTURE.md for the
equations) and the fallback when nothing compiled is available. It favours
clarity over speed: one matrix product per step, no fusion, no scratch reuse.
It is not a training framework - only the backend contract.
"""
from __future__ import annotations

import numpy as np


def _sigmoid(v):
    # exp(-v) overflows to inf for v << 0, giving the correct limit 0.
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-v))


_ACTIVATIONS = {
    "rnn_tanh": np.tanh,
    "rnn_relu": lambda v: np.maximum(v, 0),
    "rnn_sigmoid": _sigmoid,
}


def _activation_grad(cell, y):
    """d act / d pre-activation, written in terms of the output y."""
    if cell == "rnn_tanh":
        return 1 - y * y
    if cell == "rnn_relu":
        return (y > 0).astype(y.dtype)
    return y * (1 - y)


def forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws):
    T, H = x.shape[0], h0.shape[1]
    xp = x @ w_ih.T + b_ih  # input projection for every step at once: [T, B, GH]
    h = h0
    if cell == "lstm":
        c = c0
        for t in range(T):
            gates = xp[t] + h @ w_hh.T + b_hh
            i = _sigmoid(gates[:, :H])
            f = _sigmoid(gates[:, H:2 * H])
            g = np.tanh(gates[:, 2 * H:3 * H])
            o = _sigmoid(gates[:, 3 * H:])
            c = f * c + i * g
            h = o * np.tanh(c)
            out[t] = h
            if ws is not None:
                ws[t] = np.concatenate([i, f, g, o, c], axis=1)
        cn[...] = c
    elif cell == "gru":
        for t in range(T):
            hp = h @ w_hh.T + b_hh
            r = _sigmoid(xp[t, :, :H] + hp[:, :H])
            z = _sigmoid(xp[t, :, H:2 * H] + hp[:, H:2 * H])
            n = np.tanh(xp[t, :, 2 * H:] + r * hp[:, 2 * H:])
            h = (1 - z) * n + z * h
            out[t] = h
            if ws is not None:
                ws[t] = np.concatenate([r, z, n, hp[:, 2 * H:]], axis=1)
    else:
        act = _ACTIVATIONS[cell]
        for t in range(T):
            h = act(xp[t] + h @ w_hh.T + b_hh)
            out[t] = h
    hn[...] = h


def backward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
             dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0):
    T, H = x.shape[0], h0.shape[1]
    h_prev = np.concatenate([h0[None], out[:-1]], axis=0)  # h_{t-1} for every t
    gx = np.empty((T,) + h0.shape[:1] + (w_ih.shape[0],), dtype=x.dtype)
    gh = gx if cell != "gru" else np.empty_like(gx)
    dh_next = d_hn.copy()
    if cell == "lstm":
        dc = d_cn.copy()
        c_prev = np.concatenate([c0[None], ws[:-1, :, 4 * H:]], axis=0)
        for t in range(T - 1, -1, -1):
            i, f, g, o, c = (ws[t, :, k * H:(k + 1) * H] for k in range(5))
            tc = np.tanh(c)
            dh = d_out[t] + dh_next
            dc = dc + dh * o * (1 - tc * tc)
            gx[t] = np.concatenate([dc * g * i * (1 - i), dc * c_prev[t] * f * (1 - f),
                                    dc * i * (1 - g * g), dh * tc * o * (1 - o)], axis=1)
            dc = dc * f
            dh_next = gx[t] @ w_hh
        dc0[...] = dc
    elif cell == "gru":
        for t in range(T - 1, -1, -1):
            r, z, n, hn = (ws[t, :, k * H:(k + 1) * H] for k in range(4))
            dh = d_out[t] + dh_next
            dn = dh * (1 - z) * (1 - n * n)
            dz = dh * (h_prev[t] - n) * z * (1 - z)
            dr = dn * hn * r * (1 - r)
            gx[t] = np.concatenate([dr, dz, dn], axis=1)
            gh[t] = np.concatenate([dr, dz, dn * r], axis=1)
            dh_next = dh * z + gh[t] @ w_hh
    else:
        for t in range(T - 1, -1, -1):
            gx[t] = (d_out[t] + dh_next) * _activation_grad(cell, out[t])
            dh_next = gx[t] @ w_hh
    dh0[...] = dh_next

    gx2 = gx.reshape(-1, gx.shape[2])
    gh2 = gh.reshape(-1, gh.shape[2])
    dx[...] = (gx2 @ w_ih).reshape(dx.shape)
    dw_ih[...] = gx2.T @ x.reshape(-1, x.shape[2])
    dw_hh[...] = gh2.T @ h_prev.reshape(-1, H)
    db_ih[...] = gx2.sum(axis=0)
    db_hh[...] = gh2.sum(axis=0)


def step(cell, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out, c_out):
    out = np.empty((1,) + h.shape, dtype=h.dtype)
    hn = np.empty_like(h)
    cn = np.empty_like(h) if cell == "lstm" else None
    forward(cell, x[None], w_ih, w_hh, b_ih, b_hh, h, c, out, hn, cn, None)
    h_out[...] = hn
    if cell == "lstm":
        c_out[...] = cn

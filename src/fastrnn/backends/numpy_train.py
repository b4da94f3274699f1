"""The NumPy reference sequence trainer: docs/TRAINING.md written as plainly as possible.

Same contract and same algorithm as the C trainer (csrc/layer/train.c), step for
step, so that reading this file explains that one: windows of TBPTT(k1, k2)
cut from the sequence, each projected (a column lookup for index input),
run forward from the carried state, scored by the head, differentiated back
to its start (never into the carried state), clipped and applied; per-output
depth k as one backward recurrence over k + 1 stacked "ages" of deltas. The
cell math is numpy_ref's (``cell_step``, ``step_gate_grads``), shared with
the plain forward/backward.

It is the fallback when nothing compiled is available and the readable
statement of the semantics; it is not fast (one small matrix product per
step, Python between steps) and not an autograd: the tests hold it to an
independent brute force (tests/test_training_reference.py).
"""
from __future__ import annotations

import numpy as np

from .numpy_ref import cell_step, hidden_weight_grads, step_gate_grads


def train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets=None):
    """The backend contract of fastrnn.training: see its module docstring.
    A window that overflows is reported by the finiteness check (the caller
    raises TrainingDivergedError), so NumPy's warnings would only repeat it."""
    with np.errstate(over="ignore", invalid="ignore"):
        return _train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets)


def _train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets):
    lay = config.layout
    cell, H = config.cell, config.H  # the Cell: the leaky cell's rate travels with it
    T = inputs.shape[0]
    P = lay.views(theta)  # views: every update to theta is seen by the next window
    zeros = np.zeros(lay.gates * H, theta.dtype)
    b_ih, b_hh = P.get("bias_ih", zeros), P.get("bias_hh", zeros)
    by_depth = config.depth >= 0
    k1, k2 = (T, T) if by_depth else (config.k1, config.k2)
    if config.optimizer is None:
        grad[...] = 0
    window_grad = np.zeros_like(theta)
    G = lay.views(window_grad)

    h_carry, c_carry = h.copy(), (None if c is None else c.copy())
    # where the cell state c_t sits in a step's workspace (LSTM: [i f g o c])
    c_at = None if c is None else config.cell.workspace_names.index("c") * H
    t_prev, n = 0, 0
    while t_prev < T:
        t = min(t_prev + k1, T)
        s = max(0, t - k2)
        s_next = max(0, min(t + k1, T) - k2)

        # forward over the window [s, t) from the carried state
        if config.index_input:
            xp = P["weight_ih"].T[inputs[s:t]] + b_ih  # the one-hot product, as a lookup
        else:
            xp = inputs[s:t] @ P["weight_ih"].T + b_ih
        keep = None if resets is None else ~resets[s:t]  # (L, B): False where a state resets
        out, ws, h_run, c_run, h_prev, c_prev = _forward(cell, xp, P["weight_hh"], b_hh, h_carry,
                                                         c_carry, keep)

        loss = 0.0
        if not config.many_to_one or t == T:
            first = T - 1 if config.many_to_one else t_prev  # outputs [first, t) carry the loss
            rows = targets if config.many_to_one else targets[first:t]
            loss, d_out = _head(config, P, out, first - s, rows, G)
            if by_depth:
                gx, gh = _depth_gate_grads(config, cell, P["weight_hh"], out, ws, h_prev, c_prev,
                                           d_out, keep)
            else:
                gx, gh = _window_gate_grads(cell, P["weight_hh"], out, ws, h_prev, c_prev, d_out,
                                            keep)
            _layer_weight_grads(config, cell, G, gx, gh, h_prev, ws, inputs[s:t])
            if not (np.isfinite(loss) and np.isfinite(window_grad).all()):
                losses[n] = loss  # stop before the update (TRAINING.md)
                return step, n
            _clip(config, window_grad)
            if config.optimizer is None:
                grad += window_grad
            else:
                grad[...] = window_grad
                step += 1
                _optimizer_step(config, theta, window_grad, m, v, step)
        losses[n] = loss

        # carry the state this forward reached at s_next (or at T)
        if t == T:
            h[...] = h_run
            if c is not None:
                c[...] = c_run
        elif s_next > s:
            h_carry = out[s_next - s - 1].copy()
            if c is not None:
                c_carry = ws[s_next - s - 1, :, c_at:c_at + H].copy()
        t_prev, n = t, n + 1
    return step, None


def _forward(cell, xp, w_hh, b_hh, h, c, keep):
    """Run the recurrence over a projected window; keep every output, ws and
    the state entering each step (h_prev, c_prev: a reset row's is zero,
    where keep is False - a new document)."""
    out = np.empty(xp.shape[:2] + h.shape[-1:], xp.dtype)
    ws, h_prev, c_prev = [], [], []
    for t in range(xp.shape[0]):
        if keep is not None:  # np.where, not a product: 0 * inf would be NaN
            h = np.where(keep[t][:, None], h, 0)
            c = None if c is None else np.where(keep[t][:, None], c, 0)
        h_prev.append(h)
        c_prev.append(c)
        h, c, ws_t = cell_step(cell, xp[t], h, c, w_hh, b_hh)
        out[t] = h
        ws.append(ws_t)
    return (out, (None if ws[0] is None else np.stack(ws)), h, c, np.stack(h_prev),
            None if c is None else np.stack(c_prev))


def _head(config, P, out, first, rows, G):
    """Loss of the outputs out[first:] against ``rows``; fills G's head
    gradients and returns (loss as a float, d_out for the whole window)."""
    hs = out[-1] if config.many_to_one else out[first:]
    z = hs @ P["weight_hy"].T
    if "bias_y" in P:
        z = z + P["bias_y"]
    if config.head == "softmax_ce":
        zmax = z.max(axis=-1, keepdims=True)
        e = np.exp(z - zmax)
        total = e.sum(axis=-1, keepdims=True)
        zy = np.take_along_axis(z, rows[..., None], axis=-1)
        loss = float(np.sum(np.log(total.astype(np.float64)) + zmax - zy))
        dz = e / total
        np.put_along_axis(dz, rows[..., None], np.take_along_axis(dz, rows[..., None], -1) - 1, -1)
        terms = rows.size
    elif config.head == "sigmoid_mse":  # trask's adder: l = 0.5 (y - s)^2, s = sigmoid(z)
        z64 = z.astype(np.float64)
        e = np.exp(-np.abs(z64))
        sig = np.where(z64 >= 0, 1 / (1 + e), e / (1 + e))
        loss = float(0.5 * np.sum((rows - sig) ** 2))
        # dl/dz = (s - y) s (1 - s), and s (1 - s) = e / (1 + e)^2: 1 - s from a
        # rounded s would lose every digit where the sigmoid saturates
        dz = ((sig - rows) * (e / ((1 + e) * (1 + e)))).astype(z.dtype)
        terms = rows.size
    elif config.head == "sigmoid_bce":
        z64 = z.astype(np.float64)
        loss = float(np.sum(np.maximum(z64, 0) - z64 * rows + np.log1p(np.exp(-np.abs(z64)))))
        dz = (0.5 * (1 + np.tanh(0.5 * z64)) - rows).astype(z.dtype)  # sigmoid without overflow
        terms = rows.size
    else:
        diff = z - rows
        loss = float(np.sum(diff.astype(np.float64) ** 2))
        dz = 2 * diff
        terms = rows.size
    if config.reduce_mean:
        loss /= terms
        dz = dz / z.dtype.type(terms)
    O, H = P["weight_hy"].shape
    G["weight_hy"][...] = dz.reshape(-1, O).T @ hs.reshape(-1, H)
    if "bias_y" in G:
        G["bias_y"][...] = dz.reshape(-1, O).sum(axis=0)
    d_out = np.zeros_like(out)
    if config.many_to_one:
        d_out[-1] = dz @ P["weight_hy"]
    else:
        d_out[first:] = dz @ P["weight_hy"]
    return loss, d_out


def _window_gate_grads(cell, w_hh, out, ws, h_prev, c_prev, d_out, keep):
    """Backward through the whole window; the carried state gets no gradient,
    nor does a reset row's zero state."""
    gx, gh = [None] * len(out), [None] * len(out)
    dh_next = np.zeros_like(out[0])
    dc = None if c_prev is None else np.zeros_like(out[0])
    for t in range(len(out) - 1, -1, -1):
        gx[t], gh[t], dh_next, dc = step_gate_grads(
            cell, w_hh, out[t], None if ws is None else ws[t], h_prev[t],
            None if c_prev is None else c_prev[t], d_out[t] + dh_next, dc)
        if keep is not None:
            dh_next = np.where(keep[t][:, None], dh_next, 0)
            dc = None if dc is None else np.where(keep[t][:, None], dc, 0)
    return np.stack(gx), np.stack(gh)


def _depth_gate_grads(config, cell, w_hh, out, ws, h_prev, c_prev, d_out, keep):
    """Per-output depth K: the loss at step t reaches steps t .. t-K only.

    ``dh[a]`` is the delta that entered K+1 steps' worth of history a steps
    ago ("age" a): at each step age 0 takes d_out[t], age a the age a-1 delta
    propagated from step t+1, and what age K would propagate is dropped. All
    ages run through one step_gate_grads call (a leading axis), and their gate
    gradients sum. No age propagates past a reset row's zero state.
    """
    A = config.depth + 1
    dh_prop = np.zeros((A,) + out.shape[1:], out.dtype)
    dc_prop = None if c_prev is None else np.zeros_like(dh_prop)
    gx, gh = [None] * len(out), [None] * len(out)
    for t in range(len(out) - 1, -1, -1):
        dh = np.concatenate([d_out[t][None], dh_prop[:-1]])
        dc = None if dc_prop is None else np.concatenate([np.zeros_like(d_out[t])[None], dc_prop[:-1]])
        gx_a, gh_a, dh_prop, dc_prop = step_gate_grads(
            cell, w_hh, out[t], None if ws is None else ws[t], h_prev[t],
            None if c_prev is None else c_prev[t], dh, dc)
        if keep is not None:
            dh_prop = np.where(keep[t][None, :, None], dh_prop, 0)
            dc_prop = None if dc_prop is None else np.where(keep[t][None, :, None], dc_prop, 0)
        gx[t], gh[t] = gx_a.sum(axis=0), gh_a.sum(axis=0)
    return np.stack(gx), np.stack(gh)


def _layer_weight_grads(config, cell, G, gx, gh, h_prev, ws, x):
    GH = gx.shape[-1]
    gx2, gh2 = gx.reshape(-1, GH), gh.reshape(-1, GH)
    if config.index_input:  # the transpose of the lookup: scatter-add into columns
        G["weight_ih"][...] = 0
        np.add.at(G["weight_ih"].T, x.reshape(-1), gx2)
    else:
        G["weight_ih"][...] = gx2.T @ x.reshape(-1, x.shape[-1])
    ws2 = None if ws is None else ws.reshape(gh2.shape[0], ws.shape[-1])
    G["weight_hh"][...], db_hh = hidden_weight_grads(
        cell, gh2, h_prev.reshape(-1, h_prev.shape[-1]), ws2)
    if "bias_ih" in G:
        G["bias_ih"][...] = gx2.sum(axis=0)
    if "bias_hh" in G:
        G["bias_hh"][...] = db_hh


def _clip(config, g):
    if config.clip == "value":
        np.clip(g, -config.clip_value, config.clip_value, out=g)
    elif config.clip == "norm":
        norm = np.sqrt(np.sum(g.astype(np.float64) ** 2))
        if norm > config.clip_value:
            g *= g.dtype.type(config.clip_value / (norm + 1e-6))


def _optimizer_step(opt, theta, g, m, v, step):
    """One update in place (docs/TRAINING.md's formulas; m, v the state);
    opt: the TrainerConfig (its optimizer and hyperparameters)."""
    real = theta.dtype.type
    lr = real(opt.lr)
    if opt.optimizer == "sgd":
        if opt.momentum:
            m *= real(opt.momentum)
            m += g
            theta -= lr * (g + real(opt.momentum) * m if opt.nesterov else m)
        else:
            theta -= lr * g
    elif opt.optimizer == "adagrad":
        m += g * g
        theta -= lr * g / np.sqrt(m + real(opt.eps))
    elif opt.optimizer == "rmsprop":
        v *= real(opt.alpha)
        v += real(1 - opt.alpha) * g * g
        theta -= lr * g / (np.sqrt(v) + real(opt.eps))
    else:
        m *= real(opt.beta1)
        m += real(1 - opt.beta1) * g
        v *= real(opt.beta2)
        v += real(1 - opt.beta2) * g * g
        m_hat = m / real(1 - opt.beta1 ** step)
        v_hat = v / real(1 - opt.beta2 ** step)
        theta -= lr * m_hat / (np.sqrt(v_hat) + real(opt.eps))

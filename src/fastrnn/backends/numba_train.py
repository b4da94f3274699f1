"""The Numba sequence trainer: csrc/layer/train.c's window loop, compiled by Numba.

Same contract (fastrnn.training's module docstring) and same algorithm as the
C trainer, step for step: the sequence is cut into the windows of
TBPTT(k1, k2) (docs/TRAINING.md); each window is projected (for index input a
column lookup ``W_ih[:, idx] + b_ih``, never a one-hot product), run forward
from the carried state with the current parameters, scored by the fused head
(logits, loss, dz, dW_hy, db_y, d_out), differentiated back to its first step
(never into the carried state), turned into weight gradients (index input: a
scatter-add into the looked-up columns), clipped, and applied by the
optimizer (or summed into ``grad`` when there is none); then the state the
window reached at the next window's start is carried. Per-output depth k
runs the whole sequence as one window and stacks the deltas of ages 0..k as
(k+1)*B rows of one backward recurrence. The whole run, every window, is one
call into compiled code; the Python ``train`` only turns the spec into codes.

The working memory is bounded by the window (k2 steps), not by T, as in the C
trainer; per-output depth keeps the whole sequence like full BPTT. Arithmetic
is in the parameters' dtype (float32 stays float32), loss sums and the
clipping norm in float64, like train.c and optim.c. The matrix products and
the forward gate math are numba_loops' njit helpers (explicit loops: no
np.dot, which would need SciPy); the backward gate math is the body of
numba_loops' backward loop, made a function of its own here so that one call
can run the B rows of a window step or the (k+1)*B stacked rows of the ages.

What it deliberately is not: not parallel, not fastmath, not bit-identical
to the C trainer (libm activations, different product blocking: the two agree
to rounding), no argument checking (fastrnn.training does that once for every
backend), and not usable without the ``numba`` package - importing this
module then raises ImportError and fastrnn.training falls back.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from ..training import CLIP_CODES, HEAD_CODES, OPTIMIZER_CODES
from .numba_loops import (_GRU, _GRU_ORIGINAL, _LEAKY, _LSTM, _RNN_RELU, _RNN_TANH,
                          _activate_rows, _column_sums, _copy2, _gemm_nn, _gemm_tn, _gru_gates,
                          _gru_original_gates, _leak, _leaky_gates, _lstm_gates,
                          _reset_input_grads, _set_rows,
                          _step_gate_grads, _transpose, _zero2)

# The codes the kernels branch on (Numba folds module-level ints as constants).
_SOFTMAX_CE, _SIGMOID_BCE, _MSE, _SIGMOID_MSE = (
    HEAD_CODES[k] for k in ("softmax_ce", "sigmoid_bce", "mse", "sigmoid_mse"))
_CLIP_VALUE, _CLIP_NORM = CLIP_CODES["value"], CLIP_CODES["norm"]
_OPT_NONE, _OPT_SGD, _OPT_ADAGRAD, _OPT_RMSPROP, _OPT_ADAM = (
    OPTIMIZER_CODES[k] for k in (None, "sgd", "adagrad", "rmsprop", "adam"))

_njit = numba.njit(cache=True, nogil=True)
# Helpers are only called from the kernel: no Python / C entry points to build.
_helper = numba.njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

@_helper
def _in_dtype(cast_buf, value):
    """``value`` (float64) rounded to the working dtype, like C's ``(real)``
    cast: storing into a one-element array of that dtype is the generic cast."""
    cast_buf[0] = value
    return cast_buf[0]


@_helper
def _split(flat, GH, In, H, O, has_bias, has_bias_hh, has_head_bias):
    """Views of the flat parameter layout (TRAINING.md); absent biases are
    empty views so that every return has one type."""
    a = GH * In
    b = a + GH * H
    w_ih = flat[:a].reshape((GH, In))
    w_hh = flat[a:b].reshape((GH, H))
    if has_bias:
        b_ih = flat[b:b + GH]
        b += GH
    else:
        b_ih = flat[b:b]
    if has_bias and has_bias_hh:
        b_hh = flat[b:b + GH]
        b += GH
    else:
        b_hh = flat[b:b]
    w_hy = flat[b:b + O * H].reshape((O, H))
    b += O * H
    b_y = flat[b:b + O] if has_head_bias else flat[b:b]
    return w_ih, w_hh, b_ih, b_hh, w_hy, b_y


# --------------------------------------------------------------------------
# Forward over one window (numba_loops._forward_kernel's step loop, with the
# window's inputs already projected)
# --------------------------------------------------------------------------

@_helper
def _project_window(index_input, s, L, B, x2, idx_flat, w_ih, w_ih_t, b_ih, xp):
    """xp[:L*B] = projected inputs of steps [s, s+L); the weights change after
    every update, so each window projects afresh."""
    rows = L * B
    xpw = xp[:rows]
    GH = w_ih.shape[0]
    if index_input:
        for r in range(rows):
            col = idx_flat[s * B + r]
            row = xpw[r]
            for gi in range(GH):
                row[gi] = b_ih[gi] + w_ih[gi, col]
    else:
        _transpose(w_ih, w_ih_t)
        _set_rows(b_ih, xpw)
        _gemm_nn(x2[s * B:(s + L) * B], w_ih_t, xpw)


@_helper
def _zero_reset_rows(resets_t, state):
    """Zero the rows b of state [R, H] (R a multiple of B: stacked ages) whose
    state resets before this step (resets_t [B])."""
    B = resets_t.shape[0]
    for r in range(state.shape[0]):
        if resets_t[r % B]:
            for j in range(state.shape[1]):
                state[r, j] = 0


@_helper
def _forward_window(kind, L, xp, w_hh_t, b_hh, h_start, c_run, out, ws, gates, rh, resets,
                    h_prev_buf, leak, one):
    """out[:L], ws[:L] of the window from h_start (c_run: c at the start,
    updated in place to c at its end). With resets (the window's [L, B]
    rows; empty: none) the state entering step t is copied to h_prev_buf[t]
    with its reset rows zeroed, and c_run's rows zeroed in place."""
    B = h_start.shape[0]
    has_resets = resets.shape[0] > 0
    for t in range(L):
        h_prev = h_start if t == 0 else out[t - 1]
        if has_resets:
            _copy2(h_prev, h_prev_buf[t])
            _zero_reset_rows(resets[t], h_prev_buf[t])
            if kind == _LSTM:
                _zero_reset_rows(resets[t], c_run)
            h_prev = h_prev_buf[t]
        xpt = xp[t * B:(t + 1) * B]
        if kind == _LSTM:
            _copy2(xpt, gates)
            _gemm_nn(h_prev, w_hh_t, gates)
            _lstm_gates(gates, b_hh, c_run, out[t], ws[t], one)
        elif kind == _GRU:
            _zero2(gates)
            _gemm_nn(h_prev, w_hh_t, gates)
            _gru_gates(xpt, gates, b_hh, h_prev, out[t], ws[t], one)
        elif kind == _GRU_ORIGINAL:
            _gru_original_gates(xpt, h_prev, w_hh_t, b_hh, out[t], ws[t], gates, rh, one)
        elif kind == _LEAKY:
            u = ws[t]  # tanh's output, which the backward reads
            _copy2(xpt, u)
            _gemm_nn(h_prev, w_hh_t, u)
            _leaky_gates(h_prev, u, b_hh, out[t], leak, one)
        else:
            h = out[t]
            _copy2(xpt, h)
            _gemm_nn(h_prev, w_hh_t, h)
            _activate_rows(kind, b_hh, h, one)


# --------------------------------------------------------------------------
# Head: logits, loss, dz (train.c head_loss / head_step)
# --------------------------------------------------------------------------

@_helper
def _head_loss(head, z_dz, target_idx, target, target_off, scale, cast_buf, one):
    """Loss terms of the rows of z_dz [rows, O] (summed in float64, unscaled),
    z_dz overwritten with dl/dz * scale. Targets start at target_off (rows for
    softmax_ce, elements otherwise)."""
    rows, O = z_dz.shape
    two = one + one
    loss = 0.0
    for r in range(rows):
        z = z_dz[r]
        if head == _SOFTMAX_CE:
            zmax = z[0]
            for o in range(1, O):
                if z[o] > zmax:
                    zmax = z[o]
            y = target_idx[target_off + r]
            zy = z[y] - zmax
            total = 0.0
            for o in range(O):
                e = math.exp(z[o] - zmax)  # in the working dtype, like exp_nonpositive
                z[o] = e
                total += e
            loss += math.log(total) - zy
            inv = _in_dtype(cast_buf, 1.0 / total) * scale
            for o in range(O):
                z[o] = z[o] * inv
            z[y] = z[y] - scale
        elif head == _SIGMOID_BCE:
            base = target_off + r * O
            for o in range(O):
                zz = np.float64(z[o])
                yy = np.float64(target[base + o])
                loss += max(zz, 0.0) - zz * yy + math.log1p(math.exp(-abs(zz)))
                if zz >= 0:
                    sig = 1.0 / (1.0 + math.exp(-zz))
                else:
                    ez = math.exp(zz)
                    sig = ez / (1.0 + ez)
                z[o] = sig - yy  # rounded to the dtype here, then scaled in it
                z[o] = z[o] * scale
        elif head == _SIGMOID_MSE:  # l = 0.5 (y - s)^2, dl/dz = (s - y) s (1 - s)
            base = target_off + r * O
            for o in range(O):
                zz = np.float64(z[o])
                yy = np.float64(target[base + o])
                e = math.exp(-abs(zz))  # s (1 - s) = e / (1 + e)^2, no cancellation
                sig = 1.0 / (1.0 + e) if zz >= 0 else e / (1.0 + e)
                loss += 0.5 * (yy - sig) * (yy - sig)
                z[o] = (sig - yy) * (e / ((1.0 + e) * (1.0 + e)))  # rounded to the dtype
                z[o] = z[o] * scale
        else:  # _MSE
            base = target_off + r * O
            for o in range(O):
                d = z[o] - target[base + o]
                loss += np.float64(d) * np.float64(d)
                z[o] = two * d * scale
    return loss


@_helper
def _head_step(head, reduce_mean, many_to_one, s, L, first, last, target_idx, target,
               w_hy, w_hy_t, b_y, out, z_dz, g_w_hy, g_b_y, d_out, cast_buf, one):
    """Head over the outputs of steps [first, last) of the window that starts
    at s and has L steps: fills g_w_hy, g_b_y and d_out[:L] (zero outside the
    loss steps). Returns the reduced loss (float64)."""
    B, H = out.shape[1], out.shape[2]
    O = w_hy.shape[0]
    rows = (last - first) * B
    h_rows = out[first - s:last - s].reshape((rows, H))
    terms = rows if head == _SOFTMAX_CE else rows * O
    scale = one / _in_dtype(cast_buf, terms) if reduce_mean else one
    z = z_dz[:rows]
    if b_y.shape[0] > 0:
        _set_rows(b_y, z)
    else:
        _zero2(z)
    _transpose(w_hy, w_hy_t)
    _gemm_nn(h_rows, w_hy_t, z)
    if many_to_one:
        target_off = 0
    elif head == _SOFTMAX_CE:
        target_off = first * B
    else:
        target_off = first * B * O
    loss = _head_loss(head, z, target_idx, target, target_off, scale, cast_buf, one)
    if reduce_mean:
        loss /= terms
    _zero2(g_w_hy)
    _gemm_tn(z, h_rows, g_w_hy)
    if g_b_y.shape[0] > 0:
        _column_sums(z, g_b_y)
    _zero2(d_out[:L].reshape((L * B, H)))
    _gemm_nn(z, w_hy, d_out[first - s:last - s].reshape((rows, H)))
    return loss


# --------------------------------------------------------------------------
# Backward through a window (numba_loops._step_gate_grads per step; rows
# possibly stacked ages of the same batch)
# --------------------------------------------------------------------------

@_helper
def _c_prev_with_resets(t, c_start, ws, resets_t, c_buf):
    """c_{t-1} (the carried c at the window's start, else ws[t-1]'s c_t slot)
    into c_buf [B, H] with its reset rows zeroed."""
    B, H = c_buf.shape
    for b in range(B):
        for j in range(H):
            c_buf[b, j] = c_start[b, j] if t == 0 else ws[t - 1, b, 4 * H + j]
    _zero_reset_rows(resets_t, c_buf)


@_helper
def _window_gate_grads(kind, L, w_hh, h_start, c_start, out, ws, d_out, dh, dc, Gx, Gh,
                       resets, h_prev_buf, c_buf, leak, one):
    """Backward through the window's L steps; the carried start state gets
    no gradient (it is detached), nor does a reset row's zero state."""
    H = h_start.shape[1]
    has_resets = resets.shape[0] > 0
    _zero2(dh)
    _zero2(dc)
    for t in range(L - 1, -1, -1):
        dy = d_out[t]
        for b in range(dh.shape[0]):
            for j in range(H):
                dh[b, j] += dy[b, j]
        h_prev = h_start if t == 0 else out[t - 1]
        # c_{t-1}: the carried c at the window's start, else ws's c_t slot
        c_prev = c_start if t == 0 else ws[t - 1]
        c_off = 0 if t == 0 else 4 * H
        if has_resets:
            h_prev = h_prev_buf[t]
            if kind == _LSTM:
                _c_prev_with_resets(t, c_start, ws, resets[t], c_buf)
                c_prev = c_buf
                c_off = 0
        _step_gate_grads(kind, w_hh, out[t], ws[t], h_prev, c_prev, c_off, dh, dc, Gx[t], Gh[t],
                         0 if t == 0 else dh.shape[0], leak, one)
        if has_resets:
            _zero_reset_rows(resets[t], dh)
            _zero_reset_rows(resets[t], dc)


@_helper
def _depth_gate_grads(kind, T, w_hh, h_start, c_start, out, ws, d_out, age_dh, age_dc,
                      age_gx, age_gh, Gx, Gh, resets, h_prev_buf, c_buf, leak, one):
    """Per-output depth K (train.c depth_backward): the loss at step t reaches
    steps t .. t-K only. Rows a*B .. (a+1)*B of the age arrays hold the delta
    that left an output a steps ago: at each step age 0 takes d_out[t], age a
    the age a-1 delta propagated from step t+1, and age K's propagation is
    dropped. The gate gradients of all ages sum into Gx[t] (Gh[t])."""
    R, H = age_dh.shape
    B = h_start.shape[0]
    A = R // B
    GH = Gx.shape[2]
    _zero2(age_dh)
    _zero2(age_dc)
    for t in range(T - 1, -1, -1):
        for r in range(R - 1, B - 1, -1):  # oldest first: each age moves up one
            for j in range(H):
                age_dh[r, j] = age_dh[r - B, j]
                age_dc[r, j] = age_dc[r - B, j]
        dy = d_out[t]
        for b in range(B):
            for j in range(H):
                age_dh[b, j] = dy[b, j]
                age_dc[b, j] = 0
        h_prev = h_start if t == 0 else out[t - 1]
        c_prev = c_start if t == 0 else ws[t - 1]
        c_off = 0 if t == 0 else 4 * H
        if resets.shape[0] > 0:
            h_prev = h_prev_buf[t]
            if kind == _LSTM:
                _c_prev_with_resets(t, c_start, ws, resets[t], c_buf)
                c_prev = c_buf
                c_off = 0
        _step_gate_grads(kind, w_hh, out[t], ws[t], h_prev, c_prev, c_off, age_dh, age_dc,
                         age_gx, age_gh, 0 if t == 0 else (A - 1) * B, leak, one)
        if resets.shape[0] > 0:  # no age reaches past a reset row's zero state
            _zero_reset_rows(resets[t], age_dh)
            _zero_reset_rows(resets[t], age_dc)
        gxt = Gx[t]
        ght = Gh[t]
        for b in range(B):
            for gi in range(GH):
                gxt[b, gi] = age_gx[b, gi]
                if kind == _GRU:
                    ght[b, gi] = age_gh[b, gi]
        for a in range(1, A):
            for b in range(B):
                gxa = age_gx[a * B + b]
                for gi in range(GH):
                    gxt[b, gi] += gxa[gi]
                if kind == _GRU:
                    gha = age_gh[a * B + b]
                    for gi in range(GH):
                        ght[b, gi] += gha[gi]


@_helper
def _layer_weight_grads(kind, index_input, s, L, x2, idx_flat, h_start, out, ws, Gx, Gh,
                        g_w_ih, g_w_hh, g_b_ih, g_b_hh, separate_gh, has_resets, h_prev_buf):
    """The layer's weight gradients of the window [s, s+L) from its gate
    gradients and the state it started from."""
    B, H = h_start.shape
    GH = Gx.shape[2]
    Gx2 = Gx[:L].reshape((L * B, GH))
    Gh2 = Gh[:L].reshape((L * B, GH))
    _zero2(g_w_ih)
    if index_input:  # the transpose of the lookup: scatter-add into columns
        for r in range(L * B):
            col = idx_flat[s * B + r]
            gr = Gx2[r]
            for gi in range(GH):
                g_w_ih[gi, col] += gr[gi]
    else:
        _gemm_tn(Gx2, x2[s * B:(s + L) * B], g_w_ih)
    # h_{t-1} is h_start for the first step, out[t-1] after: not one array
    _zero2(g_w_hh)
    if has_resets:  # h_{t-1} with the reset rows zeroed
        _gemm_tn(Gh2, h_prev_buf[:L].reshape((L * B, H)), g_w_hh)
    else:
        _gemm_tn(Gh2[:B], h_start, g_w_hh)
        if L > 1:
            _gemm_tn(Gh2[B:], out[:L - 1].reshape(((L - 1) * B, H)), g_w_hh)
    if kind == _GRU_ORIGINAL:  # W_hn multiplies r h, the workspace's rh block
        _reset_input_grads(Gx2, ws[:L].reshape((L * B, ws.shape[2])), g_w_hh)
    if g_b_ih.shape[0] > 0:
        _column_sums(Gx2, g_b_ih)
    if g_b_hh.shape[0] > 0:  # absent with one bias (Layout(bias="ih"))
        if separate_gh:
            _column_sums(Gh2, g_b_hh)
        else:
            for gi in range(GH):
                g_b_hh[gi] = g_b_ih[gi]


# --------------------------------------------------------------------------
# Clipping and optimizers (optim.c)
# --------------------------------------------------------------------------

@_helper
def _sum_squares(g):
    """sum g^2 in float64, eight partial sums combined in optim.c's order."""
    n = g.shape[0]
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = 0.0
    i = 0
    while i + 8 <= n:
        l0 += np.float64(g[i]) * np.float64(g[i])
        l1 += np.float64(g[i + 1]) * np.float64(g[i + 1])
        l2 += np.float64(g[i + 2]) * np.float64(g[i + 2])
        l3 += np.float64(g[i + 3]) * np.float64(g[i + 3])
        l4 += np.float64(g[i + 4]) * np.float64(g[i + 4])
        l5 += np.float64(g[i + 5]) * np.float64(g[i + 5])
        l6 += np.float64(g[i + 6]) * np.float64(g[i + 6])
        l7 += np.float64(g[i + 7]) * np.float64(g[i + 7])
        i += 8
    tail = 0.0
    while i < n:
        tail += np.float64(g[i]) * np.float64(g[i])
        i += 1
    return ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)) + tail


@_helper
def _window_is_finite(loss, g):
    """The window's loss and every entry of its unclipped gradient are finite:
    g * 0 is NaN exactly when g is inf or NaN, so one sum tells."""
    acc = loss * 0.0
    for i in range(g.shape[0]):
        acc += g[i] * 0
    return acc == 0


@_helper
def _clip(clip_kind, clip_value, g, cast_buf):
    if clip_kind == _CLIP_VALUE:
        c = _in_dtype(cast_buf, clip_value)
        for i in range(g.shape[0]):
            v = g[i]
            g[i] = c if v > c else (-c if v < -c else v)
    elif clip_kind == _CLIP_NORM:
        norm = math.sqrt(_sum_squares(g))
        if norm > clip_value:
            factor = _in_dtype(cast_buf, clip_value / (norm + 1e-6))
            for i in range(g.shape[0]):
                g[i] = g[i] * factor


@_helper
def _optimizer_step(opt, theta, g, m, v, step, lr, momentum, nesterov, alpha, beta1, beta2,
                    eps, cast_buf, one):
    """One update of theta (TRAINING.md's formulas; ``step`` already counts
    it). Hyperparameters are in the working dtype except beta1/beta2, whose
    powers (Adam's bias corrections) are taken in float64 and then rounded."""
    n = theta.shape[0]
    zero = one - one
    if opt == _OPT_SGD:
        mu = _in_dtype(cast_buf, momentum)
        if mu == zero:
            for i in range(n):
                theta[i] -= lr * g[i]
        elif nesterov:
            for i in range(n):
                m[i] = mu * m[i] + g[i]
                theta[i] -= lr * (g[i] + mu * m[i])
        else:
            for i in range(n):
                m[i] = mu * m[i] + g[i]
                theta[i] -= lr * m[i]
    elif opt == _OPT_ADAGRAD:
        for i in range(n):
            m[i] += g[i] * g[i]
            theta[i] -= lr * g[i] / math.sqrt(m[i] + eps)
    elif opt == _OPT_RMSPROP:
        a = _in_dtype(cast_buf, alpha)
        for i in range(n):
            v[i] = a * v[i] + (one - a) * g[i] * g[i]
            theta[i] -= lr * g[i] / (math.sqrt(v[i]) + eps)
    elif opt == _OPT_ADAM:
        b1 = _in_dtype(cast_buf, beta1)
        b2 = _in_dtype(cast_buf, beta2)
        c1 = _in_dtype(cast_buf, 1.0 - math.pow(beta1, float(step)))
        c2 = _in_dtype(cast_buf, 1.0 - math.pow(beta2, float(step)))
        for i in range(n):
            m[i] = b1 * m[i] + (one - b1) * g[i]
            v[i] = b2 * v[i] + (one - b2) * g[i] * g[i]
            theta[i] -= lr * (m[i] / c1) / (math.sqrt(v[i] / c2) + eps)


# --------------------------------------------------------------------------
# The kernel: every window of the sequence (train.c frnn_train)
# --------------------------------------------------------------------------

@_njit
def _train_kernel(kind, In, O, has_bias, has_bias_hh, has_head_bias, head, index_input, many_to_one,
                  reduce_mean, k1, k2, depth, clip_kind, clip_value, opt, lr, momentum,
                  nesterov, alpha, beta1, beta2, eps,
                  theta, grad, m, v, step, x, idx, target_idx, target, resets, h, c, losses,
                  leak, one):
    B, H = h.shape
    T = idx.shape[0] if index_input else x.shape[0]
    lstm = kind == _LSTM
    gru = kind == _GRU  # a separate Gh
    three_gates = gru or kind == _GRU_ORIGINAL
    GH = 4 * H if lstm else (3 * H if three_gates else H)
    # workspace row per step: LSTM [i f g o c], the GRUs four blocks, leaky [u]
    Wd = 5 * H if lstm else (4 * H if three_gates else (H if kind == _LEAKY else 0))
    P = theta.shape[0]
    dt = theta.dtype
    by_depth = depth >= 0
    W = T if by_depth else min(k2, T)  # the longest window
    loss_rows_max = B if many_to_one else W * B
    R = (depth + 1) * B if by_depth else 0  # stacked age rows

    cast_buf = np.empty(1, dt)
    gw = np.zeros(P, dt)  # this window's gradient
    p_w_ih, p_w_hh, p_b_ih, p_b_hh, p_w_hy, p_b_y = _split(theta, GH, In, H, O, has_bias,
                                                           has_bias_hh, has_head_bias)
    g_w_ih, g_w_hh, g_b_ih, g_b_hh, g_w_hy, g_b_y = _split(gw, GH, In, H, O, has_bias,
                                                           has_bias_hh, has_head_bias)
    b_ih = p_b_ih if has_bias else np.zeros(GH, dt)
    b_hh = p_b_hh if has_bias and has_bias_hh else np.zeros(GH, dt)
    xp = np.empty((W * B, GH), dt)
    out = np.empty((W, B, H), dt)
    ws = np.empty((W, B, Wd), dt)
    Gx = np.empty((W, B, GH), dt)
    Gh = np.empty((W, B, GH), dt) if gru else Gx
    d_out = np.empty((W, B, H), dt)
    z_dz = np.empty((loss_rows_max, O), dt)
    w_hh_t = np.empty((H, GH), dt)
    w_ih_t = np.empty((0 if index_input else In, GH), dt)
    w_hy_t = np.empty((H, O), dt)
    gates = np.empty((B, GH), dt)
    rh = np.empty((B, H), dt)  # the original GRU's r h_{t-1}
    h_carry = np.empty((B, H), dt)
    c_carry = np.zeros((B, H), dt)
    c_run = np.zeros((B, H), dt)
    dh = np.empty((B, H), dt)
    dc = np.empty((B, H), dt)
    age_dh = np.empty((R, H), dt)
    age_dc = np.empty((R, H), dt)
    age_gx = np.empty((R, GH), dt)
    age_gh = np.empty((R, GH), dt) if gru else age_gx
    has_resets = resets.shape[0] > 0  # [T, B] uint8, or empty: none
    h_prev_buf = np.empty((W if has_resets else 0, B, H), dt)
    c_buf = np.empty((B if has_resets and lstm else 0, H), dt)
    x2 = x.reshape((x.shape[0] * x.shape[1], x.shape[2]))
    idx_flat = idx.reshape(idx.shape[0] * idx.shape[1])

    _copy2(h, h_carry)
    if lstm:
        _copy2(c, c_carry)
    if opt == _OPT_NONE:
        for i in range(P):
            grad[i] = 0

    # Per-output depth: one window, the whole sequence. TBPTT(k1, k2): windows
    # ending every k1 steps, each reaching back k2 steps.
    k1w = T if by_depth else k1
    k2w = T if by_depth else k2
    n = 0
    t_prev = 0
    while t_prev < T:
        t = min(t_prev + k1w, T)
        s = max(t - k2w, 0)
        L = t - s
        s_next = max(min(t + k1w, T) - k2w, 0)

        # forward over the window from the carried state, current parameters
        _project_window(index_input, s, L, B, x2, idx_flat, p_w_ih, w_ih_t, b_ih, xp)
        _transpose(p_w_hh, w_hh_t)
        if lstm:
            _copy2(c_carry, c_run)
        window_resets = resets[s:t] if has_resets else resets
        _forward_window(kind, L, xp, w_hh_t, b_hh, h_carry, c_run, out, ws, gates, rh,
                        window_resets, h_prev_buf, leak, one)

        # loss, backward through the window (never into the carried state),
        # clip, update
        loss = 0.0
        if not many_to_one or t == T:
            first = T - 1 if many_to_one else t_prev
            loss = _head_step(head, reduce_mean, many_to_one, s, L, first, t, target_idx,
                              target, p_w_hy, w_hy_t, p_b_y, out, z_dz, g_w_hy, g_b_y, d_out,
                              cast_buf, one)
            if by_depth:
                _depth_gate_grads(kind, T, p_w_hh, h_carry, c_carry, out, ws, d_out, age_dh,
                                  age_dc, age_gx, age_gh, Gx, Gh, window_resets, h_prev_buf,
                                  c_buf, leak, one)
            else:
                _window_gate_grads(kind, L, p_w_hh, h_carry, c_carry, out, ws, d_out, dh, dc,
                                   Gx, Gh, window_resets, h_prev_buf, c_buf, leak, one)
            _layer_weight_grads(kind, index_input, s, L, x2, idx_flat, h_carry, out, ws, Gx, Gh,
                                g_w_ih, g_w_hh, g_b_ih, g_b_hh, gru, has_resets, h_prev_buf)
            if not _window_is_finite(loss, gw):  # stop before the update (TRAINING.md)
                losses[n] = loss
                return step, n
            _clip(clip_kind, clip_value, gw, cast_buf)
            if opt == _OPT_NONE:
                for i in range(P):
                    grad[i] += gw[i]
            else:
                for i in range(P):
                    grad[i] = gw[i]
                step += 1
                _optimizer_step(opt, theta, gw, m, v, step, lr, momentum, nesterov, alpha,
                                beta1, beta2, eps, cast_buf, one)
        losses[n] = loss

        # carry: the state this forward reached at s_next (or at T)
        if t == T:
            _copy2(out[L - 1], h)
            if lstm:
                _copy2(c_run, c)
        elif s_next > s:
            o = s_next - s - 1  # the step whose output is h_{s_next}
            _copy2(out[o], h_carry)
            if lstm:
                for b in range(B):
                    for j in range(H):
                        c_carry[b, j] = ws[o, b, 4 * H + j]
        t_prev = t
        n += 1
    return step, -1


# --------------------------------------------------------------------------
# The backend contract (fastrnn.training)
# --------------------------------------------------------------------------

def _readonly(a):
    """Inputs and targets are only read; passing them all read-only keeps one
    compiled specialisation per dtype whatever the caller's flags are."""
    view = a.view()
    view.flags.writeable = False
    return view


def train(config, theta, grad, m, v, step, inputs, targets, h, c, losses, resets=None):
    """The training contract of fastrnn.training (see its module docstring)."""
    dt = theta.dtype
    real = dt.type
    if config.index_input:
        x, idx = np.zeros((0, 0, 0), dt), inputs
    else:
        x, idx = inputs, np.zeros((0, 0), np.int64)
    if config.head == "softmax_ce":
        target_idx, target = targets.reshape(-1), np.zeros(0, dt)
    else:
        target_idx, target = np.zeros(0, np.int64), targets.reshape(-1)
    c_arr = c if c is not None else np.zeros((0, 0), dt)
    # Hyperparameters arrive as Python floats (float64); the kernel rounds
    # them to the dtype where train.c does ((real) casts), and keeps the
    # float64 ones it needs (clip threshold, Adam's betas for their powers).
    step, stopped = _train_kernel(
        config.cell.code, config.In, config.O, config.has_bias, config.has_bias_hh,
        config.has_head_bias,
        config.head_code, config.index_input, config.many_to_one, config.reduce_mean,
        config.k1, config.k2, config.depth, config.clip_code, config.clip_value,
        config.optimizer_code, real(config.lr), config.momentum, config.nesterov,
        config.alpha, config.beta1, config.beta2, real(config.eps),
        theta, grad, m, v, int(step), _readonly(x), _readonly(idx), _readonly(target_idx),
        _readonly(target),
        _readonly(np.zeros((0, 0), np.uint8) if resets is None else resets.view(np.uint8)),
        h, c_arr, losses, _leak(config.cell, dt), real(1))
    return int(step), (None if stopped < 0 else int(stopped))

"""The Numba backend: the C kernels' loops, compiled by Numba.

Each function here mirrors the loop structure of its counterpart in csrc/
(cells/rnn.c, cells/lstm.c, cells/gru.c, cells/gru_original.c, cells/leaky.c, kernels/gemm.c,
kernels/gates.c,
layer/layer.c, layer/products.c): the input projection ``x W_ih^T +
b_ih`` hoisted out of the time loop (in chunks bounded like the C core's), one
recurrent product per step followed by the fused gate math, and in backward
the gate gradients Gx (and Gh for GRU) collected over the whole sequence, with
dx, dW_ih, dW_hh and the bias gradients formed as products after the loop. The
matrix products are written out as loops (unrolled rank-1 updates over
contiguous rows, as in the C core's portable GEMM), so nothing needs BLAS or
SciPy, and the scalar math is libm's tanh / exp (the C core's vectorised
activation polynomials and register-tiled GEMM are not reproduced, so the two
backends agree to rounding, not bit for bit). Every temporary has the dtype of
the inputs: float32 problems are computed in float32 throughout.

Per-row sequence lengths (the "lengths" feature: PyTorch's
pack_padded_sequence(..., enforce_sorted=False) semantics, see
docs/ARCHITECTURE.md) have two kernels of their own, on the plan the C core
uses: the rows ordered once by length, longest first (a stable counting sort,
O(B + T)), active[t] = the number of rows with length > t, and step t run on
the first active[t] sorted rows. The valid (t, row) entries are packed step
after step (step t's block starts at offsets[t] = active[0] + ... +
active[t-1]), so every block is contiguous and the plain path's helpers run on
it unchanged; h_{t-1} of step t is the head of step t-1's block, and a row
that has ended keeps its state where it is. x / d_output / the saved arrays
are gathered into packed scratch, and output / ws / dx scattered back with the
padding zero-filled: the arithmetic follows the valid steps (only that fill
touches all T x B entries), all of it inside the kernels, with no Python loop
over rows or steps. Lengths all equal to T take the plain kernels (bitwise the
results of lengths=None).

The LSTM with a projection (the "projection" feature, torch.nn.LSTM(proj_size)
: h_t = W_hr (o tanh(c_t))) has a forward and a backward kernel of its own,
mirroring layer/projection.c with the LSTM's gate helpers; with lengths it
is composed by fastrnn.functional, one call per distinct length.

Five ``@numba.njit(cache=True)`` kernels (forward, backward, step, and
forward / backward with lengths), each shared by every cell through an
integer cell code and the leaky cell's rate ``leak`` (an argument of the
input dtype, as ``one`` is; unread by the other cells), are compiled lazily
on first use, once per dtype, and cached on disk; they release the GIL. The
Python functions ``forward``, ``backward`` and ``step`` implement the backend contract of
docs/ARCHITECTURE.md and only adapt arguments: ``None`` (``ws`` at inference,
the LSTM-only cell-state arrays for other cells) becomes an empty placeholder
array of the same rank and dtype; the kernels skip an empty workspace.

What it deliberately is not: not parallel, not a fastmath build, no dtype-
specific or ISA-specific variants, no argument checking (that is
fastrnn._validate's job, done once above every backend) and no way to use it
without the ``numba`` package - the import below fails and the backend
registry reports the backend as unavailable.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from .. import cells

# The cell codes the kernels branch on: the C core's (fastrnn.cells); the
# Elman cells' double as their activation codes.
_RNN_TANH = cells.CELLS["rnn_tanh"].code
_RNN_RELU = cells.CELLS["rnn_relu"].code
_RNN_SIGMOID = cells.CELLS["rnn_sigmoid"].code
_LSTM = cells.CELLS["lstm"].code
_GRU = cells.CELLS["gru"].code
_GRU_ORIGINAL = cells.CELLS["gru_original"].code
_LEAKY = cells.CELLS["leaky"].code

# Time steps per chunk of the hoisted input projection (kernels.h).
_PROJ_CHUNK_ELEMS = 1 << 18

_njit = numba.njit(cache=True, nogil=True)
# Helpers are only called from the kernels: no Python / C entry points to build.
_helper = numba.njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)


# --------------------------------------------------------------------------
# Dense products (kernels/gemm.c) and shared helpers (layer/products.c). All arrays 2-D,
# C-contiguous. The products accumulate (C += ...); callers zero C first for
# C = ... (no flag: Numba would specialise on a literal True / False).
# --------------------------------------------------------------------------

@_helper
def _gemm_nn(A, Bm, C):
    """C[M, N] += A[M, K] Bm[K, N]: four rank-1 updates per pass over a C row."""
    M, K = A.shape
    N = Bm.shape[1]
    for i in range(M):
        c = C[i]
        a = A[i]
        k = 0
        while k + 4 <= K:
            a0 = a[k]
            a1 = a[k + 1]
            a2 = a[k + 2]
            a3 = a[k + 3]
            b0 = Bm[k]
            b1 = Bm[k + 1]
            b2 = Bm[k + 2]
            b3 = Bm[k + 3]
            for j in range(N):
                c[j] = c[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
            k += 4
        while k < K:
            a0 = a[k]
            b0 = Bm[k]
            for j in range(N):
                c[j] = c[j] + a0 * b0[j]
            k += 1


@_helper
def _gemm_tn(A, Bm, C):
    """C[M, N] += A[K, M]^T Bm[K, N]: weight gradients, K = rows of the sequence."""
    K, M = A.shape
    N = Bm.shape[1]
    k = 0
    while k + 4 <= K:
        b0 = Bm[k]
        b1 = Bm[k + 1]
        b2 = Bm[k + 2]
        b3 = Bm[k + 3]
        for i in range(M):
            a0 = A[k, i]
            a1 = A[k + 1, i]
            a2 = A[k + 2, i]
            a3 = A[k + 3, i]
            c = C[i]
            for j in range(N):
                c[j] = c[j] + a0 * b0[j] + a1 * b1[j] + a2 * b2[j] + a3 * b3[j]
        k += 4
    while k < K:
        b0 = Bm[k]
        for i in range(M):
            a0 = A[k, i]
            c = C[i]
            for j in range(N):
                c[j] = c[j] + a0 * b0[j]
        k += 1


@_helper
def _dot(a, b, zero):
    """dot(a, b) with eight partial sums combined in a fixed order (kernels/gemm.c)."""
    K = a.shape[0]
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = zero
    k = 0
    while k + 8 <= K:
        l0 = l0 + a[k] * b[k]
        l1 = l1 + a[k + 1] * b[k + 1]
        l2 = l2 + a[k + 2] * b[k + 2]
        l3 = l3 + a[k + 3] * b[k + 3]
        l4 = l4 + a[k + 4] * b[k + 4]
        l5 = l5 + a[k + 5] * b[k + 5]
        l6 = l6 + a[k + 6] * b[k + 6]
        l7 = l7 + a[k + 7] * b[k + 7]
        k += 8
    tail = zero
    while k < K:
        tail = tail + a[k] * b[k]
        k += 1
    total = ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7))
    return total + tail


@_helper
def _gemm_nt(A, Bm, C, zero):
    """C[M, N] += A[M, K] Bm[N, K]^T: one dot product per element (single steps)."""
    M = A.shape[0]
    N = Bm.shape[0]
    for i in range(M):
        a = A[i]
        c = C[i]
        for j in range(N):
            c[j] = c[j] + _dot(a, Bm[j], zero)


@_helper
def _transpose(src, dst):
    """dst[c, r] = src[r, c], in 32 x 32 tiles."""
    rows, cols = src.shape
    tile = 32
    for r0 in range(0, rows, tile):
        r1 = min(r0 + tile, rows)
        for c0 in range(0, cols, tile):
            c1 = min(c0 + tile, cols)
            for r in range(r0, r1):
                for c in range(c0, c1):
                    dst[c, r] = src[r, c]


@_helper
def _column_sums(a, y):
    """y[N] = column sums of a[M, N]."""
    M, N = a.shape
    for j in range(N):
        y[j] = 0
    for i in range(M):
        for j in range(N):
            y[j] += a[i, j]


@_helper
def _copy2(src, dst):
    rows, cols = src.shape
    for r in range(rows):
        for c in range(cols):
            dst[r, c] = src[r, c]


@_helper
def _zero2(dst):
    rows, cols = dst.shape
    for r in range(rows):
        for c in range(cols):
            dst[r, c] = 0


@_helper
def _set_rows(v, dst):
    """Every row of dst[M, N] = v[N]."""
    M, N = dst.shape
    for i in range(M):
        for j in range(N):
            dst[i, j] = v[j]


@_helper
def _sigmoid(v, one):
    return one / (one + math.exp(-v))


# --------------------------------------------------------------------------
# Fused per-step gate math (kernels/gates.c: frnn_rnn_forward_math,
# frnn_lstm_forward_math, frnn_gru_forward_math); shared by forward and step.
# --------------------------------------------------------------------------

@_helper
def _activate_rows(act, b_hh, h, one):
    """h[B, H] = act(h + b_hh), the activation switch outside the loops."""
    B, H = h.shape
    zero = one - one
    for b in range(B):
        row = h[b]
        if act == _RNN_TANH:
            for j in range(H):
                row[j] = math.tanh(row[j] + b_hh[j])
        elif act == _RNN_RELU:
            for j in range(H):
                v = row[j] + b_hh[j]
                row[j] = zero if v < 0 else v  # NaN < 0 is false: NaN propagates
        else:
            for j in range(H):
                row[j] = _sigmoid(row[j] + b_hh[j], one)


@_helper
def _leaky_gates(h_prev, u, b_hh, h, leak, one):
    """The leaky cell (cells/leaky.c): u[B, H] holds the pre-activation
    without b_hh and becomes u = tanh(. + b_hh); h[B, H] = (1 - a) h_prev +
    a u. u may be h itself (inference: nothing is saved)."""
    _activate_rows(_RNN_TANH, b_hh, u, one)
    keep = one - leak
    B, H = h.shape
    for b in range(B):
        hp = h_prev[b]
        ub = u[b]
        hb = h[b]
        for j in range(H):
            hb[j] = keep * hp[j] + leak * ub[j]


@_helper
def _lstm_gates(gates, b_hh, c, h, ws_t, one):
    """gates[B, 4H] (all but b_hh) -> c[B, H] updated in place, h[B, H];
    ws_t[B, 5H] = [i f g o c_t] unless it is the empty placeholder."""
    B, H = c.shape
    write_ws = ws_t.shape[0] > 0
    for b in range(B):
        row = gates[b]
        cb = c[b]
        hb = h[b]
        for j in range(H):
            i = _sigmoid(row[j] + b_hh[j], one)
            f = _sigmoid(row[H + j] + b_hh[H + j], one)
            g = math.tanh(row[2 * H + j] + b_hh[2 * H + j])
            o = _sigmoid(row[3 * H + j] + b_hh[3 * H + j], one)
            cn = f * cb[j] + i * g
            cb[j] = cn
            hb[j] = o * math.tanh(cn)
            if write_ws:
                w = ws_t[b]
                w[j] = i
                w[H + j] = f
                w[2 * H + j] = g
                w[3 * H + j] = o
                w[4 * H + j] = cn


@_helper
def _gru_gates(xp, hp, b_hh, h_prev, h, ws_t, one):
    """xp[B, 3H] input side incl. b_ih, hp[B, 3H] hidden side without b_hh ->
    h[B, H]; ws_t[B, 4H] = [r z n W_hn h + b_hn] unless it is the empty
    placeholder."""
    B, H = h.shape
    write_ws = ws_t.shape[0] > 0
    for b in range(B):
        xr = xp[b]
        hr = hp[b]
        hpb = h_prev[b]
        hb = h[b]
        for j in range(H):
            r = _sigmoid(xr[j] + (hr[j] + b_hh[j]), one)
            z = _sigmoid(xr[H + j] + (hr[H + j] + b_hh[H + j]), one)
            hn = hr[2 * H + j] + b_hh[2 * H + j]
            n = math.tanh(xr[2 * H + j] + r * hn)
            hb[j] = (one - z) * n + z * hpb[j]
            if write_ws:
                w = ws_t[b]
                w[j] = r
                w[H + j] = z
                w[2 * H + j] = n
                w[3 * H + j] = hn


@_helper
def _gru_original_gates(xp, h_prev, w_hh_t, b_hh, h, ws_t, gates, rh, one):
    """The original GRU's step (cells/gru_original.c): xp[B, 3H] input side
    incl. b_ih, w_hh_t = W_hh^T [H, 3H] -> h[B, H]. r multiplies h before
    W_hn, so the n block's product follows the r, z one; gates[B, 3H] holds
    the hidden-side products (then r, z), rh[B, H] = r h_prev; ws_t[B, 4H] =
    [r z n rh] unless it is the empty placeholder."""
    B, H = h.shape
    write_ws = ws_t.shape[0] > 0
    _zero2(gates)
    _gemm_nn(h_prev, w_hh_t[:, :2 * H], gates[:, :2 * H])
    for b in range(B):
        xr = xp[b]
        g = gates[b]
        hpb = h_prev[b]
        for j in range(H):
            r = _sigmoid(xr[j] + (g[j] + b_hh[j]), one)
            z = _sigmoid(xr[H + j] + (g[H + j] + b_hh[H + j]), one)
            g[j] = r
            g[H + j] = z
            rh[b, j] = r * hpb[j]
    _gemm_nn(rh, w_hh_t[:, 2 * H:], gates[:, 2 * H:])
    for b in range(B):
        xr = xp[b]
        g = gates[b]
        hpb = h_prev[b]
        hb = h[b]
        for j in range(H):
            n = math.tanh(xr[2 * H + j] + (g[2 * H + j] + b_hh[2 * H + j]))
            z = g[H + j]
            hb[j] = (one - z) * n + z * hpb[j]
            if write_ws:
                w = ws_t[b]
                w[j] = g[j]
                w[H + j] = z
                w[2 * H + j] = n
                w[3 * H + j] = rh[b, j]


@_helper
def _reset_input_grads(Gx2, ws2, dw_hh):
    """The original GRU's dW_hn = sum over rows of dn^T (r h): its product
    reads the workspace's rh block, not h_{t-1} (overwrites dw_hh's n rows,
    which the shared Gh^T h_{t-1} product filled)."""
    H = dw_hh.shape[1]
    for i in range(H):
        for j in range(H):
            dw_hh[2 * H + i, j] = 0
    for k in range(Gx2.shape[0]):
        gk = Gx2[k]
        wk = ws2[k]
        for i in range(H):
            a = gk[2 * H + i]
            row = dw_hh[2 * H + i]
            for j in range(H):
                row[j] = row[j] + a * wk[3 * H + j]


# --------------------------------------------------------------------------
# The three kernels.
# --------------------------------------------------------------------------

@_njit
def _forward_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws, leak, one):
    T, B, In = x.shape
    H = h0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    chunk = max(_PROJ_CHUNK_ELEMS // (B * GH), 1)
    chunk = min(chunk, T)
    w_ih_t = np.empty((In, GH), dt)
    w_hh_t = np.empty((H, GH), dt)
    xp = np.empty((chunk * B, GH), dt)  # [chunk * B, GH] projected inputs
    gates = np.empty((B, GH), dt)       # LSTM gates / GRU hidden-side products
    rh = np.empty((B, H), dt)           # the original GRU's r h_{t-1}
    c = np.empty((B, H), dt)            # LSTM running cell state
    no_ws = np.empty((0, 0), dt)
    _transpose(w_ih, w_ih_t)
    _transpose(w_hh, w_hh_t)
    if kind == _LSTM:
        _copy2(c0, c)
    x2 = x.reshape((T * B, In))
    write_ws = ws.shape[0] > 0  # else the empty placeholder (inference)

    t0 = 0
    while t0 < T:
        steps = min(T - t0, chunk)
        xps = xp[:steps * B]
        _set_rows(b_ih, xps)
        _gemm_nn(x2[t0 * B:(t0 + steps) * B], w_ih_t, xps)
        for s in range(steps):
            t = t0 + s
            h_prev = h0 if t == 0 else out[t - 1]
            xpt = xp[s * B:(s + 1) * B]
            ws_t = ws[t] if write_ws else no_ws
            if kind == _LSTM:
                _copy2(xpt, gates)
                _gemm_nn(h_prev, w_hh_t, gates)
                _lstm_gates(gates, b_hh, c, out[t], ws_t, one)
            elif kind == _GRU:
                _zero2(gates)
                _gemm_nn(h_prev, w_hh_t, gates)
                _gru_gates(xpt, gates, b_hh, h_prev, out[t], ws_t, one)
            elif kind == _GRU_ORIGINAL:
                _gru_original_gates(xpt, h_prev, w_hh_t, b_hh, out[t], ws_t, gates, rh, one)
            elif kind == _LEAKY:
                u = ws_t if write_ws else out[t]  # tanh's output, saved when training
                _copy2(xpt, u)
                _gemm_nn(h_prev, w_hh_t, u)
                _leaky_gates(h_prev, u, b_hh, out[t], leak, one)
            else:
                h = out[t]
                _copy2(xpt, h)
                _gemm_nn(h_prev, w_hh_t, h)
                _activate_rows(kind, b_hh, h, one)
        t0 += steps
    _copy2(out[T - 1], hn)
    if kind == _LSTM:
        _copy2(c, cn)


@_helper
def _step_gate_grads(kind, w_hh, h_t, ws_t, h_prev, c_prev, c_off, dh, dc, gx, gh,
                     propagate_rows, leak, one):
    """One step back through a cell: the whole backward's inner loop, shared
    by _backward_kernel and the trainers (numba_train). dh [R, H]: the whole
    delta arriving at h_t, R = a multiple of B (row a*B + b reads batch b's
    state: the trainer's per-output depth stacks ages as rows); dc [R, H]:
    into c_t (LSTM). Writes the gate gradients gx (and gh, GRU) [R, GH], then dh and
    dc become the deltas into h_{t-1} and c_{t-1} - for the first
    ``propagate_rows`` rows only as far as dh is concerned: rows nobody reads
    (the window's first step, the oldest age) skip the product with W_hh."""
    R, H = dh.shape
    B = h_t.shape[0]
    zero = one - one
    if kind == _GRU_ORIGINAL:
        _gru_original_gate_grads(w_hh, ws_t, h_prev, dh, gx, propagate_rows, one)
        return
    for a in range(R // B):
        for b in range(B):
            r = a * B + b
            dhr = dh[r]
            if kind == _LSTM:
                w = ws_t[b]
                cp = c_prev[b]
                dcr = dc[r]
                g = gx[r]
                for j in range(H):
                    i = w[j]
                    f = w[H + j]
                    gg = w[2 * H + j]
                    o = w[3 * H + j]
                    tc = math.tanh(w[4 * H + j])
                    d = dhr[j]
                    dcj = dcr[j] + d * o * (one - tc * tc)
                    g[j] = dcj * gg * (i * (one - i))
                    g[H + j] = dcj * cp[c_off + j] * (f * (one - f))
                    g[2 * H + j] = dcj * i * (one - gg * gg)
                    g[3 * H + j] = d * tc * (o * (one - o))
                    dcr[j] = dcj * f
            elif kind == _GRU:
                w = ws_t[b]
                hpb = h_prev[b]
                gxr = gx[r]
                ghr = gh[r]
                for j in range(H):
                    rg = w[j]
                    z = w[H + j]
                    n = w[2 * H + j]
                    hn = w[3 * H + j]
                    d = dhr[j]
                    dn = d * (one - z) * (one - n * n)
                    dz = d * (hpb[j] - n) * (z * (one - z))
                    dr = dn * hn * (rg * (one - rg))
                    gxr[j] = dr
                    gxr[H + j] = dz
                    gxr[2 * H + j] = dn
                    ghr[j] = dr
                    ghr[H + j] = dz
                    ghr[2 * H + j] = dn * rg
                    dhr[j] = d * z  # the direct z h_{t-1} path; W_hh's part is added below
            elif kind == _LEAKY:
                u = ws_t[b]
                g = gx[r]
                keep = one - leak
                for j in range(H):
                    d = dhr[j]
                    g[j] = leak * d * (one - u[j] * u[j])
                    dhr[j] = keep * d  # the direct (1 - a) h_{t-1} path; W_hh's is added below
            else:
                y = h_t[b]
                g = gx[r]
                if kind == _RNN_TANH:
                    for j in range(H):
                        g[j] = dhr[j] * (one - y[j] * y[j])
                elif kind == _RNN_RELU:
                    for j in range(H):
                        g[j] = dhr[j] if y[j] > 0 else zero
                else:
                    for j in range(H):
                        g[j] = dhr[j] * (y[j] * (one - y[j]))
    if propagate_rows > 0:
        dh_prop = dh[:propagate_rows]
        if kind == _GRU:
            _gemm_nn(gh[:propagate_rows], w_hh, dh_prop)
        elif kind == _LEAKY:
            _gemm_nn(gx[:propagate_rows], w_hh, dh_prop)
        else:
            _zero2(dh_prop)
            _gemm_nn(gx[:propagate_rows], w_hh, dh_prop)



@_helper
def _gru_original_gate_grads(w_hh, ws_t, h_prev, dh, gx, propagate_rows, one):
    """_step_gate_grads for the original GRU: n = tanh(... + W_hn (r h) +
    b_hn), so the delta into r h is dn W_hn, a product over all units that
    dr waits for. gx = [dr dz dn] is the gradient of the input side and of
    the hidden side alike (the caller's gh is gx)."""
    R, H = dh.shape
    B = ws_t.shape[0]
    dn = np.empty((R, H), dh.dtype)
    drh = np.zeros((R, H), dh.dtype)
    for a in range(R // B):
        for b in range(B):
            r = a * B + b
            w = ws_t[b]
            hpb = h_prev[b]
            g = gx[r]
            d = dh[r]
            for j in range(H):
                z = w[H + j]
                n = w[2 * H + j]
                dnj = d[j] * (one - z) * (one - n * n)
                dn[r, j] = dnj
                g[H + j] = d[j] * (hpb[j] - n) * (z * (one - z))
                g[2 * H + j] = dnj
    _gemm_nn(dn, w_hh[2 * H:], drh)
    for a in range(R // B):
        for b in range(B):
            r = a * B + b
            w = ws_t[b]
            hpb = h_prev[b]
            g = gx[r]
            d = dh[r]
            for j in range(H):
                rg = w[j]
                g[j] = drh[r, j] * hpb[j] * (rg * (one - rg))
                d[j] = d[j] * w[H + j] + drh[r, j] * rg  # the direct and the r h paths
    if propagate_rows > 0:
        _gemm_nn(gx[:propagate_rows, :2 * H], w_hh[:2 * H], dh[:propagate_rows])


@_njit
def _parameter_grads(Gx, Gh, x, h0, out, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, separate):
    """After a window's gate-gradient loop (T, B, GH each; Gh is Gx unless the
    hidden side differs, the GRU's): dx = Gx W_ih, dW_ih = sum_t Gx[t]^T x_t,
    dW_hh = sum_t Gh[t]^T h_{t-1} (h_{-1} = h0; out's width R is H, or P
    with a projection), db_ih = the column sums of Gx, db_hh those of Gh
    when ``separate``, else db_ih's. The C core's products.c, as loops."""
    T, B, In = x.shape
    GH = w_ih.shape[0]
    R = out.shape[2]
    Gx2 = Gx.reshape((T * B, GH))
    Gh2 = Gh.reshape((T * B, GH))
    dx2 = dx.reshape((T * B, In))
    _zero2(dx2)
    _gemm_nn(Gx2, w_ih, dx2)
    _zero2(dw_ih)
    _gemm_tn(Gx2, x.reshape((T * B, In)), dw_ih)
    # h0 is not contiguous with out: two products
    _zero2(dw_hh)
    _gemm_tn(Gh2[:B], h0, dw_hh)
    if T > 1:
        _gemm_tn(Gh2[B:], out.reshape((T * B, R))[:(T - 1) * B], dw_hh)
    _column_sums(Gx2, db_ih)
    if separate:
        _column_sums(Gh2, db_hh)
    else:
        for j in range(GH):
            db_hh[j] = db_ih[j]


@_njit
def _backward_kernel(kind, x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
                     dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, leak, one):
    T, B, _ = x.shape
    H = h0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    Gx = np.empty((T, B, GH), dt)  # w.r.t. x W_ih^T + b_ih
    if kind == _GRU:
        Gh = np.empty((T, B, GH), dt)  # w.r.t. h W_hh^T + b_hh
    else:
        Gh = Gx
    dh_next = np.empty((B, H), dt)  # into h_t from step t+1
    dc = np.empty((B, H), dt)       # into c_t from step t+1 (LSTM)
    _copy2(d_hn, dh_next)
    if kind == _LSTM:
        _copy2(d_cn, dc)

    dh = np.empty((B, H), dt)  # the whole delta into h_t
    for t in range(T - 1, -1, -1):
        dy = d_out[t]
        for b in range(B):
            for j in range(H):
                dh[b, j] = dy[b, j] + dh_next[b, j]
        h_prev = h0 if t == 0 else out[t - 1]
        if kind == _LSTM or kind == _GRU or kind == _GRU_ORIGINAL or kind == _LEAKY:
            ws_t = ws[t]
        else:
            ws_t = out[t]  # unread: the Elman cells need only their output
        if kind == _LSTM:  # c_{t-1}: c0 at t = 0, else the c_t slot of the previous step
            c_prev = c0 if t == 0 else ws[t - 1]
            c_off = 0 if t == 0 else 4 * H
        else:
            c_prev = h_prev
            c_off = 0
        _step_gate_grads(kind, w_hh, out[t], ws_t, h_prev, c_prev, c_off, dh, dc, Gx[t], Gh[t],
                         B, leak, one)
        dh, dh_next = dh_next, dh  # dh now holds the delta into h_{t-1}
    _copy2(dh_next, dh0)
    if kind == _LSTM:
        _copy2(dc, dc0)

    _parameter_grads(Gx, Gh, x, h0, out, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, kind == _GRU)
    if kind == _GRU_ORIGINAL:
        _reset_input_grads(Gx.reshape((T * B, GH)), ws.reshape((T * B, ws.shape[2])), dw_hh)


@_njit
def _forward_proj_kernel(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, out, hn, cn, ws, one):
    """The LSTM with a projection (layer/projection.c): the LSTM's step on
    h_{t-1} (B, P) through w_hh (4H, P) gives m_t = o tanh(c_t) (B, H), and
    h_t = m_t W_hr^T (B, P); the workspace is the LSTM's [i f g o c_t]."""
    T, B, In = x.shape
    P = h0.shape[1]
    H = c0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    chunk = max(_PROJ_CHUNK_ELEMS // (B * GH), 1)
    chunk = min(chunk, T)
    w_ih_t = np.empty((In, GH), dt)
    w_hh_t = np.empty((P, GH), dt)
    w_hr_t = np.empty((H, P), dt)
    xp = np.empty((chunk * B, GH), dt)
    gates = np.empty((B, GH), dt)
    c = np.empty((B, H), dt)
    m = np.empty((B, H), dt)
    no_ws = np.empty((0, 0), dt)
    _transpose(w_ih, w_ih_t)
    _transpose(w_hh, w_hh_t)
    _transpose(w_hr, w_hr_t)
    _copy2(c0, c)
    x2 = x.reshape((T * B, In))
    write_ws = ws.shape[0] > 0
    t0 = 0
    while t0 < T:
        steps = min(T - t0, chunk)
        xps = xp[:steps * B]
        _set_rows(b_ih, xps)
        _gemm_nn(x2[t0 * B:(t0 + steps) * B], w_ih_t, xps)
        for s in range(steps):
            t = t0 + s
            h_prev = h0 if t == 0 else out[t - 1]
            _copy2(xp[s * B:(s + 1) * B], gates)
            _gemm_nn(h_prev, w_hh_t, gates)
            _lstm_gates(gates, b_hh, c, m, ws[t] if write_ws else no_ws, one)
            _zero2(out[t])
            _gemm_nn(m, w_hr_t, out[t])
        t0 += steps
    _copy2(out[T - 1], hn)
    _copy2(c, cn)


@_njit
def _backward_proj_kernel(x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn, dx, dw_ih,
                          dw_hh, dw_hr, db_ih, db_hh, dh0, dc0, one):
    """BPTT of _forward_proj_kernel: D_t = d_out[t] + G[t+1] W_hh (B, P),
    dm_t = D_t W_hr into the LSTM's gate gradients; dW_hr = sum_t D_t^T m_t
    (m recomputed from the workspace), the rest with P for H."""
    T, B, _ = x.shape
    P = h0.shape[1]
    H = c0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    Gx = np.empty((T, B, GH), dt)
    D = np.empty((T, B, P), dt)
    dh_next = np.empty((B, P), dt)
    dc = np.empty((B, H), dt)
    dm = np.empty((B, H), dt)
    _copy2(d_hn, dh_next)
    _copy2(d_cn, dc)
    for t in range(T - 1, -1, -1):
        Dt = D[t]
        dy = d_out[t]
        for b in range(B):
            for j in range(P):
                Dt[b, j] = dy[b, j] + dh_next[b, j]
        _zero2(dm)
        _gemm_nn(Dt, w_hr, dm)
        c_prev = c0 if t == 0 else ws[t - 1]
        c_off = 0 if t == 0 else 4 * H
        # propagate_rows 0: the product into h_{t-1} is with W_hh (4H, P), below
        _step_gate_grads(_LSTM, w_hh, out[t], ws[t], out[t], c_prev, c_off, dm, dc, Gx[t],
                         Gx[t], 0, one, one)
        _zero2(dh_next)
        _gemm_nn(Gx[t], w_hh, dh_next)
    _copy2(dh_next, dh0)
    _copy2(dc, dc0)
    M = np.empty((T * B, H), dt)
    ws2 = ws.reshape((T * B, ws.shape[2]))
    for r in range(T * B):
        for j in range(H):
            M[r, j] = ws2[r, 3 * H + j] * math.tanh(ws2[r, 4 * H + j])
    _zero2(dw_hr)
    _gemm_tn(D.reshape((T * B, P)), M, dw_hr)
    _parameter_grads(Gx, Gx, x, h0, out, w_ih, dx, dw_ih, dw_hh, db_ih, db_hh, False)


@_njit
def _step_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out, c_out, leak, one):
    B = x.shape[0]
    H = h.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    zero = one - one
    no_ws = np.empty((0, 0), dt)
    xp = np.empty((B, GH), dt)
    h_new = np.empty((B, H), dt)
    c_new = np.empty((B, H), dt)
    _set_rows(b_ih, xp)
    _gemm_nt(x, w_ih, xp, zero)
    # The old state is fully read into temporaries before h_out / c_out are
    # written, so they may alias h / c.
    if kind == _GRU:
        hp = np.empty((B, GH), dt)
        _zero2(hp)
        _gemm_nt(h, w_hh, hp, zero)
        _gru_gates(xp, hp, b_hh, h, h_new, no_ws, one)
    elif kind == _GRU_ORIGINAL:
        w_hh_t = np.empty((H, GH), dt)
        _transpose(w_hh, w_hh_t)
        _gru_original_gates(xp, h, w_hh_t, b_hh, h_new, no_ws, np.empty((B, GH), dt),
                            np.empty((B, H), dt), one)
    elif kind == _LEAKY:
        _gemm_nt(h, w_hh, xp, zero)
        _leaky_gates(h, xp, b_hh, h_new, leak, one)
    elif kind == _LSTM:
        _gemm_nt(h, w_hh, xp, zero)
        _copy2(c, c_new)
        _lstm_gates(xp, b_hh, c_new, h_new, no_ws, one)
    else:
        _gemm_nt(h, w_hh, xp, zero)
        _activate_rows(kind, b_hh, xp, one)
        _copy2(xp, h_new)
    _copy2(h_new, h_out)
    if kind == _LSTM:
        _copy2(c_new, c_out)


# --------------------------------------------------------------------------
# Per-row lengths: the packed path (the C core's plan; numpy_ref's
# _forward_lengths / _backward_lengths state the same semantics plainly).
# --------------------------------------------------------------------------

@_helper
def _length_schedule(lengths, T):
    """``(order, active, offsets)`` for lengths[B] in [0, T].

    order[B]: the rows by length, longest first; a stable counting sort
    (O(B + T), no comparison sort), so equal lengths keep their order as in
    torch's enforce_sorted=False. active[T]: the rows still running at step t
    (length > t), nonincreasing, so step t runs on sorted rows
    0 .. active[t] - 1. offsets[T + 1]: where step t's block starts among the
    packed valid entries; offsets[T] is their number."""
    B = lengths.shape[0]
    count = np.zeros(T + 1, np.int64)
    for b in range(B):
        count[lengths[b]] += 1
    # next_slot[l] = the rows longer than l: where the rows of length l start
    next_slot = np.empty(T + 1, np.int64)
    longer = 0
    for length in range(T, -1, -1):
        next_slot[length] = longer
        longer += count[length]
    active = np.empty(T, np.int64)
    offsets = np.empty(T + 1, np.int64)
    offsets[0] = 0
    for t in range(T):
        active[t] = next_slot[t]  # rows with length > t
        offsets[t + 1] = offsets[t] + active[t]
    order = np.empty(B, np.int64)
    for b in range(B):  # rows in their original order: the sort is stable
        length = lengths[b]
        order[next_slot[length]] = b
        next_slot[length] += 1
    return order, active, offsets


@_helper
def _gather_rows(src, order, active, offsets, t_first, t_last, dst, dst_first):
    """dst[offsets[t] - dst_first + k] = src[t, order[k]] for the valid entries
    of steps t_first .. t_last - 1: (T, B, N) -> packed (rows, N)."""
    cols = src.shape[2]
    for t in range(t_first, t_last):
        base = offsets[t] - dst_first
        for k in range(active[t]):
            s = src[t, order[k]]
            d = dst[base + k]
            for j in range(cols):
                d[j] = s[j]


@_helper
def _scatter_rows(packed, order, active, offsets, dst):
    """dst[t, order[k]] = packed[offsets[t] + k] for the valid entries and 0
    for the padding: every element of dst[T, B, N] is written once."""
    T, B, cols = dst.shape
    for t in range(T):
        a = active[t]
        base = offsets[t]
        for k in range(B):
            d = dst[t, order[k]]
            if k < a:
                s = packed[base + k]
                for j in range(cols):
                    d[j] = s[j]
            else:
                for j in range(cols):
                    d[j] = 0


@_helper
def _sorted_rows(src, order, dst):
    """dst[k] = src[order[k]]: a (B, H) state into length order."""
    cols = src.shape[1]
    for k in range(order.shape[0]):
        s = src[order[k]]
        d = dst[k]
        for j in range(cols):
            d[j] = s[j]


@_helper
def _steps_run(active):
    """The steps that run at all: the longest length (active is nonincreasing)."""
    steps = 0
    while steps < active.shape[0] and active[steps] > 0:
        steps += 1
    return steps


@_njit
def _forward_lengths_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws,
                            lengths, leak, one):
    T, B, In = x.shape
    H = h0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    order, active, offsets = _length_schedule(lengths, T)
    valid = offsets[T]
    steps = _steps_run(active)
    # Only LSTM / GRU / leaky store anything; an Elman ws is (T, B, 0).
    write_ws = ws.shape[0] > 0 and (kind == _LSTM or kind == _GRU or kind == _GRU_ORIGINAL
                                    or kind == _LEAKY)
    width = ws.shape[2] if write_ws else 0
    w_ih_t = np.empty((In, GH), dt)
    w_hh_t = np.empty((H, GH), dt)
    _transpose(w_ih, w_ih_t)
    _transpose(w_hh, w_hh_t)
    out_packed = np.empty((valid, H), dt)      # h_t of the valid entries, step after step
    ws_packed = np.empty((valid, width), dt)   # their workspace rows (training)
    no_ws = np.empty((0, 0), dt)
    gates = np.empty((B, GH), dt)
    rh = np.empty((B, H), dt)                  # the original GRU's r h_{t-1}
    h_first = np.empty((B, H), dt)             # h0 in length order: step 0's h_{t-1}
    _sorted_rows(h0, order, h_first)
    c = np.empty((B, H), dt)                   # LSTM running cell state, length order;
    if kind == _LSTM:                          # rows that ended keep their final c
        _sorted_rows(c0, order, c)
    # The hoisted input projection over packed rows, in chunks of whole steps
    # bounded like the plain path's (about _PROJ_CHUNK_ELEMS elements, at
    # least one step: active[t] <= B).
    max_rows = max(_PROJ_CHUNK_ELEMS // GH, B)
    buffer_rows = min(max_rows, valid)
    x_packed = np.empty((buffer_rows, In), dt)
    xp = np.empty((buffer_rows, GH), dt)

    t0 = 0
    while t0 < steps:
        t1 = t0 + 1
        while t1 < steps and offsets[t1 + 1] - offsets[t0] <= max_rows:
            t1 += 1
        first = offsets[t0]
        rows = offsets[t1] - first
        _gather_rows(x, order, active, offsets, t0, t1, x_packed, first)
        xps = xp[:rows]
        _set_rows(b_ih, xps)
        _gemm_nn(x_packed[:rows], w_ih_t, xps)
        for t in range(t0, t1):
            a = active[t]
            r0 = offsets[t]
            xpt = xp[r0 - first:r0 - first + a]
            # h_{t-1} of the active rows: the head of step t-1's block (the
            # rows active at t are the first ones active at t-1)
            if t == 0:
                h_prev = h_first[:a]
            else:
                h_prev = out_packed[offsets[t - 1]:offsets[t - 1] + a]
            h = out_packed[r0:r0 + a]
            ws_t = ws_packed[r0:r0 + a] if write_ws else no_ws
            g = gates[:a]
            if kind == _LSTM:
                _copy2(xpt, g)
                _gemm_nn(h_prev, w_hh_t, g)
                _lstm_gates(g, b_hh, c[:a], h, ws_t, one)
            elif kind == _GRU:
                _zero2(g)
                _gemm_nn(h_prev, w_hh_t, g)
                _gru_gates(xpt, g, b_hh, h_prev, h, ws_t, one)
            elif kind == _GRU_ORIGINAL:
                _gru_original_gates(xpt, h_prev, w_hh_t, b_hh, h, ws_t, g, rh[:a], one)
            elif kind == _LEAKY:
                u = ws_t if write_ws else h
                _copy2(xpt, u)
                _gemm_nn(h_prev, w_hh_t, u)
                _leaky_gates(h_prev, u, b_hh, h, leak, one)
            else:
                _copy2(xpt, h)
                _gemm_nn(h_prev, w_hh_t, h)
                _activate_rows(kind, b_hh, h, one)
        t0 = t1

    _scatter_rows(out_packed, order, active, offsets, out)
    if write_ws:
        _scatter_rows(ws_packed, order, active, offsets, ws)
    # h_n: each row's last valid step, row k of step (length - 1)'s block;
    # a row of length 0 keeps h0.
    for k in range(B):
        b = order[k]
        length = lengths[b]
        src = h0[b] if length == 0 else out_packed[offsets[length - 1] + k]
        for j in range(H):
            hn[b, j] = src[j]
        if kind == _LSTM:
            for j in range(H):
                cn[b, j] = c[k, j]


@_njit
def _backward_lengths_kernel(kind, x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
                             dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths, leak, one):
    T, B, In = x.shape
    H = h0.shape[1]
    GH = w_ih.shape[0]
    dt = x.dtype
    order, active, offsets = _length_schedule(lengths, T)
    valid = offsets[T]
    steps = _steps_run(active)
    read_ws = kind == _LSTM or kind == _GRU or kind == _GRU_ORIGINAL or kind == _LEAKY
    width = ws.shape[2] if read_ws else 0
    # The saved arrays of the valid entries, packed: contiguous per step.
    out_packed = np.empty((valid, H), dt)
    _gather_rows(out, order, active, offsets, 0, steps, out_packed, 0)
    ws_packed = np.empty((valid, width), dt)
    if read_ws:
        _gather_rows(ws, order, active, offsets, 0, steps, ws_packed, 0)
    # h_{t-1} per valid entry (dW_hh's right factor and GRU's gate math):
    # sorted h0 for step 0, else the head of step t-1's block of out_packed.
    h_prev_packed = np.empty((valid, H), dt)
    if steps > 0:
        _sorted_rows(h0, order[:active[0]], h_prev_packed[:active[0]])
    for t in range(1, steps):
        _copy2(out_packed[offsets[t - 1]:offsets[t - 1] + active[t]],
               h_prev_packed[offsets[t]:offsets[t] + active[t]])
    c_first = np.empty((B, H), dt)  # c0 in length order: step 0's c_{t-1} (LSTM)
    if kind == _LSTM:
        _sorted_rows(c0, order, c_first)

    Gx = np.empty((valid, GH), dt)  # w.r.t. x W_ih^T + b_ih, packed
    if kind == _GRU:
        Gh = np.empty((valid, GH), dt)  # w.r.t. h W_hh^T + b_hh
    else:
        Gh = Gx
    # The deltas into h (and c) in length order. d_h_n sits in a row's slot
    # until the row becomes active at its last valid step; a row of length 0
    # is never touched, so d_h_n reaches dh0 unchanged.
    dh = np.empty((B, H), dt)
    dc = np.empty((B, H), dt)
    _sorted_rows(d_hn, order, dh)
    if kind == _LSTM:
        _sorted_rows(d_cn, order, dc)
    for t in range(steps - 1, -1, -1):
        a = active[t]
        r0 = offsets[t]
        dy = d_out[t]  # read only at the active rows: d_output past a length is ignored
        for k in range(a):
            s = dy[order[k]]
            d = dh[k]
            for j in range(H):
                d[j] = s[j] + d[j]
        h_t = out_packed[r0:r0 + a]
        ws_t = ws_packed[r0:r0 + a] if read_ws else h_t  # unread by the Elman cells
        h_prev = h_prev_packed[r0:r0 + a]
        if kind == _LSTM:  # c_{t-1}: sorted c0 at t = 0, else step t-1's c_t slot
            if t == 0:
                c_prev = c_first[:a]
                c_off = 0
            else:
                c_prev = ws_packed[offsets[t - 1]:offsets[t - 1] + a]
                c_off = 4 * H
        else:
            c_prev = h_prev
            c_off = 0
        # dh[:a] / dc[:a] become the deltas into h_{t-1} / c_{t-1} in place
        _step_gate_grads(kind, w_hh, h_t, ws_t, h_prev, c_prev, c_off, dh[:a], dc[:a],
                         Gx[r0:r0 + a], Gh[r0:r0 + a], a, leak, one)
    for k in range(B):
        b = order[k]
        for j in range(H):
            dh0[b, j] = dh[k, j]
        if kind == _LSTM:
            for j in range(H):
                dc0[b, j] = dc[k, j]

    # The products after the loop, over the packed entries only; one (valid, In)
    # scratch holds the packed x for dW_ih, then the packed dx.
    x_packed = np.empty((valid, In), dt)
    _gather_rows(x, order, active, offsets, 0, steps, x_packed, 0)
    _zero2(dw_ih)
    _gemm_tn(Gx, x_packed, dw_ih)
    _zero2(dw_hh)
    _gemm_tn(Gh, h_prev_packed, dw_hh)
    if kind == _GRU_ORIGINAL:
        _reset_input_grads(Gx, ws_packed, dw_hh)
    _column_sums(Gx, db_ih)
    if kind == _GRU:
        _column_sums(Gh, db_hh)
    else:
        for j in range(GH):
            db_hh[j] = db_ih[j]
    _zero2(x_packed)
    _gemm_nn(Gx, w_ih, x_packed)
    _scatter_rows(x_packed, order, active, offsets, dx)  # dx past a length is 0


# --------------------------------------------------------------------------
# The backend contract (docs/ARCHITECTURE.md).
# --------------------------------------------------------------------------

_placeholders: dict = {}


def _placeholder(dtype, ndim):
    """An empty array standing in for None, typed like the real argument."""
    key = (np.dtype(dtype), ndim)
    arr = _placeholders.get(key)
    if arr is None:
        arr = _placeholders[key] = np.empty((0,) * ndim, dtype)
    return arr


def _code(cell):
    return cells.get(cell).code


def _leak(cell, dt):
    """The leaky cell's rate as the kernels take it (dtype dt; 1 for the
    other cells, which do not read it)."""
    return dt.type(cells.get(cell).hyperparameter_values.get("leak_rate", 1.0))


def _readonly_view(a):
    v = a.view()
    v.flags.writeable = False
    return v


def _uniform(inputs):
    """Numba specialises on read-only-ness per argument. Inputs may be
    read-only (they are only read); if any is, pass them all as read-only
    views, so there is at most one extra specialisation per dtype rather than
    one per combination."""
    for a in inputs:
        if not a.flags.writeable:
            return tuple(_readonly_view(b) for b in inputs)
    return inputs


def _packed_path(lengths, T):
    """Whether lengths call for the packed kernels: some row shorter than T.
    Lengths all equal to T run the plain kernels, so they are bitwise
    lengths=None (as in numpy_ref)."""
    return lengths is not None and int(lengths.min()) < T


def forward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws, lengths=None):
    kind = _code(cell)
    dt = x.dtype
    if c0 is None:
        c0 = _placeholder(dt, 2)
    if cn is None:
        cn = _placeholder(dt, 2)
    if ws is None:
        ws = _placeholder(dt, 3)  # empty: the kernel skips the workspace
    if _packed_path(lengths, x.shape[0]):
        x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths = _uniform(
            (x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths))
        _forward_lengths_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws,
                                lengths, _leak(cell, dt), dt.type(1))
        return
    x, w_ih, w_hh, b_ih, b_hh, h0, c0 = _uniform((x, w_ih, w_hh, b_ih, b_hh, h0, c0))
    _forward_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, hn, cn, ws, _leak(cell, dt),
                    dt.type(1))


def backward(cell, x, w_ih, w_hh, b_ih, b_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
             dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths=None):
    kind = _code(cell)
    dt = x.dtype
    if c0 is None:
        c0 = _placeholder(dt, 2)
    if d_cn is None:
        d_cn = _placeholder(dt, 2)
    if dc0 is None:
        dc0 = _placeholder(dt, 2)
    if ws is None:
        ws = _placeholder(dt, 3)  # only the Elman cells, which read no workspace
    # b_ih / b_hh do not enter the gradients (given for the contract's symmetry).
    if _packed_path(lengths, x.shape[0]):
        x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn, lengths = _uniform(
            (x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn, lengths))
        _backward_lengths_kernel(kind, x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
                                 dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, lengths,
                                 _leak(cell, dt), dt.type(1))
        return
    x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn = _uniform(
        (x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn))
    _backward_kernel(kind, x, w_ih, w_hh, h0, c0, out, ws, d_out, d_hn, d_cn,
                     dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, _leak(cell, dt), dt.type(1))


def forward_proj(cell, x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, out, hn, cn, ws):
    """The "projection" feature: an LSTM with weight_hr (P, H) (cell: the LSTM)."""
    dt = x.dtype
    if ws is None:
        ws = _placeholder(dt, 3)
    x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0 = _uniform((x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0))
    _forward_proj_kernel(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, out, hn, cn, ws, dt.type(1))


def backward_proj(cell, x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn, dx, dw_ih,
                  dw_hh, dw_hr, db_ih, db_hh, dh0, dc0):
    dt = x.dtype
    x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn = _uniform(
        (x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn))
    _backward_proj_kernel(x, w_ih, w_hh, w_hr, h0, c0, out, ws, d_out, d_hn, d_cn, dx, dw_ih,
                          dw_hh, dw_hr, db_ih, db_hh, dh0, dc0, dt.type(1))


def step(cell, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out, c_out):
    kind = _code(cell)
    dt = x.dtype
    if c is None:
        c = _placeholder(dt, 2)
    if c_out is None:
        c_out = _placeholder(dt, 2)
    x, w_ih, w_hh, b_ih, b_hh, h, c = _uniform((x, w_ih, w_hh, b_ih, b_hh, h, c))
    _step_kernel(kind, x, w_ih, w_hh, b_ih, b_hh, h, c, h_out, c_out, _leak(cell, dt),
                 dt.type(1))

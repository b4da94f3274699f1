"""The sequence trainers against a brute force assembled from parts.

The reference below knows nothing of any trainer: it cuts the sequence into
the windows docs/TRAINING.md defines, runs each window with
functional.forward / backward on the NumPy backend from its detached start
state, writes the head, losses, clipping and optimizers out in NumPy, and
for per-output depth backpropagates every output separately from its own
detached state. Each backend's trainer must match it: float64 to 1e-10
relative (max|diff| / max|ref| per array), float32 to 1e-4.
"""
from __future__ import annotations

import numpy as np
import pytest

from fastrnn import functional as F
from fastrnn import training as tr

from conftest import TOLERANCE, rel_err

# ---------------------------------------------------------------- reference

def one_hot(idx, V, dtype):
    x = np.zeros(idx.shape + (V,), dtype)
    np.put_along_axis(x, idx[..., None], 1, -1)
    return x


def head(spec, z, y):
    """(summed loss, dL/dz) for logits z (..., O) and targets y."""
    if spec.head == "softmax_ce":
        zmax = z.max(-1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(-1, keepdims=True)
        loss = np.sum(np.log(s[..., 0]) + zmax[..., 0] - np.take_along_axis(z, y[..., None], -1)[..., 0])
        dz = e / s
        np.put_along_axis(dz, y[..., None], np.take_along_axis(dz, y[..., None], -1) - 1, -1)
        terms = y.size
    elif spec.head == "sigmoid_bce":
        loss = np.sum(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        dz = 1 / (1 + np.exp(-z)) - y
        terms = y.size
    elif spec.head == "sigmoid_mse":  # 0.5 (y - s)^2 with s = 1 / (1 + e^-z)
        sig = 1 / (1 + np.exp(-z))
        loss = 0.5 * np.sum((y - sig) ** 2)
        dz = (sig - y) * np.exp(-z) * sig ** 2  # s (1 - s) = e^-z s^2, without 1 - s
        terms = y.size
    else:
        loss = np.sum((z - y) ** 2)
        dz = 2 * (z - y)
        terms = y.size
    if spec.reduction == "mean":
        return loss / terms, dz / terms
    return loss, dz


def clip(spec, g):
    if spec.clip.kind == "value":
        return np.clip(g, -spec.clip.value, spec.clip.value)
    if spec.clip.kind == "norm":
        n = np.sqrt(np.sum(g.astype(np.float64) ** 2))
        if n > spec.clip.value:
            return g * (spec.clip.value / (n + 1e-6))
    return g


def update(spec, theta, g, st):
    o = spec.optimizer
    st["step"] += 1
    if o.kind == "sgd":
        if o.momentum:
            st["m"] = o.momentum * st["m"] + g
            u = g + o.momentum * st["m"] if o.nesterov else st["m"]
        else:
            u = g
        theta -= o.lr * u
    elif o.kind == "adagrad":
        st["m"] += g * g
        theta -= o.lr * g / np.sqrt(st["m"] + o.eps)
    elif o.kind == "rmsprop":
        st["v"] = o.alpha * st["v"] + (1 - o.alpha) * g * g
        theta -= o.lr * g / (np.sqrt(st["v"]) + o.eps)
    else:
        st["m"] = o.beta1 * st["m"] + (1 - o.beta1) * g
        st["v"] = o.beta2 * st["v"] + (1 - o.beta2) * g * g
        mh = st["m"] / (1 - o.beta1 ** st["step"])
        vh = st["v"] / (1 - o.beta2 ** st["step"])
        theta -= o.lr * mh / (np.sqrt(vh) + o.eps)


def window_grad(spec, P, x, h_start, c_start, loss_from, targets_rows):
    """Forward a window from a detached state; loss on outputs [loss_from:]."""
    lay = spec.layout
    res = F.forward(lay.cell, x, P["weight_ih"], P["weight_hh"], P.get("bias_ih"),
                    P.get("bias_hh"), h_start, c_start, backend="numpy", training=True)
    hs = res.output[loss_from:]
    z = hs @ P["weight_hy"].T + (P["bias_y"] if "bias_y" in P else 0)
    loss, dz = head(spec, z, targets_rows)
    d_out = np.zeros_like(res.output)
    d_out[loss_from:] = dz @ P["weight_hy"]
    g = F.backward(res, d_out)
    G = np.zeros(lay.size, x.dtype)
    GV = lay.views(G)
    GV["weight_ih"][...] = g.weight_ih
    GV["weight_hh"][...] = g.weight_hh
    if lay.has_bias_ih:
        GV["bias_ih"][...] = g.bias_ih
    if lay.has_bias_hh:
        GV["bias_hh"][...] = g.bias_hh
    GV["weight_hy"][...] = dz.reshape(-1, lay.output_size).T @ hs.reshape(-1, lay.hidden_size)
    if lay.head_bias:
        GV["bias_y"][...] = dz.reshape(-1, lay.output_size).sum(0)
    return loss, G, res


def reference(spec, theta, inputs, targets, h0, c0):
    lay = spec.layout
    th = theta.copy()
    x = one_hot(inputs, lay.input_size, th.dtype) if spec.index_input else inputs
    T = x.shape[0]
    st = {"m": np.zeros_like(th), "v": np.zeros_like(th), "step": 0}
    grad_sum = np.zeros_like(th)
    if spec.depth is not None:  # one update; every output from its own detached state
        P = lay.views(th)
        full = F.forward(lay.cell, x, P["weight_ih"], P["weight_hh"], P.get("bias_ih"),
                         P.get("bias_hh"), h0, c0, backend="numpy", training=True)
        steps = [T - 1] if spec.many_to_one else range(T)
        loss, G = 0.0, np.zeros_like(th)
        scale_fix = 1.0
        if spec.reduction == "mean":  # the mean is over every loss term of the window
            n_terms = len(steps) * x.shape[1] * (1 if spec.head == "softmax_ce" else lay.output_size)
            scale_fix = 1.0 / n_terms
        sum_spec = tr.TrainSpec(lay, head=spec.head, reduction="sum", depth=0)
        for t in steps:
            s = max(0, t - spec.depth)
            hs = h0 if s == 0 else full.output[s - 1]
            cs = None if c0 is None else (c0 if s == 0 else full.saved.workspace[s - 1][:, 4 * lay.hidden_size:])
            y = targets if spec.many_to_one else targets[t]
            l, g, _ = window_grad(sum_spec, P, x[s:t + 1], hs, cs, t - s, y[None])
            loss, G = loss + l, G + g
        G = clip(spec, G * scale_fix)
        if spec.optimizer is None:
            grad_sum += G
        else:
            update(spec, th, G, st)
        return th, np.array([loss * scale_fix]), full.output[-1], full.c_n, (G if spec.optimizer else grad_sum)
    k1, k2 = spec.k1, spec.window
    h_carry, c_carry = h0, c0
    losses, last_g = [], None
    t_prev = 0
    while t_prev < T:
        t = min(t_prev + k1, T)
        s = max(0, t - k2)
        s_next = max(0, min(t + k1, T) - k2)
        P = lay.views(th)
        if not spec.many_to_one or t == T:
            first = T - 1 if spec.many_to_one else t_prev
            y = targets[None] if spec.many_to_one else targets[first:t]
            loss, G, res = window_grad(spec, P, x[s:t], h_carry, c_carry, first - s, y)
            G = clip(spec, G)
            last_g = G
            if spec.optimizer is None:
                grad_sum += G
            else:
                update(spec, th, G, st)
        else:
            loss = 0.0
            res = F.forward(lay.cell, x[s:t], P["weight_ih"], P["weight_hh"], P.get("bias_ih"),
                            P.get("bias_hh"), h_carry, c_carry, backend="numpy", training=True)
        losses.append(loss)
        if t == T:
            h_fin, c_fin = res.h_n, res.c_n
        elif s_next > s:
            h_carry = res.output[s_next - s - 1]
            if c0 is not None:
                c_carry = res.saved.workspace[s_next - s - 1][:, 4 * lay.hidden_size:].copy()
        t_prev = t
    return th, np.array(losses), h_fin, c_fin, (last_g if spec.optimizer else grad_sum)


# ---------------------------------------------------------------- cases

CASES = [
    # (cell, k1, k2, depth, index, head, reduction, many_to_one, clip, optimizer)
    ("rnn_tanh", 3, 3, None, True, "softmax_ce", "sum", False, tr.Clip("value", 5.0), tr.Adagrad(0.1)),
    ("rnn_relu", 2, 5, None, False, "mse", "mean", False, tr.Clip("norm", 1.0), tr.SGD(0.05, 0.9, True)),
    ("rnn_sigmoid", 4, 4, None, False, "sigmoid_bce", "sum", False, tr.Clip(), tr.RMSprop(0.01)),
    ("lstm", 3, 3, None, True, "softmax_ce", "mean", False, tr.Clip("norm", 0.5), tr.Adam(0.01)),
    ("lstm", 2, 5, None, False, "sigmoid_bce", "mean", False, tr.Clip("value", 0.1), tr.SGD(0.1, 0.5)),
    ("gru", 3, 7, None, True, "softmax_ce", "sum", False, tr.Clip(), tr.Adam(0.02)),
    ("gru", 4, 4, None, False, "mse", "sum", True, tr.Clip("value", 5.0), tr.SGD(0.05)),
    ("lstm", 5, 5, None, False, "softmax_ce", "sum", True, tr.Clip(), tr.RMSprop(0.01)),
    ("rnn_tanh", 4, 4, None, True, "softmax_ce", "sum", False, tr.Clip("value", 5.0), None),
    ("rnn_tanh", None, None, 2, True, "softmax_ce", "sum", False, tr.Clip(), None),
    ("lstm", None, None, 1, False, "mse", "mean", False, tr.Clip(), tr.Adam(0.01)),
    ("gru", None, None, 3, True, "softmax_ce", "sum", False, tr.Clip("value", 1.0), None),
    ("rnn_relu", None, None, 20, False, "sigmoid_bce", "sum", False, tr.Clip(), None),
    # issue 12 (an 11th field: the layout's bias): the sigmoid_mse head, one recurrent bias
    ("rnn_sigmoid", 4, 4, None, False, "sigmoid_mse", "sum", False, tr.Clip(), tr.SGD(0.5), False),
    ("gru", 2, 5, None, False, "sigmoid_mse", "mean", True, tr.Clip("norm", 0.1), tr.Adam(0.02), "ih"),
    ("lstm", None, None, 2, False, "sigmoid_mse", "sum", False, tr.Clip(), None, "ih"),
    ("rnn_tanh", 3, 3, None, True, "softmax_ce", "sum", False, tr.Clip("value", 5.0), tr.Adagrad(0.1), "ih"),
    ("gru", None, None, 3, True, "softmax_ce", "sum", False, tr.Clip("value", 1.0), None, "ih"),
    ("lstm", 3, 4, None, False, "mse", "sum", False, tr.Clip(), tr.RMSprop(0.01), "ih"),
]


def make_problem(case, dtype, seed):
    cell, k1, k2, depth, index, head_, red, m2o, clip_, opt = case[:10]
    bias = case[10] if len(case) > 10 else seed % 2 == 0
    rng = np.random.default_rng(seed)
    V, H, O, T, B = 5, 4, 3 if head_ != "softmax_ce" or not index else 5, 11, 2
    if head_ == "softmax_ce":
        O = 5
    lay = tr.Layout(cell, V, H, O, bias=bias, head_bias=True)
    kw = dict(depth=depth) if depth is not None else dict(k1=k1, k2=k2)
    spec = tr.TrainSpec(lay, head=head_, index_input=index, many_to_one=m2o, reduction=red,
                        clip=clip_, optimizer=opt, **kw)
    theta = lay.init(dtype, seed=seed)
    inputs = rng.integers(0, V, (T, B)) if index else rng.standard_normal((T, B, V)).astype(dtype)
    if head_ == "softmax_ce":
        targets = rng.integers(0, O, (B,) if m2o else (T, B))
    elif head_ in ("sigmoid_bce", "sigmoid_mse"):
        targets = rng.uniform(0, 1, (B, O) if m2o else (T, B, O)).astype(dtype)
    else:
        targets = rng.standard_normal((B, O) if m2o else (T, B, O)).astype(dtype)
    h0 = (0.5 * rng.standard_normal((B, H))).astype(dtype)
    c0 = (0.5 * rng.standard_normal((B, H))).astype(dtype) if cell == "lstm" else None
    return spec, theta, inputs, targets, h0, c0


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}-{c[5]}-{'d' + str(c[3]) if c[3] is not None else f'k{c[1]},{c[2]}'}"
                         f"-{'idx' if c[4] else 'dense'}-{c[6]}{'-m2o' if c[7] else ''}-{c[9].kind if c[9] else 'grad'}"
                         f"{'-bias_' + str(c[10]) if len(c) > 10 else ''}")
def test_trainer_matches_brute_force(case, trainer, dtype):
    spec, theta, inputs, targets, h0, c0 = make_problem(case, dtype, seed=CASES.index(case))
    want_theta, want_losses, want_h, want_c, want_g = reference(
        spec, theta.astype(np.float64), inputs if spec.index_input else inputs.astype(np.float64),
        targets if targets.dtype.kind == "i" else targets.astype(np.float64),
        h0.astype(np.float64), None if c0 is None else c0.astype(np.float64))
    th = theta.copy()
    if spec.optimizer is None:
        res = tr.sequence_gradients(spec, th, inputs, targets, h0=h0, c0=c0, backend=trainer)
        np.testing.assert_array_equal(th, theta)  # no update without an optimizer
    else:
        res = tr.fit_sequence(spec, th, inputs, targets, h0=h0, c0=c0, backend=trainer)
    errors = {"theta": rel_err(th, want_theta), "losses": rel_err(res.losses, want_losses),
              "h_n": rel_err(res.h_n, want_h), "grad": rel_err(res.grad, want_g)}
    if want_c is not None:
        errors["c_n"] = rel_err(res.c_n, want_c)
    print(f"\n[{trainer}/{np.dtype(dtype).name}] " + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: {errors[worst]:.3e}"


def test_windows_one_call_at_a_time_equal_one_call(trainer):
    """Windowed training over a sequence equals feeding it window by window,
    carrying the state and the optimizer state across calls. (T is a multiple
    of k1: otherwise the whole-sequence run's last window reaches back k2
    steps, past the start of the last piece, as TRAINING.md defines.)"""
    spec, theta, inputs, targets, h0, _ = make_problem(CASES[0], np.float64, seed=0)
    inputs, targets = inputs[:9], targets[:9]
    whole = theta.copy()
    r = tr.fit_sequence(spec, whole, inputs, targets, h0=h0, backend=trainer)
    piece = theta.copy()
    state, h, losses = tr.OptimizerState.zeros_like(piece), h0, []
    for t0 in range(0, inputs.shape[0], spec.k1):
        rr = tr.fit_sequence(spec, piece, inputs[t0:t0 + spec.k1], targets[t0:t0 + spec.k1],
                             h0=h, state=state, backend=trainer)
        h = rr.h_n
        losses.extend(rr.losses)
    assert state.step == len(r.losses)
    assert rel_err(piece, whole) <= 1e-12 and rel_err(np.array(losses), r.losses) <= 1e-12
    assert rel_err(h, r.h_n) <= 1e-12


def test_training_arguments_are_checked():
    lay = tr.Layout("gru", 5, 4, 5)
    with pytest.raises(ValueError, match="1 <= k1 <= k2"):
        tr.TrainSpec(lay, k1=5, k2=3)
    with pytest.raises(ValueError, match="head must be one of"):
        tr.TrainSpec(lay, head="hinge")
    spec = tr.TrainSpec(lay, index_input=True, k1=2, optimizer=tr.SGD(0.1))
    theta = lay.init(np.float64, seed=0)
    idx = np.zeros((4, 1), np.int64)
    with pytest.raises(ValueError, match=r"indices in \[0, 5\)"):
        tr.fit_sequence(spec, theta, idx + 5, idx)
    with pytest.raises(TypeError, match="integer class indices"):
        tr.fit_sequence(spec, theta, idx, idx.astype(np.float64))
    with pytest.raises(ValueError, match=r"targets must have shape \(4, 1\)"):
        tr.fit_sequence(spec, theta, idx, idx[:3])
    with pytest.raises(ValueError, match=r"theta must have shape"):
        tr.fit_sequence(spec, theta[:-1].copy(), idx, idx)
    ro = theta.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        tr.fit_sequence(spec, ro, idx, idx)
    with pytest.raises(ValueError, match="sequence_gradients"):
        tr.fit_sequence(tr.TrainSpec(lay, index_input=True), theta, idx, idx)

"""fastrnn.dropin against the two tutorials' own loops, written out here.

The references below are this file's own plain-NumPy versions of the
original functions, kept in their original shape (not vectorised): for
min-char-rnn's lossFun a one-hot column per step, a per-step forward loop
with dictionaries of states, a reversed loop carrying ``dhnext``, then
``np.clip(..., -5, 5)`` on every summed gradient; for wildml's bptt the
forward with an extra zero row as the state before step 0, and the nested
loop that, for each output t, walks back through steps t .. max(0, t-k).
(min-char-rnn.py is Andrej Karpathy's, BSD License; the RNNLM is Denny
Britz's WildML "Recurrent Neural Networks Tutorial", rnn-tutorial-rnnlm.)
They run in float64 (float32 problems are upcast for the reference), and
each backend with a sequence trainer must match them: float64 to 1e-10
relative, float32 to 1e-4 (max|diff| / max|ref| per array).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastrnn import dropin

from conftest import TOLERANCE, rel_err


# ------------------------------------------------- the tutorials, as written

def ref_min_char_rnn_loss(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """min-char-rnn's lossFun: per-step loops, one-hot columns, dhnext, clip."""
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0.0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1))
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
        ys[t] = np.dot(Why, hs[t]) + by
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
        loss += -np.log(ps[t][targets[t], 0])
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[-1])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext
        dhraw = (1 - hs[t] * hs[t]) * dh
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in (dWxh, dWhh, dWhy, dbh, dby):
        np.clip(dparam, -5, 5, out=dparam)
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def ref_wildml_bptt(x, y, U, V, W, bptt_truncate):
    """wildml's RNNNumpy.forward_propagation + bptt, nested truncated loop."""
    T = len(x)
    hidden_dim, word_dim = U.shape
    s = np.zeros((T + 1, hidden_dim))  # s[-1] is the zero state before step 0
    o = np.zeros((T, V.shape[0]))
    for t in range(T):
        s[t] = np.tanh(U[:, x[t]] + W.dot(s[t - 1]))
        e = np.exp(V.dot(s[t]))
        o[t] = e / np.sum(e)
    dLdU, dLdV, dLdW = np.zeros(U.shape), np.zeros(V.shape), np.zeros(W.shape)
    delta_o = o
    delta_o[np.arange(len(y)), y] -= 1.0
    for t in np.arange(T)[::-1]:
        dLdV += np.outer(delta_o[t], s[t].T)
        delta_t = V.T.dot(delta_o[t]) * (1 - s[t] ** 2)
        for bptt_step in np.arange(max(0, t - bptt_truncate), t + 1)[::-1]:
            dLdW += np.outer(delta_t, s[bptt_step - 1])
            dLdU[:, x[bptt_step]] += delta_t
            delta_t = W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
    return dLdU, dLdV, dLdW


# ------------------------------------------------------------------ problems

def minchar_problem(V, H, T, scale, seed, dtype):
    rng = np.random.default_rng(seed)
    g = scale / np.sqrt(H)  # scale ~ gain of the recurrence (> 1.5 gets chaotic)
    p = dict(hprev=np.tanh(rng.standard_normal((H, 1))),
             Wxh=scale * rng.standard_normal((H, V)), Whh=g * rng.standard_normal((H, H)),
             Why=g * rng.standard_normal((V, H)), bh=g * rng.standard_normal((H, 1)),
             by=g * rng.standard_normal((V, 1)))
    inputs = [int(i) for i in rng.integers(0, V, T)]
    targets = [int(i) for i in rng.integers(0, V, T)]
    return inputs, targets, {k: a.astype(dtype) for k, a in p.items()}


def wildml_problem(vocab, H, T, scale, seed, dtype):
    rng = np.random.default_rng(seed)
    U = rng.uniform(-scale / np.sqrt(vocab), scale / np.sqrt(vocab), (H, vocab))
    V = rng.uniform(-scale / np.sqrt(H), scale / np.sqrt(H), (vocab, H))
    W = rng.uniform(-scale / np.sqrt(H), scale / np.sqrt(H), (H, H))
    x = [int(i) for i in rng.integers(0, vocab, T)]
    y = [int(i) for i in rng.integers(0, vocab, T)]
    return x, y, U.astype(dtype), V.astype(dtype), W.astype(dtype)


MINCHAR_NAMES = ("Wxh", "Whh", "Why", "bh", "by")
# (V, H, T, weight scale): tiny weights as the tutorial initialises them, and
# larger ones with long windows, so that summed gradients exceed 5 and the clip
# is exercised (the recurrence's gain stays moderate: a chaotic one amplifies
# float32 rounding past any fixed tolerance, whatever the implementation).
MINCHAR_SIZES = [(5, 3, 1, 1.0), (7, 4, 2, 0.03), (11, 6, 9, 1.0), (13, 8, 25, 1.2),
                 (65, 20, 25, 1.0), (3, 17, 40, 1.2)]


@pytest.mark.parametrize("size", MINCHAR_SIZES, ids=lambda s: "V{}-H{}-T{}-s{}".format(*s))
def test_min_char_rnn_loss_matches_the_tutorial(size, trainer, dtype):
    V, H, T, scale = size
    inputs, targets, p = minchar_problem(V, H, T, scale, seed=sum(size[:3]), dtype=dtype)
    frozen = {k: a.copy() for k, a in p.items()}
    want = ref_min_char_rnn_loss(inputs, targets, p["hprev"].astype(np.float64),
                                 *(p[n].astype(np.float64) for n in MINCHAR_NAMES))
    got = dropin.min_char_rnn_loss(inputs, targets, p["hprev"], *(p[n] for n in MINCHAR_NAMES),
                                   backend=trainer)
    assert isinstance(got[0], float)
    for name, g, arg in zip(MINCHAR_NAMES + ("hlast",), got[1:], [p[n] for n in MINCHAR_NAMES] + [p["hprev"]]):
        assert g.shape == arg.shape and g.dtype == arg.dtype, name
    for name in p:  # nothing passed in was modified
        np.testing.assert_array_equal(p[name], frozen[name])
    errors = {"loss": rel_err(got[0], want[0])}
    errors.update({n: rel_err(g, w) for n, g, w in zip(MINCHAR_NAMES + ("hlast",), got[1:], want[1:])})
    print(f"\n[{trainer}/{np.dtype(dtype).name}] " + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: {errors[worst]:.3e}"


def test_min_char_rnn_cases_exercise_the_clip():
    """At least one case above has summed gradients beyond +-5 (so the clip
    after the sum is tested), and at least one has none."""
    clipped = []
    for V, H, T, scale in MINCHAR_SIZES:
        inputs, targets, p = minchar_problem(V, H, T, scale, seed=V + H + T, dtype=np.float64)
        d = ref_min_char_rnn_loss(inputs, targets, p["hprev"], *(p[n] for n in MINCHAR_NAMES))[1:6]
        clipped.append(any(np.any(np.abs(a) == 5) for a in d))
    assert any(clipped) and not all(clipped)


def tutorial_training_loop(loss_fun, data, init, seq_length, lr, windows):
    """min-char-rnn's main loop for ``windows`` windows (hprev carried, Adagrad
    on the clipped gradients), with ``loss_fun`` as its lossFun."""
    params = [init[n].copy() for n in MINCHAR_NAMES]
    mems = [np.zeros_like(a) for a in params]
    hprev, losses = np.zeros((init["Whh"].shape[0], 1)), []
    for p in range(0, windows * seq_length, seq_length):
        inputs, targets = list(data[p:p + seq_length]), list(data[p + 1:p + seq_length + 1])
        loss, *grads, hprev = loss_fun(inputs, targets, hprev, *params)
        losses.append(loss)
        for param, dparam, mem in zip(params, grads, mems):
            mem += dparam * dparam
            param += -lr * dparam / np.sqrt(mem + 1e-8)
    return np.array(losses), hprev, dict(zip(MINCHAR_NAMES, params))


def loop_problem(V=9, H=7, seq_length=6, windows=3, seed=3):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, V, windows * seq_length + 1)
    init = {"Wxh": 0.5 * rng.standard_normal((H, V)), "Whh": 0.5 * rng.standard_normal((H, H)),
            "Why": 0.5 * rng.standard_normal((V, H)), "bh": np.zeros((H, 1)), "by": np.zeros((V, 1))}
    return data, init


def test_min_char_rnn_training_loop(trainer):
    """Three windows of the tutorial's main loop with the drop-in in place of lossFun."""
    data, init = loop_problem()
    l0, h0, p0 = tutorial_training_loop(ref_min_char_rnn_loss, data, init, 6, 0.1, 3)
    l1, h1, p1 = tutorial_training_loop(lambda *a: dropin.min_char_rnn_loss(*a, backend=trainer),
                                        data, init, 6, 0.1, 3)
    assert rel_err(l1, l0) <= 1e-10
    assert rel_err(h1, h0) <= 1e-10
    for name in MINCHAR_NAMES:
        assert rel_err(p1[name], p0[name]) <= 1e-10, name


def test_the_benchmark_baseline_is_the_tutorial_loop():
    """fastrnn bench times bench.minchar.numpy_original as min-char-rnn's own
    loop: in float64 it must be exactly the loop written out above."""
    from fastrnn.bench.minchar import numpy_original
    data, init = loop_problem(V=11, H=8, seq_length=5, windows=4)
    want_losses, want_h, want_p = tutorial_training_loop(ref_min_char_rnn_loss, data, init, 5, 0.1, 4)
    params = {n: a.copy() for n, a in init.items()}
    got = numpy_original(list(data), 11, 8, 5, 0.1, params, np.float64)
    np.testing.assert_array_equal(got["losses"], want_losses)
    np.testing.assert_array_equal(got["hprev"], want_h)
    for name in MINCHAR_NAMES:
        np.testing.assert_array_equal(params[name], want_p[name], err_msg=name)


WILDML_SIZES = [(4, 3, 1), (8, 5, 2), (10, 6, 7), (30, 12, 20), (3, 16, 33)]  # (vocab, H, T)


@pytest.mark.parametrize("depth", [0, 1, 4, "T-1", "T", "T+5"])
@pytest.mark.parametrize("size", WILDML_SIZES, ids=lambda s: "vocab{}-H{}-T{}".format(*s))
def test_wildml_bptt_matches_the_tutorial(size, depth, trainer, dtype):
    vocab, H, T = size
    k = {"T-1": T - 1, "T": T, "T+5": T + 5}.get(depth, depth)
    x, y, U, V, W = wildml_problem(vocab, H, T, scale=2.0, seed=vocab * H + T, dtype=dtype)
    frozen = (U.copy(), V.copy(), W.copy())
    want = ref_wildml_bptt(x, y, U.astype(np.float64), V.astype(np.float64), W.astype(np.float64), k)
    got = dropin.wildml_bptt(x, y, U, V, W, k, backend=trainer)
    for name, g, arg in zip(("dLdU", "dLdV", "dLdW"), got, (U, V, W)):
        assert g.shape == arg.shape and g.dtype == arg.dtype, name
    for a, b in zip((U, V, W), frozen):
        np.testing.assert_array_equal(a, b)
    errors = {n: rel_err(g, w) for n, g, w in zip(("dLdU", "dLdV", "dLdW"), got, want)}
    print(f"\n[{trainer}/{np.dtype(dtype).name} k={k}] " + " ".join(f"{n}={e:.1e}" for n, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: {errors[worst]:.3e}"


def test_wildml_truncation_changes_the_gradient(trainer):
    """Sanity of the cases above: depths 0 < 1 < T-1 give different dLdW and
    every depth >= T-1 gives the full-BPTT one."""
    x, y, U, V, W = wildml_problem(10, 6, 7, scale=2.0, seed=1, dtype=np.float64)
    dW = {k: dropin.wildml_bptt(x, y, U, V, W, k, backend=trainer)[2] for k in (0, 1, 6, 7, 100)}
    assert rel_err(dW[0], dW[1]) > 1e-3 and rel_err(dW[1], dW[6]) > 1e-3
    assert rel_err(dW[7], dW[6]) <= 1e-14 and rel_err(dW[100], dW[6]) <= 1e-14


# --------------------------------------------------------------- edge cases

def test_empty_window(trainer):
    _, _, p = minchar_problem(5, 3, 0, 0.5, seed=0, dtype=np.float32)
    loss, *grads, hlast = dropin.min_char_rnn_loss([], [], p["hprev"], *(p[n] for n in MINCHAR_NAMES),
                                                   backend=trainer)
    assert loss == 0.0 and all(not g.any() for g in grads)
    np.testing.assert_array_equal(hlast, p["hprev"])
    assert hlast is not p["hprev"]
    _, _, U, V, W = wildml_problem(4, 3, 0, 1.0, seed=0, dtype=np.float64)
    assert all(not g.any() for g in dropin.wildml_bptt([], [], U, V, W, 4, backend=trainer))


def test_bad_arguments():
    inputs, targets, p = minchar_problem(5, 3, 4, 0.5, seed=0, dtype=np.float64)
    args = [p["hprev"]] + [p[n] for n in MINCHAR_NAMES]
    mixed = list(args)
    mixed[2] = mixed[2].astype(np.float32)  # Whh
    with pytest.raises(TypeError, match="Whh has dtype float32"):
        dropin.min_char_rnn_loss(inputs, targets, *mixed)
    with pytest.raises(TypeError, match="float32 or float64"):
        dropin.min_char_rnn_loss(inputs, targets, *([args[0].astype(np.int64)] + args[1:]))
    with pytest.raises(ValueError, match=r"bh must have shape"):
        dropin.min_char_rnn_loss(inputs, targets, *(args[:4] + [args[4][:, 0]] + args[5:]))
    with pytest.raises(ValueError, match="same length"):
        dropin.min_char_rnn_loss(inputs, targets[:-1], *args)
    with pytest.raises(ValueError, match=r"indices in \[0, 5\)"):
        dropin.min_char_rnn_loss([0, 1, 2, 5], targets, *args)
    with pytest.raises(TypeError, match="integer indices"):
        dropin.min_char_rnn_loss([0.0, 1.0, 2.0, 3.0], targets, *args)
    x, y, U, V, W = wildml_problem(4, 3, 5, 1.0, seed=0, dtype=np.float64)
    with pytest.raises(ValueError, match="bptt_truncate must be an integer >= 0, got -1"):
        dropin.wildml_bptt(x, y, U, V, W, -1)
    with pytest.raises(TypeError, match="bptt_truncate must be an integer"):
        dropin.wildml_bptt(x, y, U, V, W, 2.5)
    with pytest.raises(ValueError, match=r"W must have shape"):
        dropin.wildml_bptt(x, y, U, V, W[:, :2], 2)

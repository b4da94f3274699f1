"""min-char-rnn's whole training loop against fastrnn.training.fit_sequence.

Beside fit_sequence this file holds the tutorial's main loop restated in
NumPy in its own shape (Andrej Karpathy's min-char-rnn.py, BSD License): a
data pointer ``p`` stepping by ``seq_length``, ``hprev`` zeroed when a pass
starts again at the beginning of the data, ``lossFun`` (test_dropin's
restatement, as written: one-hot columns, per-step loops, ``np.clip(-5, 5)``
on the summed gradients) and the Adagrad update ``mem += dparam * dparam;
param += -learning_rate * dparam / np.sqrt(mem + 1e-8)``, with one recurrent
bias ``bh``.

fastrnn reproduces it with ``Layout("rnn_tanh", V, H, V, bias="ih")`` (theta
without bias_hh), index input, ``softmax_ce`` summed, windowed TBPTT(25, 25),
``Clip("value", 5)`` and ``Adagrad(0.1, eps=1e-8)`` (min-char-rnn's: eps inside
the root), one ``fit_sequence`` call per pass over the data from a zero
state, the optimizer state carried between calls. Float64 must agree to
1e-10 (losses of every window, every parameter, the final hidden state);
float32 to 1e-4 over a shorter run. The control shows why one bias is
needed: with torch's two biases each gets its own Adagrad step, the
effective bias moves about twice as far, and the same loop does not match.
Not here: the tutorial's sampling and smoothed loss (printing only).
"""
from __future__ import annotations

import numpy as np
import pytest

from fastrnn import training as tr

from conftest import TOLERANCE, rel_err
from test_dropin import ref_min_char_rnn_loss

TEXT = ("the quick brown fox jumps over the lazy dog. a recurrent network reads one "
        "character at a time and guesses the next; min-char-rnn trains it with adagrad "
        "over windows of twenty-five characters, carrying its hidden state from one "
        "window to the next until the data runs out and it starts again.")
SEQ_LENGTH, LEARNING_RATE = 25, 1e-1


def initial_parameters(V, H, seed, dtype):
    """min-char-rnn's initialisation (randn * 0.01, zero biases), seeded."""
    rng = np.random.default_rng(seed)
    return dict(Wxh=(rng.standard_normal((H, V)) * 0.01).astype(dtype),
                Whh=(rng.standard_normal((H, H)) * 0.01).astype(dtype),
                Why=(rng.standard_normal((V, H)) * 0.01).astype(dtype),
                bh=np.zeros((H, 1), dtype), by=np.zeros((V, 1), dtype))


def min_char_rnn_training(data_ix, V, params, iterations):
    """The tutorial's main loop (float64, as the tutorial computes); returns
    every iteration's loss, the parameters and the last hprev."""
    Wxh, Whh, Why, bh, by = (params[k].astype(np.float64) for k in ("Wxh", "Whh", "Why", "bh", "by"))
    hidden_size = Wxh.shape[0]
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)
    n, p, losses = 0, 0, []
    while n < iterations:
        if p + SEQ_LENGTH + 1 >= len(data_ix) or n == 0:
            hprev = np.zeros((hidden_size, 1))  # reset RNN memory
            p = 0  # go from start of data
        inputs = data_ix[p:p + SEQ_LENGTH]
        targets = data_ix[p + 1:p + SEQ_LENGTH + 1]
        loss, dWxh, dWhh, dWhy, dbh, dby, hprev = ref_min_char_rnn_loss(
            inputs, targets, hprev, Wxh, Whh, Why, bh, by)
        losses.append(loss)
        for param, dparam, mem in zip([Wxh, Whh, Why, bh, by], [dWxh, dWhh, dWhy, dbh, dby],
                                      [mWxh, mWhh, mWhy, mbh, mby]):
            mem += dparam * dparam
            param += -LEARNING_RATE * dparam / np.sqrt(mem + 1e-8)  # adagrad update
        p += SEQ_LENGTH
        n += 1
    return np.array(losses), dict(Wxh=Wxh, Whh=Whh, Why=Why, bh=bh, by=by), hprev


def fastrnn_training(data_ix, V, params, iterations, dtype, backend, bias="ih"):
    """The same schedule through fit_sequence: one call per pass (the pass's
    windows; the last pass may stop early), each from a zero state."""
    H = params["Wxh"].shape[0]
    layout = tr.Layout("rnn_tanh", V, H, V, bias=bias, head_bias=True)
    theta = np.zeros(layout.size, dtype)
    P = layout.views(theta)
    P["weight_ih"][...], P["weight_hh"][...] = params["Wxh"], params["Whh"]
    P["bias_ih"][...] = params["bh"][:, 0]  # with bias=True, bias_hh starts at 0
    P["weight_hy"][...], P["bias_y"][...] = params["Why"], params["by"][:, 0]
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        k1=SEQ_LENGTH, clip=tr.Clip("value", 5.0),
                        optimizer=tr.Adagrad(LEARNING_RATE, eps=1e-8))
    # the tutorial's pointer visits p = 0, 25, ... while p + 26 < len(data)
    per_pass = (len(data_ix) - SEQ_LENGTH - 2) // SEQ_LENGTH + 1
    data = np.asarray(data_ix, np.int64)
    state, losses, done = tr.OptimizerState.zeros_like(theta), [], 0
    while done < iterations:
        windows = min(per_pass, iterations - done)
        steps = windows * SEQ_LENGTH
        res = tr.fit_sequence(spec, theta, data[:steps, None], data[1:steps + 1, None],
                              h0=np.zeros((1, H), dtype), state=state, backend=backend)
        losses.extend(res.losses)
        done += windows
    P = layout.views(theta)
    bh = P["bias_ih"] + (P["bias_hh"] if "bias_hh" in P else 0)  # the effective bias
    return np.array(losses), dict(Wxh=P["weight_ih"], Whh=P["weight_hh"], Why=P["weight_hy"],
                                  bh=bh[:, None], by=P["bias_y"][:, None]), res.h_n.T


def problem():
    chars = sorted(set(TEXT))
    data_ix = [chars.index(ch) for ch in TEXT]
    return data_ix, len(chars)


@pytest.mark.parametrize("hidden_size", [8, 12])
def test_fit_sequence_with_one_bias_is_min_char_rnn_training(trainer, dtype, hidden_size):
    data_ix, V = problem()
    per_pass = (len(data_ix) - SEQ_LENGTH - 2) // SEQ_LENGTH + 1
    # float64: three whole passes and part of a fourth (pointer resets
    # included); float32 a shorter run: Adagrad's first steps move every
    # parameter by about lr * sign(g) whatever |g| is, so the rounding of a
    # small gradient is amplified by up to lr / sqrt(eps) = 1e3, and float32's
    # grows past 1e-4 within two passes
    iterations = 3 * per_pass + 4 if dtype == np.float64 else 6
    params = initial_parameters(V, hidden_size, seed=hidden_size, dtype=dtype)
    ref_losses, ref_params, ref_h = min_char_rnn_training(data_ix, V, params, iterations)
    losses, got, h = fastrnn_training(data_ix, V, params, iterations, dtype, trainer)
    assert losses.shape == (iterations,)
    errors = {"losses": rel_err(losses, ref_losses), "h": rel_err(h, ref_h)}
    errors.update((k, rel_err(got[k], ref_params[k])) for k in ref_params)
    print(f"\n[{trainer}/{np.dtype(dtype).name}] H={hidden_size}, {iterations} windows: "
          + " ".join(f"{k}={e:.1e}" for k, e in errors.items()))
    worst = max(errors, key=errors.get)
    assert errors[worst] <= TOLERANCE[np.dtype(dtype)], f"{worst}: {errors[worst]:.3e}"
    # training happened: the loss fell and the biases moved (the check is not vacuous)
    assert losses[-3:].mean() < ref_losses[:3].mean()
    assert np.abs(ref_params["bh"]).max() > 1e-2


def test_two_biases_do_not_reproduce_min_char_rnn(trainer):
    """The control: torch's layout (bias_ih and bias_hh) trains each bias with
    its own Adagrad step, so the effective bias bias_ih + bias_hh drifts from
    the tutorial's bh far beyond rounding."""
    data_ix, V = problem()
    params = initial_parameters(V, 8, seed=8, dtype=np.float64)
    _, ref_params, _ = min_char_rnn_training(data_ix, V, params, 6)
    _, got, _ = fastrnn_training(data_ix, V, params, 6, np.float64, trainer, bias=True)
    assert rel_err(got["bh"], ref_params["bh"]) > 0.1

"""The drop-ins called the way the tutorials call them: per-call time against the tutorials' own functions.

    fastrnn bench dropin                           # float32 and float64, every trainer
    fastrnn bench dropin --dtype float32 --backends c --repeat 7
    python bench/dropin.py --workloads min_char_rnn_loss

Two workloads, each one call per window as the tutorials' loops make it:

* ``min_char_rnn_loss``: min-char-rnn's ``lossFun`` (V = 65 characters,
  H = 100, a window of T = 25), written out below as
  :func:`tutorial_loss_fun` - one-hot columns, a Python loop over the steps
  forward and again backward, ``np.clip`` on each summed gradient - against
  :func:`fastrnn.dropin.min_char_rnn_loss` on the same arrays.
* ``wildml_bptt``: wildml's RNNLM ``bptt`` (vocabulary 8000, H = 100,
  T = 20, ``bptt_truncate`` = 4), written out below as
  :func:`tutorial_bptt` - forward_propagation, then the nested truncated
  loop - against :func:`fastrnn.dropin.wildml_bptt`.

For context each also times what the call costs underneath: ``kernel`` is
the C trainer's time per window inside one fused
:func:`fastrnn.training.sequence_gradients` call over many windows of the
same problem (the set-up paid once, so what a drop-in call cannot go below),
and ``sequence_gradients`` one call of it per window, as a user who builds
the flat theta themselves would make it.

The tutorials' functions are the originals with one change: the arrays they
create (one-hots, states, gradients) take the parameters' dtype, so that a
float32 run is float32 throughout rather than upcast by float64 zeros (the
same rule as fastrnn.bench.minchar's port; tests/test_dropin_calls.py checks
that in float64 they are test_dropin's references). Timings: the
contenders of a workload are timed round-robin, ``repeat`` rounds of
``calls`` calls each, and the best round gives the per-call time (the
machine's noise only ever adds time); ratios are within one run.

Attribution: :func:`tutorial_loss_fun` is min-char-rnn.py's ``lossFun``
("Minimal character-level Vanilla RNN model. Written by Andrej Karpathy
(@karpathy)", BSD License); :func:`tutorial_bptt` is the
``forward_propagation`` and ``bptt`` of Denny Britz's WildML "Recurrent
Neural Networks Tutorial" (rnn-tutorial-rnnlm, RNNNumpy).

What it is not: not part of the ``fastrnn bench`` matrix or its JSON file
(this prints a table of its own); nothing here is asserted on (tests never
time).
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from .. import dropin
from .. import training as tr
from ..backends import BACKENDS
from .minchar import check_trainer_backends


# ------------------------------------------------- the tutorials, as written

def tutorial_loss_fun(inputs, targets, hprev, Wxh, Whh, Why, bh, by):
    """min-char-rnn's ``lossFun`` with the parameters passed in (the arrays it
    creates in the parameters' dtype)."""
    dtype = Wxh.dtype
    vocab_size = Wxh.shape[1]
    xs, hs, ys, ps = {}, {}, {}, {}
    hs[-1] = np.copy(hprev)
    loss = 0
    for t in range(len(inputs)):
        xs[t] = np.zeros((vocab_size, 1), dtype)  # encode in 1-of-k representation
        xs[t][inputs[t]] = 1
        hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)  # hidden state
        ys[t] = np.dot(Why, hs[t]) + by  # unnormalized log probabilities for next chars
        ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))  # probabilities for next chars
        loss += -np.log(ps[t][targets[t], 0])  # softmax (cross-entropy loss)
    dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    dbh, dby = np.zeros_like(bh), np.zeros_like(by)
    dhnext = np.zeros_like(hs[0])
    for t in reversed(range(len(inputs))):
        dy = np.copy(ps[t])
        dy[targets[t]] -= 1  # backprop into y
        dWhy += np.dot(dy, hs[t].T)
        dby += dy
        dh = np.dot(Why.T, dy) + dhnext  # backprop into h
        dhraw = (1 - hs[t] * hs[t]) * dh  # backprop through tanh nonlinearity
        dbh += dhraw
        dWxh += np.dot(dhraw, xs[t].T)
        dWhh += np.dot(dhraw, hs[t - 1].T)
        dhnext = np.dot(Whh.T, dhraw)
    for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
        np.clip(dparam, -5, 5, out=dparam)  # clip to mitigate exploding gradients
    return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]


def tutorial_bptt(x, y, U, V, W, bptt_truncate):
    """wildml's ``RNNNumpy.forward_propagation`` and ``bptt`` with the
    parameters passed in (the arrays they create in the parameters' dtype)."""
    dtype = U.dtype
    # forward_propagation
    T = len(x)
    hidden_dim, word_dim = U.shape
    s = np.zeros((T + 1, hidden_dim), dtype)  # s[-1], the state before step 0, is zero
    o = np.zeros((T, word_dim), dtype)
    for t in np.arange(T):
        s[t] = np.tanh(U[:, x[t]] + W.dot(s[t - 1]))
        e = np.exp(V.dot(s[t]))
        o[t] = e / np.sum(e)
    # bptt
    T = len(y)
    dLdU, dLdV, dLdW = np.zeros(U.shape, dtype), np.zeros(V.shape, dtype), np.zeros(W.shape, dtype)
    delta_o = o
    delta_o[np.arange(len(y)), y] -= 1.
    for t in np.arange(T)[::-1]:
        dLdV += np.outer(delta_o[t], s[t].T)
        delta_t = V.T.dot(delta_o[t]) * (1 - (s[t] ** 2))
        for bptt_step in np.arange(max(0, t - bptt_truncate), t + 1)[::-1]:
            dLdW += np.outer(delta_t, s[bptt_step - 1])
            dLdU[:, x[bptt_step]] += delta_t
            delta_t = W.T.dot(delta_t) * (1 - s[bptt_step - 1] ** 2)
    return [dLdU, dLdV, dLdW]


# ------------------------------------------------------------------ problems

def minchar_arrays(V: int, H: int, T: int, dtype, seed: int = 0) -> dict:
    """min-char-rnn's initialisation (randn * 0.01, zero biases) and a window
    of random characters; hprev from a few steps of drift (not all zero)."""
    rng = np.random.default_rng(seed)
    return dict(inputs=[int(i) for i in rng.integers(0, V, T)],
                targets=[int(i) for i in rng.integers(0, V, T)],
                hprev=np.tanh(0.1 * rng.standard_normal((H, 1))).astype(dtype),
                Wxh=(rng.standard_normal((H, V)) * 0.01).astype(dtype),
                Whh=(rng.standard_normal((H, H)) * 0.01).astype(dtype),
                Why=(rng.standard_normal((V, H)) * 0.01).astype(dtype),
                bh=np.zeros((H, 1), dtype), by=np.zeros((V, 1), dtype))


def wildml_arrays(vocab: int, H: int, T: int, dtype, seed: int = 0) -> dict:
    """wildml's initialisation (uniform in +-1/sqrt(fan-in)) and a sentence."""
    rng = np.random.default_rng(seed)
    return dict(x=[int(i) for i in rng.integers(0, vocab, T)],
                y=[int(i) for i in rng.integers(0, vocab, T)],
                U=rng.uniform(-np.sqrt(1. / vocab), np.sqrt(1. / vocab), (H, vocab)).astype(dtype),
                V=rng.uniform(-np.sqrt(1. / H), np.sqrt(1. / H), (vocab, H)).astype(dtype),
                W=rng.uniform(-np.sqrt(1. / H), np.sqrt(1. / H), (H, H)).astype(dtype))


def _fused_kernel(spec: "tr.TrainSpec", theta, inputs, targets, windows: int, backend: str,
                  h0=None) -> Callable[[], None]:
    """One sequence_gradients call over ``windows`` copies of the window: its
    time / windows is the trainer's per-window cost without per-call set-up."""
    xs, ys = np.concatenate([inputs] * windows), np.concatenate([targets] * windows)
    return lambda: tr.sequence_gradients(spec, theta, xs, ys, h0=h0, backend=backend)


def minchar_contenders(V: int, H: int, T: int, dtype, backend: str) -> Dict[str, Callable]:
    a = minchar_arrays(V, H, T, dtype)
    params = [a[k] for k in ("hprev", "Wxh", "Whh", "Why", "bh", "by")]
    layout = tr.Layout("rnn_tanh", V, H, V, bias="ih", head_bias=True)
    theta = np.zeros(layout.size, dtype)
    P = layout.views(theta)
    P["weight_ih"][...], P["weight_hh"][...], P["weight_hy"][...] = a["Wxh"], a["Whh"], a["Why"]
    P["bias_ih"][...], P["bias_y"][...] = a["bh"][:, 0], a["by"][:, 0]
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum", k1=T,
                        clip=tr.Clip("value", 5.0))
    idx = np.array(a["inputs"], np.int64)[:, None]
    tgt = np.array(a["targets"], np.int64)[:, None]
    h0 = np.ascontiguousarray(a["hprev"].T)
    windows = 40
    fused = _fused_kernel(spec, theta, idx, tgt, windows, backend, h0)
    return {
        "tutorial": lambda: tutorial_loss_fun(a["inputs"], a["targets"], *params),
        "dropin": lambda: dropin.min_char_rnn_loss(a["inputs"], a["targets"], *params,
                                                   backend=backend),
        "sequence_gradients": lambda: tr.sequence_gradients(spec, theta, idx, tgt, h0=h0,
                                                            backend=backend),
        "kernel": (fused, windows),
    }


def wildml_contenders(vocab: int, H: int, T: int, k: int, dtype, backend: str
                      ) -> Dict[str, Callable]:
    a = wildml_arrays(vocab, H, T, dtype)
    layout = tr.Layout("rnn_tanh", vocab, H, vocab, bias=False, head_bias=False)
    theta = np.zeros(layout.size, dtype)
    P = layout.views(theta)
    P["weight_ih"][...], P["weight_hh"][...], P["weight_hy"][...] = a["U"], a["W"], a["V"]
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        depth=min(k, T - 1))
    idx = np.array(a["x"], np.int64)[:, None]
    tgt = np.array(a["y"], np.int64)[:, None]
    return {
        "tutorial": lambda: tutorial_bptt(a["x"], a["y"], a["U"], a["V"], a["W"], k),
        "dropin": lambda: dropin.wildml_bptt(a["x"], a["y"], a["U"], a["V"], a["W"], k,
                                             backend=backend),
        "sequence_gradients": lambda: tr.sequence_gradients(spec, theta, idx, tgt,
                                                            backend=backend),
    }


# -------------------------------------------------------------------- timing

def time_round_robin(contenders: Dict[str, object], calls: Dict[str, int], repeat: int
                     ) -> Dict[str, float]:
    """Seconds per call of each contender: ``repeat`` rounds, each timing
    ``calls[name]`` calls of every contender in turn, the best round kept. A
    contender given as ``(fn, windows)`` is one call covering that many
    windows, reported per window."""
    best = {name: float("inf") for name in contenders}
    for name, c in contenders.items():  # warm-up: numba compiles, buffers are touched
        (c[0] if isinstance(c, tuple) else c)()
    for _ in range(repeat):
        for name, c in contenders.items():
            fn, per = c if isinstance(c, tuple) else (c, 1)
            n = max(1, calls[name])
            t0 = time.perf_counter()
            for _ in range(n):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / (n * per))
    return best


def run(dtypes: Sequence[str] = ("float32", "float64"), backends: Optional[Sequence[str]] = None,
        repeat: int = 5, calls: int = 200, workloads: Sequence[str] = ("min_char_rnn_loss",
                                                                      "wildml_bptt"),
        verbose: bool = False) -> List[dict]:
    """Time the workloads; rows of ``workload, dtype, backend, contender,
    seconds`` (per call, or per window for ``kernel``) and ``tutorial_ratio``
    (the tutorial's time over this contender's, None for the tutorial)."""
    if backends is None:
        backends = tr.available_trainers()
    rows = []
    for workload in workloads:
        for dtype_name in dtypes:
            dtype = np.dtype(dtype_name)
            for backend in backends:
                if workload == "min_char_rnn_loss":
                    contenders = minchar_contenders(65, 100, 25, dtype, backend)
                    n = {"tutorial": max(1, calls // 5), "dropin": calls,
                         "sequence_gradients": calls, "kernel": max(1, calls // 40)}
                else:
                    contenders = wildml_contenders(8000, 100, 20, 4, dtype, backend)
                    n = {"tutorial": max(1, calls // 200), "dropin": max(1, calls // 20),
                         "sequence_gradients": max(1, calls // 20)}
                seconds = time_round_robin(contenders, n, repeat)
                base = seconds["tutorial"]
                for name, sec in seconds.items():
                    rows.append(dict(workload=workload, dtype=dtype.name, backend=backend,
                                     contender=name, seconds=sec,
                                     tutorial_ratio=None if name == "tutorial" else base / sec))
                    if verbose:
                        _print_row(rows[-1])
    return rows


def _print_header() -> None:
    print("drop-in calls (min_char_rnn_loss: V=65 H=100 T=25; wildml_bptt: vocab 8000 H=100 "
          "T=20 bptt_truncate 4); best round, per call (kernel: per window, fused)")
    print(f"{'workload':18s} {'dtype':8s} {'backend':7s} {'contender':19s} {'us/call':>10s} "
          f"{'x tutorial':>11s}")


def _print_row(row: dict) -> None:
    ratio = "-" if row["tutorial_ratio"] is None else f"{row['tutorial_ratio']:.1f}"
    print(f"{row['workload']:18s} {row['dtype']:8s} {row['backend']:7s} {row['contender']:19s} "
          f"{row['seconds'] * 1e6:10.1f} {ratio:>11s}", flush=True)


def main(argv=None, prog: Optional[str] = None) -> List[dict]:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"],
                    choices=["float32", "float64"])
    ap.add_argument("--backends", nargs="+", default=None, choices=list(BACKENDS),
                    help="fastrnn backends to time (default: every one with a trainer)")
    ap.add_argument("--workloads", nargs="+", default=["min_char_rnn_loss", "wildml_bptt"],
                    choices=["min_char_rnn_loss", "wildml_bptt"])
    ap.add_argument("--repeat", type=int, default=5, help="rounds (the best is kept)")
    ap.add_argument("--calls", type=int, default=200,
                    help="drop-in calls per round for min_char_rnn_loss (fewer for the "
                         "tutorial and for wildml_bptt)")
    args = ap.parse_args(argv)
    if args.repeat < 1 or args.calls < 1:
        ap.error("--repeat and --calls must be >= 1")
    check_trainer_backends(ap, args.backends)
    _print_header()
    return run(dtypes=args.dtype, backends=args.backends, repeat=args.repeat, calls=args.calls,
               workloads=args.workloads, verbose=True)


if __name__ == "__main__":
    main()

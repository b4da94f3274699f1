"""The min-char-rnn workload: the original NumPy training loop vs fastrnn, in one run.

    fastrnn bench minchar                        # 50,000 chars, float32 and float64
    python bench/minchar.py --chars 200000 --dtype float32 --backends c

Both contenders train the same character-level vanilla RNN (V = 65
characters, H = 100 tanh units, windows of seq_length = 25, hidden state
carried from window to window, gradients clipped to +-5, Adagrad with
lr = 0.1) from the same initial weights over the same characters, once each
per repeat, and the median wall time gives characters per second.

* "numpy original": a port of min-char-rnn's training loop as it is written:
  ``lossFun`` with a one-hot column per step, a Python loop over the
  window's steps forward and again backward (``dhnext``), ``np.clip`` on each
  summed gradient, then ``mem += d * d; p += -lr * d / np.sqrt(mem + 1e-8)``
  per parameter. The only change is a ``dtype`` for the arrays it creates
  (the one-hots, ``hprev``, the Adagrad memories), so that float32 runs are
  float32 throughout rather than upcast by float64 one-hots. The sampling
  and printing every 100 iterations are left out (not training), and the
  loop makes one pass over the corpus (the wrap-around reset is not reached).
* "fastrnn[<backend>]": one :func:`fastrnn.training.fit_sequence` call over
  the whole corpus: index input, softmax cross-entropy summed per window,
  windowed TBPTT(25, 25), ``Clip("value", 5)``, ``Adagrad(0.1)``, for every
  backend that has a sequence trainer. Same model, same number of updates;
  one difference in the arithmetic, not in the cost: fastrnn's tanh layer has
  two biases (``bias_ih``, ``bias_hh``, PyTorch's layout) where min-char-rnn
  has one ``bh``; both receive ``bh``'s gradient and Adagrad step, so the
  effective hidden bias moves twice as far per update. The smoothed losses
  printed at the end show both learn the same thing; the exact gradient
  equivalence is tested in tests/test_dropin.py.

The corpus is synthetic and deterministic: text drawn from a seeded
first-order Markov chain over 65 distinct characters (letters, digits,
space, full stop, newline), each character with a handful of likely
successors, so there is something to learn. Timings are wall-clock on
whatever else the machine is doing: compare ratios within one run. The
NumPy port's speed depends on NumPy's BLAS for its tiny matrix-vector
products (set OMP_NUM_THREADS / OPENBLAS_NUM_THREADS to pin it).

``run_comparison(...)`` returns the numbers (for ``fastrnn bench minchar``); it needs
only NumPy and fastrnn.

Attribution: ``numpy_original`` below ports the training loop of
min-char-rnn.py, "Minimal character-level Vanilla RNN model. Written by
Andrej Karpathy (@karpathy)", BSD License; a benchmark against that program
has to run its loop as written.
"""
from __future__ import annotations

import argparse
import statistics
import string
import time
from typing import Optional, Sequence

import numpy as np

from .. import training as tr
from ..backends import BACKENDS

ALPHABET = string.ascii_letters + string.digits + " .\n"  # 65 distinct characters
assert len(set(ALPHABET)) == 65


def synthetic_corpus(n_chars: int, seed: int = 0) -> str:
    """``n_chars`` characters of Markov-chain text over ALPHABET (all 65 appear
    when n_chars >= 65: the text starts with the alphabet itself)."""
    rng = np.random.default_rng(seed)
    V = len(ALPHABET)
    trans = rng.dirichlet(np.full(V, 0.05), size=V)  # sparse-ish rows: few likely successors
    cum = np.cumsum(trans, axis=1)
    out = np.empty(max(n_chars, 0), np.int64)
    head = min(n_chars, V)
    out[:head] = np.arange(head)
    u = rng.random(max(n_chars - head, 0))
    c = head - 1 if head else 0
    for i in range(head, n_chars):
        c = min(int(np.searchsorted(cum[c], u[i - head], side="right")), V - 1)
        out[i] = c
    return "".join(ALPHABET[i] for i in out)


# ------------------------------------------------ the original, as written

def init_params(vocab_size: int, hidden_size: int, dtype, seed: int = 0) -> dict:
    """min-char-rnn's initialisation: randn * 0.01, zero biases."""
    rng = np.random.default_rng(seed)
    return {
        "Wxh": (rng.standard_normal((hidden_size, vocab_size)) * 0.01).astype(dtype),
        "Whh": (rng.standard_normal((hidden_size, hidden_size)) * 0.01).astype(dtype),
        "Why": (rng.standard_normal((vocab_size, hidden_size)) * 0.01).astype(dtype),
        "bh": np.zeros((hidden_size, 1), dtype),
        "by": np.zeros((vocab_size, 1), dtype),
    }


def numpy_original(data_ix: Sequence[int], vocab_size: int, hidden_size: int, seq_length: int,
                   learning_rate: float, params: dict, dtype) -> dict:
    """min-char-rnn's training loop over ``data_ix`` (one pass), updating the
    arrays in ``params`` in place. Returns the per-window losses, the final
    hidden state and the smoothed loss."""
    dtype = np.dtype(dtype)
    Wxh, Whh, Why, bh, by = (params[k] for k in ("Wxh", "Whh", "Why", "bh", "by"))

    def lossFun(inputs, targets, hprev):
        xs, hs, ys, ps = {}, {}, {}, {}
        hs[-1] = np.copy(hprev)
        loss = 0
        for t in range(len(inputs)):
            xs[t] = np.zeros((vocab_size, 1), dtype)
            xs[t][inputs[t]] = 1
            hs[t] = np.tanh(np.dot(Wxh, xs[t]) + np.dot(Whh, hs[t - 1]) + bh)
            ys[t] = np.dot(Why, hs[t]) + by
            ps[t] = np.exp(ys[t]) / np.sum(np.exp(ys[t]))
            loss += -np.log(ps[t][targets[t], 0])
        dWxh, dWhh, dWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
        dbh, dby = np.zeros_like(bh), np.zeros_like(by)
        dhnext = np.zeros_like(hs[0])
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
        for dparam in [dWxh, dWhh, dWhy, dbh, dby]:
            np.clip(dparam, -5, 5, out=dparam)
        return loss, dWxh, dWhh, dWhy, dbh, dby, hs[len(inputs) - 1]

    n_windows = (len(data_ix) - 1) // seq_length
    n, p = 0, 0
    mWxh, mWhh, mWhy = np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why)
    mbh, mby = np.zeros_like(bh), np.zeros_like(by)
    smooth_loss = -np.log(1.0 / vocab_size) * seq_length
    hprev = np.zeros((hidden_size, 1), dtype)
    losses = []
    while n < n_windows:
        if n == 0:
            hprev = np.zeros((hidden_size, 1), dtype)
            p = 0
        inputs = data_ix[p:p + seq_length]
        targets = data_ix[p + 1:p + seq_length + 1]
        loss, dWxh, dWhh, dWhy, dbh, dby, hprev = lossFun(inputs, targets, hprev)
        smooth_loss = smooth_loss * 0.999 + loss * 0.001
        losses.append(loss)
        for param, dparam, mem in zip([Wxh, Whh, Why, bh, by],
                                      [dWxh, dWhh, dWhy, dbh, dby],
                                      [mWxh, mWhh, mWhy, mbh, mby]):
            mem += dparam * dparam
            param += -learning_rate * dparam / np.sqrt(mem + 1e-8)
        p += seq_length
        n += 1
    return {"losses": np.array(losses, np.float64), "hprev": hprev, "smooth_loss": float(smooth_loss)}


# ------------------------------------------------------------------ fastrnn

def fastrnn_setup(params: dict, seq_length: int, learning_rate: float):
    """(spec, theta) for min-char-rnn's model and loop, from its parameters."""
    H, V = params["Wxh"].shape
    layout = tr.Layout("rnn_tanh", V, H, params["Why"].shape[0], bias=True, head_bias=True)
    theta = np.zeros(layout.size, params["Wxh"].dtype)
    P = layout.views(theta)
    P["weight_ih"][...] = params["Wxh"]
    P["weight_hh"][...] = params["Whh"]
    P["bias_ih"][...] = params["bh"][:, 0]
    P["weight_hy"][...] = params["Why"]
    P["bias_y"][...] = params["by"][:, 0]
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        k1=seq_length, k2=seq_length, clip=tr.Clip("value", 5.0),
                        optimizer=tr.Adagrad(lr=learning_rate, eps=1e-8))
    return spec, theta


def smoothed(losses: np.ndarray, vocab_size: int, seq_length: int) -> float:
    """min-char-rnn's smooth_loss after the given sequence of window losses."""
    s = -np.log(1.0 / vocab_size) * seq_length
    for loss in losses:
        s = s * 0.999 + loss * 0.001
    return float(s)


# -------------------------------------------------------------- comparison

def run_comparison(chars: int = 50_000, hidden: int = 100, seq_length: int = 25,
                   dtypes: Sequence[str] = ("float32", "float64"),
                   backends: Optional[Sequence[str]] = None, repeat: int = 3,
                   learning_rate: float = 0.1, seed: int = 0, numpy_original_run: bool = True,
                   verbose: bool = False) -> dict:
    """Time min-char-rnn's NumPy loop and fastrnn's fit_sequence on the same work.

    ``chars`` is rounded down to a whole number of windows (at least one);
    both contenders train over exactly that many characters. Returns
    ``{"config": {...}, "rows": [...]}`` with one row per (dtype, contender):
    ``dtype, contender, seconds`` (median of ``repeat``), ``chars_per_s``,
    ``speedup`` (chars/s over the NumPy original's of the same dtype, None
    without it) and ``smooth_loss`` (min-char-rnn's smoothed loss at the end).
    """
    vocab_size = len(ALPHABET)
    n_windows = max(1, chars // seq_length)
    n_chars = n_windows * seq_length
    text = synthetic_corpus(n_chars + 1, seed=seed)
    char_to_ix = {ch: i for i, ch in enumerate(ALPHABET)}
    data_ix = [char_to_ix[ch] for ch in text]
    data = np.array(data_ix, np.int64)
    inputs, targets = data[:-1, None], data[1:, None]
    if backends is None:
        backends = tr.available_trainers()
    config = dict(vocab_size=vocab_size, hidden=hidden, seq_length=seq_length, chars=n_chars,
                  windows=n_windows, learning_rate=learning_rate, repeat=repeat,
                  backends=list(backends), dtypes=list(dtypes))
    rows = []
    for dtype_name in dtypes:
        dtype = np.dtype(dtype_name)
        base_rate = None
        if numpy_original_run:
            times, out = [], None
            for _ in range(repeat):
                params = init_params(vocab_size, hidden, dtype, seed=seed)
                t0 = time.perf_counter()
                out = numpy_original(data_ix, vocab_size, hidden, seq_length, learning_rate, params, dtype)
                times.append(time.perf_counter() - t0)
            sec = statistics.median(times)
            base_rate = n_chars / sec
            rows.append(dict(dtype=dtype.name, contender="numpy original", seconds=sec,
                             chars_per_s=base_rate, speedup=1.0, smooth_loss=out["smooth_loss"]))
            if verbose:
                _print_row(rows[-1])
        for backend in backends:
            params = init_params(vocab_size, hidden, dtype, seed=seed)
            spec, theta0 = fastrnn_setup(params, seq_length, learning_rate)
            warm = theta0.copy()  # warm-up: numba compiles, the C core touches its buffers
            tr.fit_sequence(spec, warm, inputs[:2 * seq_length], targets[:2 * seq_length], backend=backend)
            times, res = [], None
            for _ in range(repeat):
                theta = theta0.copy()
                state = tr.OptimizerState.zeros_like(theta)
                t0 = time.perf_counter()
                res = tr.fit_sequence(spec, theta, inputs, targets, state=state, backend=backend)
                times.append(time.perf_counter() - t0)
            sec = statistics.median(times)
            rate = n_chars / sec
            rows.append(dict(dtype=dtype.name, contender=f"fastrnn[{backend}]", seconds=sec,
                             chars_per_s=rate, speedup=None if base_rate is None else rate / base_rate,
                             smooth_loss=smoothed(res.losses, vocab_size, seq_length)))
            if verbose:
                _print_row(rows[-1])
    return {"config": config, "rows": rows}


def check_trainer_backends(ap: argparse.ArgumentParser, backends: Optional[Sequence[str]]) -> None:
    """``ap.error`` unless every backend in ``backends`` (None: the default,
    every one) has a sequence trainer here (also fastrnn.bench.dropin's)."""
    if backends is None:
        return
    have = tr.available_trainers()
    missing = [b for b in backends if b not in have]
    if missing:
        ap.error(f"no sequence trainer for backend(s) {', '.join(missing)} "
                 f"(have: {', '.join(have) or 'none'})")


def _print_header(config: dict) -> None:
    print(f"min-char-rnn workload: V={config['vocab_size']} H={config['hidden']} "
          f"seq_length={config['seq_length']} lr={config['learning_rate']}, "
          f"{config['chars']} chars ({config['windows']} windows), median of {config['repeat']}")
    print(f"{'dtype':8s} {'contender':16s} {'seconds':>9s} {'chars/s':>12s} "
          f"{'x original':>11s} {'smooth loss':>12s}")


def _print_row(row: dict) -> None:
    speedup = "-" if row["speedup"] is None else f"{row['speedup']:.1f}"
    print(f"{row['dtype']:8s} {row['contender']:16s} {row['seconds']:9.3f} "
          f"{row['chars_per_s']:12,.0f} {speedup:>11s} {row['smooth_loss']:12.3f}", flush=True)


def main(argv=None, prog: Optional[str] = None) -> dict:
    ap = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    ap.add_argument("--chars", type=int, default=50_000,
                    help="characters to train over (rounded down to whole windows)")
    ap.add_argument("--hidden", type=int, default=100)
    ap.add_argument("--seq-length", type=int, default=25)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--dtype", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    ap.add_argument("--backends", nargs="+", default=None, choices=list(BACKENDS),
                    help="fastrnn backends to time (default: every one with a trainer)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-original", action="store_true", help="skip the (slow) NumPy original")
    args = ap.parse_args(argv)
    if args.chars < 1 or args.hidden < 1 or args.seq_length < 1 or args.repeat < 1:
        ap.error("--chars, --hidden, --seq-length and --repeat must be >= 1")
    backends = args.backends
    check_trainer_backends(ap, backends)
    n_windows = max(1, args.chars // args.seq_length)
    _print_header(dict(vocab_size=len(ALPHABET), hidden=args.hidden, seq_length=args.seq_length,
                       learning_rate=args.lr, chars=n_windows * args.seq_length,
                       windows=n_windows, repeat=args.repeat))
    return run_comparison(chars=args.chars, hidden=args.hidden, seq_length=args.seq_length,
                          dtypes=args.dtype, backends=backends, repeat=args.repeat,
                          learning_rate=args.lr, seed=args.seed,
                          numpy_original_run=not args.no_original, verbose=True)


if __name__ == "__main__":
    main()

"""Drop-in replacements for two classic NumPy tutorial functions.

Both functions take and return arrays with the tutorial's own names, shapes
and argument order, so an existing training script swaps one call and keeps
the rest of its loop. Underneath, each runs the sequence trainer of the
chosen backend (``backend=`` as everywhere in fastrnn: ``"c"``, ``"numba"``,
``"numpy"``, or None / ``"auto"``) with no optimizer: gradients only. On the
C backend the trainer reads the caller's weight arrays where they are (a
copy only of one that is not C-contiguous and aligned) and writes the
gradients straight into the arrays it returns
(:class:`fastrnn._core.TrainGradients`); the other backends get one flat
parameter vector in the :class:`fastrnn.training.Layout` order through
:func:`fastrnn.training.sequence_gradients`.

Calls in a loop: everything that depends only on the problem - the sizes,
T, the options, the dtype and the backend - is set up on the first call and
kept (a Layout, a TrainSpec, the C trainer's checked configuration; at most
64 problems); the arrays are checked on every call, and read on every call,
so weights changed in place between calls give the new result. Results
are bitwise those of the flat path. Threads: nothing kept is written during
a call (each call allocates its own outputs; the C trainer's working memory
belongs to the calling thread), so several threads may call the drop-ins at
once, each with arrays of its own; an array one thread writes while
another's call reads it is the caller's race, as in NumPy.

min-char-rnn's ``lossFun`` -> :func:`min_char_rnn_loss`
-------------------------------------------------------

The character-level vanilla RNN: a window of ``T`` character indices
``inputs`` with next-character ``targets``, one-hot inputs,
``h_t = tanh(Wxh x_t + Whh h_{t-1} + bh)``, logits ``y_t = Why h_t + by``,
softmax, loss ``sum_t -log p_t[targets[t]]``; the gradients of that summed
loss over the whole window, each clipped elementwise to [-5, 5] after the
sum; and the last hidden state, which the caller carries into the next window.

Mapping onto fastrnn.training:

* ``Layout("rnn_tanh", V, H, O, bias=True, head_bias=True)`` (``O = V`` in
  the tutorial; ``O`` is read from ``Why``): ``weight_ih = Wxh``,
  ``weight_hh = Whh``, ``bias_ih = bh``, ``bias_hh = 0``,
  ``weight_hy = Why``, ``bias_y = by``. ``dbh`` is the gradient of
  ``bias_ih`` (the two biases enter the pre-activation as a sum, so their
  gradients are equal).
* index input (the one-hot product ``Wxh @ x_t`` is the column lookup
  ``Wxh[:, inputs[t]]``, and ``dWxh`` a scatter-add into those columns);
  batch of one: ``inputs`` and ``targets`` become ``(T, 1)`` arrays and
  ``hprev (H, 1)`` becomes ``h0 = hprev.T``.
* head ``softmax_ce``, reduction ``"sum"``, one window: ``k1 = T``;
  ``Clip("value", 5.0)``; no optimizer.

``min_char_rnn_loss`` itself does not clip before summing: the clip applies
to the window's summed gradient, exactly where the tutorial calls
``np.clip(dparam, -5, 5, out=dparam)``.

wildml's RNNLM ``bptt`` -> :func:`wildml_bptt`
----------------------------------------------

The word-level RNN language model with ``U (H, vocab)``, ``V (vocab, H)``,
``W (H, H)``, no biases, zero initial state,
``s_t = tanh(U[:, x_t] + W s_{t-1})``, ``o_t = softmax(V s_t)``, summed
cross-entropy, and ``bptt_truncate = k``: the loss at step ``t`` is
backpropagated through steps ``t, t-1, ..., max(0, t-k)`` only. Returns
``(dLdU, dLdV, dLdW)`` in that (the tutorial's) order, unclipped.

Mapping: ``Layout("rnn_tanh", vocab, H, O, bias=False, head_bias=False)``
with ``weight_ih = U``, ``weight_hh = W``, ``weight_hy = V``; index input,
head ``softmax_ce``, reduction ``"sum"``, per-output depth
``depth = bptt_truncate`` (docs/TRAINING.md), no clipping, no optimizer.
A ``bptt_truncate`` of ``T - 1`` or more is full BPTT and is passed on as
``T - 1`` (same gradient, bounded work and memory).

What is deliberately not reproduced
-----------------------------------

* The tutorials' Python loops (one-hot vectors built per step, dictionaries
  of per-step arrays, and for wildml the inner truncated loop re-run for
  every output, O(T * k) matrix-vector products): the backend computes the
  same sums with index lookups, one forward over the window and a single
  backward recurrence (for wildml, over the ``k + 1`` "ages" of deltas at
  once). Results agree to rounding, not bit for bit.
* min-char-rnn's softmax without max-subtraction: fastrnn's
  ``logsumexp``-based loss is the same number where the tutorial's is finite
  and stays finite where the tutorial's overflows.
* Silent upcasting: the tutorial's ``np.zeros((vocab_size, 1))`` one-hots
  are float64, so float32 parameters get float64 arithmetic there. Here all
  arrays of a call must share one dtype (float32 or float64, else
  ``TypeError``), the arithmetic is done in that dtype, and the gradients
  come back in it.
* wildml's ``calculate_loss`` / ``forward_propagation`` and min-char-rnn's
  sampling and Adagrad loop: those stay in the caller's script (or use
  :func:`fastrnn.training.fit_sequence`, which runs the whole training loop
  in one call).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from . import _validate as _v
from . import training as tr
from .backends import resolve_backend

__all__ = ["min_char_rnn_loss", "wildml_bptt"]


# -- the per-call path ------------------------------------------------------
#
# A drop-in is called once per window from a Python loop, where the set-up
# (a Layout, a TrainSpec, its TrainerConfig, a flat theta filled from the
# arrays and gradients copied out of a flat grad) cost several times the
# kernel. So each problem - the sizes, T, the options, the dtype and the
# backend - gets a _Problem once, kept in _PROBLEMS, and a call does only
# what depends on the arrays: the checks above, then on the C backend one
# call of fastrnn._core.TrainGradients that reads the caller's weight arrays
# where they are and writes the gradients straight into the new arrays it
# returns (no flat copy either way). The other backends keep the flat path
# through training.sequence_gradients (their trainers take a flat theta).
#
# What is cached depends only on that key, never on the arrays' values: the
# weights are read on every call, so arrays changed between calls give the
# new result. Nothing cached is written during a call (each call allocates
# its own outputs; the C trainer's working memory is the calling thread's),
# so threads may call the drop-ins at once; an array that another thread
# writes during a call is the caller's race, as with NumPy.

class _Problem:
    """What a drop-in call needs besides the arrays, for one key."""

    __slots__ = ("spec", "layout", "backend", "gradients", "empty", "empty2", "empty3")

    def __init__(self, spec: "tr.TrainSpec", T: int, dtype: np.dtype, backend: str):
        self.spec, self.layout, self.backend = spec, spec.layout, backend
        # the C backend's gradients-only trainer, its configuration checked once
        self.gradients = None
        if backend == "c":
            from . import _core
            self.gradients = _core.TrainGradients(tr.trainer_config_of(spec, T, 1), dtype)
        # the arrays a configuration does not use, passed empty (never written)
        self.empty = np.zeros(0, dtype)
        self.empty2 = np.zeros((0, 0), dtype)
        self.empty3 = np.zeros((0, 0, 0), dtype)

    def flat_gradients(self, weights: dict, names: tuple, raw: tuple, bounds: tuple,
                       idx: np.ndarray, tgt: np.ndarray, h0=None):
        """The numba / numpy path, whose trainers take a flat theta: the
        indices' range checked, ``weights`` (Layout names -> arrays) copied
        into a fresh theta (the rest stays 0), one sequence_gradients call;
        returns its result and the gradient's views by Layout name."""
        for arg, arr, bound in zip(names, raw, bounds):
            _check_range(arg, arr, bound)
        theta = np.zeros(self.layout.size, weights["weight_ih"].dtype)
        views = self.layout.views(theta)
        for name, value in weights.items():
            views[name][...] = value
        res = tr.sequence_gradients(self.spec, theta, idx[:, None], tgt[:, None], h0=h0,
                                    backend=self.backend)
        return res, self.layout.views(res.grad)


_PROBLEMS: dict = {}
_MAX_PROBLEMS = 64  # distinct (sizes, T, options, dtype, backend) kept; beyond, start afresh


def _problem(key: tuple, make) -> _Problem:
    problem = _PROBLEMS.get(key)
    if problem is None:
        problem = make()
        if len(_PROBLEMS) >= _MAX_PROBLEMS:
            _PROBLEMS.clear()  # another thread's entry may go too: it is made again
        _PROBLEMS[key] = problem
    return problem


def _for_c(arr: np.ndarray) -> np.ndarray:
    """``arr`` itself where C can read it in place (a plain, C-contiguous,
    aligned ndarray; the dtype is checked already), else a C-contiguous,
    aligned copy (a strided view, an unaligned buffer)."""
    if type(arr) is not np.ndarray:
        arr = np.asarray(arr)  # a subclass (np.matrix) as the plain array it holds
    if arr.flags.c_contiguous and arr.flags.aligned:
        return arr
    return np.array(arr, order="C", copy=True)


def _common_dtype(named: dict) -> np.dtype:
    """The one float dtype of every array in ``named`` (TypeError otherwise)."""
    dtype = None
    first = None
    for name, arr in named.items():
        if not isinstance(arr, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray, got {type(arr).__name__}")
        if arr.dtype not in _v.FLOAT_DTYPES:
            raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}")
        if dtype is None:
            dtype, first = arr.dtype, name
        elif arr.dtype != dtype:
            raise TypeError(f"{name} has dtype {arr.dtype} but {first} has dtype {dtype}; "
                            f"fastrnn does not mix dtypes: convert with .astype(np.{dtype})")
    return dtype


def _shape(name: str, arr: np.ndarray, shape: tuple, meaning: str) -> None:
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {meaning} = {shape}, got {arr.shape}")


def _index_array(name: str, seq) -> np.ndarray:
    """``seq`` (a list / array of integer indices) as a 1-D integer array;
    its range is checked by :func:`_check_range`, or on the C backend by the
    C trainer's own pass over the indices (_checked_call)."""
    if seq is None or isinstance(seq, (str, bytes, dict)):
        raise TypeError(f"{name} must be a sequence of integer indices, got {type(seq).__name__}")
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    return arr


def _check_range(name: str, arr: np.ndarray, bound: int) -> None:
    if arr.size and (arr.min() < 0 or arr.max() >= bound):
        raise ValueError(f"{name} must hold indices in [0, {bound}), got values from "
                         f"{arr.min()} to {arr.max()}")


def _sequences(names: tuple, first, second, bounds: tuple) -> tuple:
    """The two index sequences of a call (inputs and targets, or x and y) as
    1-D integer arrays of one length T; their range is checked by the caller
    (_check_range, or the C trainer)."""
    a, b = _index_array(names[0], first), _index_array(names[1], second)
    if a.shape != b.shape:
        _check_range(names[0], a, bounds[0])  # a bad index is reported first, as it always was
        _check_range(names[1], b, bounds[1])
        raise ValueError(f"{names[0]} and {names[1]} must have the same length, got {a.size} "
                         f"and {b.size}")
    return a, b


def _checked_call(problem: _Problem, names: tuple, raw: tuple, bounds: tuple, *args):
    """problem.gradients(*args), whose C pass over the indices (one, in C)
    is the range check: if it refuses them, the same message as the other
    backends' check (names the argument, its bound and the values)."""
    try:
        return problem.gradients(*args)
    except ValueError:
        for name, arr, bound in zip(names, raw, bounds):
            _check_range(name, arr, bound)
        raise


def min_char_rnn_loss(inputs, targets, hprev, Wxh, Whh, Why, bh, by, *,
                      backend: Optional[str] = None):
    """min-char-rnn's ``lossFun(inputs, targets, hprev)`` with the parameters passed in.

    inputs, targets: integer sequences of equal length T (character indices).
    hprev (H, 1), Wxh (H, V), Whh (H, H), Why (V, H), bh (H, 1), by (V, 1):
    one dtype, float32 or float64.

    Returns ``(loss, dWxh, dWhh, dWhy, dbh, dby, hlast)``: the summed
    cross-entropy of the window as a Python float, the gradients of it
    clipped elementwise to [-5, 5] (new arrays, shapes and dtype of the
    parameters), and the hidden state after the last step, (H, 1).
    The arguments are not modified.
    """
    dtype = _common_dtype(dict(hprev=hprev, Wxh=Wxh, Whh=Whh, Why=Why, bh=bh, by=by))
    if Wxh.ndim != 2:
        raise ValueError(f"Wxh must be a 2-D (hidden_size, vocab_size) array, got shape {Wxh.shape}")
    H, V = Wxh.shape
    if Why.ndim != 2:
        raise ValueError(f"Why must be a 2-D (vocab_size, hidden_size) array, got shape {Why.shape}")
    O = Why.shape[0]
    _shape("Whh", Whh, (H, H), "(hidden_size, hidden_size)")
    _shape("Why", Why, (O, H), "(vocab_size, hidden_size)")
    _shape("bh", bh, (H, 1), "(hidden_size, 1)")
    _shape("by", by, (O, 1), "(vocab_size, 1)")
    _shape("hprev", hprev, (H, 1), "(hidden_size, 1)")
    names, bounds = ("inputs", "targets"), (V, O)
    raw = _sequences(names, inputs, targets, bounds)
    T = raw[0].size
    if T == 0:  # the tutorial's loops do nothing: zero loss and gradients, hs[-1] = hprev
        return (0.0, np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why),
                np.zeros_like(bh), np.zeros_like(by), np.array(hprev, dtype, copy=True))

    resolved = resolve_backend(backend, "train")
    problem = _problem(("min_char_rnn_loss", V, H, O, T, dtype, resolved),
                       lambda: _min_char_problem(V, H, O, T, dtype, resolved))
    spec = problem.spec
    idx, tgt = np.ascontiguousarray(raw[0], np.int64), np.ascontiguousarray(raw[1], np.int64)
    if problem.gradients is None:  # numba / numpy: their trainers take a flat theta
        res, G = problem.flat_gradients(  # bias_hh stays 0
            dict(weight_ih=Wxh, weight_hh=Whh, bias_ih=bh[:, 0], weight_hy=Why,
                 bias_y=by[:, 0]), names, raw, bounds, idx, tgt,
            h0=np.ascontiguousarray(hprev.T))
        return (float(res.losses[0]),
                G["weight_ih"].copy(), G["weight_hh"].copy(), G["weight_hy"].copy(),
                G["bias_ih"].reshape(H, 1).copy(), G["bias_y"].reshape(O, 1).copy(),
                res.h_n.reshape(H, 1).copy())
    # C: the caller's arrays in, new gradient arrays out, no flat theta.
    # Layout(bias="ih"): min-char-rnn's one bh as bias_ih; the C trainer adds
    # zeros where bias_hh is absent, the same sum as bias_hh = 0 (bit for bit)
    weights = (_for_c(Wxh), _for_c(Whh), _for_c(bh).reshape(H), problem.empty, _for_c(Why),
               _for_c(by).reshape(O))
    dWxh, dWhh, dWhy = np.empty((H, V), dtype), np.empty((H, H), dtype), np.empty((O, H), dtype)
    dbh, dby = np.empty((H, 1), dtype), np.empty((O, 1), dtype)
    grads = (dWxh, dWhh, dbh.reshape(H), problem.empty, dWhy, dby.reshape(O))
    h = np.array(hprev, dtype, order="C").reshape(1, H)  # the state in, the last one out
    losses = np.empty(1, np.float64)
    stopped = _checked_call(problem, names, raw, bounds, weights, grads, problem.empty3,
                            idx[:, None], tgt, problem.empty, h, problem.empty2, losses)
    if stopped is not None:
        raise tr.diverged_error(spec, stopped, T, losses, 0, 0)
    return float(losses[0]), dWxh, dWhh, dWhy, dbh, dby, h.reshape(H, 1)


def _min_char_problem(V: int, H: int, O: int, T: int, dtype: np.dtype, backend: str) -> _Problem:
    bias = "ih" if backend == "c" else True  # see min_char_rnn_loss
    layout = tr.Layout("rnn_tanh", V, H, O, bias=bias, head_bias=True)
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        k1=T, clip=tr.Clip("value", 5.0), optimizer=None)
    return _Problem(spec, T, dtype, backend)


def wildml_bptt(x, y, U, V, W, bptt_truncate, *, backend: Optional[str] = None):
    """wildml's ``RNNNumpy.bptt(x, y)`` with the parameters passed in.

    x, y: integer sequences of equal length T (word indices in, next words).
    U (H, vocab), V (vocab, H), W (H, H): one dtype, float32 or float64.
    bptt_truncate: k >= 0; the loss at step t reaches back to step max(0, t-k).

    Returns ``(dLdU, dLdV, dLdW)``: the truncated gradients of the summed
    cross-entropy (new arrays, shapes and dtype of U, V, W; unclipped).
    """
    dtype = _common_dtype(dict(U=U, V=V, W=W))
    if U.ndim != 2:
        raise ValueError(f"U must be a 2-D (hidden_dim, word_dim) array, got shape {U.shape}")
    H, vocab = U.shape
    if V.ndim != 2:
        raise ValueError(f"V must be a 2-D (word_dim, hidden_dim) array, got shape {V.shape}")
    O = V.shape[0]
    _shape("V", V, (O, H), "(word_dim, hidden_dim)")
    _shape("W", W, (H, H), "(hidden_dim, hidden_dim)")
    k = _v.integer("bptt_truncate", bptt_truncate, 0)
    names, bounds = ("x", "y"), (vocab, O)
    raw = _sequences(names, x, y, bounds)
    T = raw[0].size
    if T == 0:
        return np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)

    depth = min(k, T - 1)
    resolved = resolve_backend(backend, "train")
    problem = _problem(("wildml_bptt", vocab, H, O, T, depth, dtype, resolved),
                       lambda: _wildml_problem(vocab, H, O, T, depth, dtype, resolved))
    spec = problem.spec
    idx, tgt = np.ascontiguousarray(raw[0], np.int64), np.ascontiguousarray(raw[1], np.int64)
    if problem.gradients is None:  # numba / numpy: their trainers take a flat theta
        _, G = problem.flat_gradients(dict(weight_ih=U, weight_hh=W, weight_hy=V), names, raw,
                                      bounds, idx, tgt)
        return G["weight_ih"].copy(), G["weight_hy"].copy(), G["weight_hh"].copy()
    # C: U, V, W read where they are, the gradients written into new arrays
    e = problem.empty
    dLdU, dLdV, dLdW = np.empty((H, vocab), dtype), np.empty((O, H), dtype), np.empty((H, H), dtype)
    losses = np.empty(1, np.float64)
    stopped = _checked_call(problem, names, raw, bounds,
                            (_for_c(U), _for_c(W), e, e, _for_c(V), e),
                            (dLdU, dLdW, e, e, dLdV, e), problem.empty3, idx[:, None], tgt, e,
                            np.zeros((1, H), dtype), problem.empty2, losses)
    if stopped is not None:
        raise tr.diverged_error(spec, stopped, T, losses, 0, 0)
    return dLdU, dLdV, dLdW


def _wildml_problem(vocab: int, H: int, O: int, T: int, depth: int, dtype: np.dtype,
                    backend: str) -> _Problem:
    layout = tr.Layout("rnn_tanh", vocab, H, O, bias=False, head_bias=False)
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        depth=depth, clip=tr.Clip(), optimizer=None)
    return _Problem(spec, T, dtype, backend)

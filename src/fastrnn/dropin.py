"""Drop-in replacements for two classic NumPy tutorial functions.

Both functions take and return arrays with the tutorial's own names, shapes
and argument order, so an existing training script swaps one call and keeps
the rest of its loop. Underneath, each builds one flat parameter vector in
the :class:`fastrnn.training.Layout` order and calls
:func:`fastrnn.training.sequence_gradients`, i.e. the sequence trainer of the
chosen backend (``backend=`` as everywhere in fastrnn: ``"c"``, ``"numba"``,
``"numpy"``, or None / ``"auto"``), with no optimizer: gradients only.

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

__all__ = ["min_char_rnn_loss", "wildml_bptt"]


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


def _indices(name: str, seq, bound: int) -> np.ndarray:
    """A 1-D int64 array from a list / array of integer indices in [0, bound)."""
    if seq is None or isinstance(seq, (str, bytes, dict)):
        raise TypeError(f"{name} must be a sequence of integer indices, got {type(seq).__name__}")
    arr = np.asarray(seq)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of indices, got shape {arr.shape}")
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {arr.dtype}")
    if arr.min() < 0 or arr.max() >= bound:
        raise ValueError(f"{name} must hold indices in [0, {bound}), got values from "
                         f"{arr.min()} to {arr.max()}")
    return arr.astype(np.int64)


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
    idx, tgt = _indices("inputs", inputs, V), _indices("targets", targets, O)
    if idx.shape != tgt.shape:
        raise ValueError(f"inputs and targets must have the same length, got {idx.size} and {tgt.size}")
    T = idx.size
    if T == 0:  # the tutorial's loops do nothing: zero loss and gradients, hs[-1] = hprev
        return (0.0, np.zeros_like(Wxh), np.zeros_like(Whh), np.zeros_like(Why),
                np.zeros_like(bh), np.zeros_like(by), np.array(hprev, dtype, copy=True))

    layout = tr.Layout("rnn_tanh", V, H, O, bias=True, head_bias=True)
    theta = np.zeros(layout.size, dtype)
    P = layout.views(theta)
    P["weight_ih"][...] = Wxh
    P["weight_hh"][...] = Whh
    P["bias_ih"][...] = bh[:, 0]  # bias_hh stays 0
    P["weight_hy"][...] = Why
    P["bias_y"][...] = by[:, 0]
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        k1=T, clip=tr.Clip("value", 5.0), optimizer=None)
    res = tr.sequence_gradients(spec, theta, idx[:, None], tgt[:, None],
                                h0=np.ascontiguousarray(hprev.T), backend=backend)
    G = layout.views(res.grad)
    return (float(res.losses[0]),
            G["weight_ih"].copy(), G["weight_hh"].copy(), G["weight_hy"].copy(),
            G["bias_ih"].reshape(H, 1).copy(), G["bias_y"].reshape(O, 1).copy(),
            res.h_n.reshape(H, 1).copy())


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
    idx, tgt = _indices("x", x, vocab), _indices("y", y, O)
    if idx.shape != tgt.shape:
        raise ValueError(f"x and y must have the same length, got {idx.size} and {tgt.size}")
    T = idx.size
    if T == 0:
        return np.zeros_like(U), np.zeros_like(V), np.zeros_like(W)

    layout = tr.Layout("rnn_tanh", vocab, H, O, bias=False, head_bias=False)
    theta = np.zeros(layout.size, dtype)
    P = layout.views(theta)
    P["weight_ih"][...] = U
    P["weight_hh"][...] = W
    P["weight_hy"][...] = V
    spec = tr.TrainSpec(layout, head="softmax_ce", index_input=True, reduction="sum",
                        depth=min(k, T - 1), clip=tr.Clip(), optimizer=None)
    res = tr.sequence_gradients(spec, theta, idx[:, None], tgt[:, None], backend=backend)
    G = layout.views(res.grad)
    return G["weight_ih"].copy(), G["weight_hy"].copy(), G["weight_hh"].copy()

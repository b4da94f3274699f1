"""fastrnn.dropin called the way a tutorial loop calls it: many times, with
arrays that change between calls, from several threads.

The drop-ins keep per-problem set-up (Layout, TrainSpec, the C trainer's
checked configuration) between calls and, on the C backend, read the
caller's weight arrays in place and write the gradients into new arrays
(fastrnn._core.TrainGradients). These tests check what that must not
change: a weight array changed in place between calls gives the new result
(against the tutorials' own functions, test_dropin's references), results
returned by one call are not touched by the next, non-contiguous or
read-only weights give the results of contiguous ones, and threads calling
at once each get their own problem's result. They also check
TrainGradients' own contract: it refuses what it cannot run, names a bad
array, and its gradients are frnn_train's flat ``grad`` bit for bit (the
documented contract of frnn_train_grads), including an LSTM with both
biases, dense input, several TBPTT windows and state resets.
Not here: speed (bench/, ``fastrnn bench dropin``).
"""
from __future__ import annotations

import threading

import numpy as np
import pytest

from fastrnn import dropin
from fastrnn import training as tr

from conftest import TOLERANCE, rel_err
from test_dropin import (MINCHAR_NAMES, minchar_problem, ref_min_char_rnn_loss, ref_wildml_bptt,
                         wildml_problem)


def _ref_minchar(inputs, targets, p):
    return ref_min_char_rnn_loss(inputs, targets, p["hprev"].astype(np.float64),
                                 *(p[n].astype(np.float64) for n in MINCHAR_NAMES))


def _worst(got, want) -> float:
    return max(rel_err(g, w) for g, w in zip(got, want))


def test_weights_changed_in_place_between_calls(trainer, dtype):
    """The tutorial loop's Adagrad updates Wxh, ... in place after every call:
    the next call must see the new values (nothing is cached from them)."""
    num = np.dtype(dtype).type
    inputs, targets, p = minchar_problem(11, 6, 9, 1.0, seed=4, dtype=dtype)
    args = lambda: [p["hprev"]] + [p[n] for n in MINCHAR_NAMES]  # noqa: E731
    for _ in range(3):
        got = dropin.min_char_rnn_loss(inputs, targets, *args(), backend=trainer)
        assert _worst(got, _ref_minchar(inputs, targets, p)) <= TOLERANCE[np.dtype(dtype)]
        for n in MINCHAR_NAMES:  # in place, as the tutorial's `param += ...`
            p[n] += num(0.1) * np.sign(p[n] + num(0.05)).astype(dtype)
        p["hprev"] = got[-1]
    x, y, U, V, W = wildml_problem(10, 6, 7, 2.0, seed=2, dtype=dtype)
    for _ in range(3):
        got = dropin.wildml_bptt(x, y, U, V, W, 2, backend=trainer)
        want = ref_wildml_bptt(x, y, U.astype(np.float64), V.astype(np.float64),
                               W.astype(np.float64), 2)
        assert _worst(got, want) <= TOLERANCE[np.dtype(dtype)]
        U *= num(0.7)
        W[0] += num(0.3)
        V[:, 1] -= num(0.2)


def test_results_are_new_arrays_that_the_next_call_leaves_alone(trainer):
    inputs, targets, p = minchar_problem(7, 4, 5, 1.0, seed=1, dtype=np.float64)
    args = [p["hprev"]] + [p[n] for n in MINCHAR_NAMES]
    first = dropin.min_char_rnn_loss(inputs, targets, *args, backend=trainer)
    kept = [np.copy(a) for a in first[1:]]
    for i, a in enumerate(first[1:]):
        for b in args + list(first[1 + i + 1:]):
            assert not np.shares_memory(a, b)
    second = dropin.min_char_rnn_loss(targets, inputs, *[2 * a for a in args], backend=trainer)
    for a, b in zip(first[1:], kept):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first[1:], second[1:]))
    x, y, U, V, W = wildml_problem(6, 4, 5, 1.0, seed=0, dtype=np.float64)
    g1 = dropin.wildml_bptt(x, y, U, V, W, 1, backend=trainer)
    kept = [np.copy(a) for a in g1]
    dropin.wildml_bptt(y, x, 2 * U, V, W, 1, backend=trainer)
    for a, b in zip(g1, kept):
        np.testing.assert_array_equal(a, b)
    assert not any(np.shares_memory(a, b) for a in g1 for b in (U, V, W))


def test_views_of_every_layout_give_the_same_result(trainer, dtype):
    """Fortran-order, strided, read-only and unaligned weights are read as
    the contiguous arrays they equal (copied where C cannot read them in
    place): the same results bit for bit, to the reference's tolerance."""
    inputs, targets, p = minchar_problem(9, 5, 6, 1.0, seed=7, dtype=dtype)
    base = dropin.min_char_rnn_loss(inputs, targets, p["hprev"], *(p[n] for n in MINCHAR_NAMES),
                                    backend=trainer)
    assert _worst(base, _ref_minchar(inputs, targets, p)) <= TOLERANCE[np.dtype(dtype)]

    def fortran(a):
        return np.asfortranarray(a)

    def strided(a):
        wide = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
        wide[:, ::2] = a
        return wide[:, ::2]

    def read_only(a):
        b = a.copy()
        b.flags.writeable = False
        return b

    def unaligned(a):
        raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
        b = raw.view(a.dtype).reshape(a.shape)
        b[...] = a
        return b

    for make in (fortran, strided, read_only, unaligned):
        q = {n: make(a) for n, a in p.items()}
        got = dropin.min_char_rnn_loss(inputs, targets, q["hprev"], *(q[n] for n in MINCHAR_NAMES),
                                       backend=trainer)
        assert got[0] == base[0], make.__name__
        for g, b in zip(got[1:], base[1:]):
            np.testing.assert_array_equal(g, b, err_msg=make.__name__)


def test_threads_calling_at_once(trainer):
    """Threads sharing one cached problem (same sizes), each with its own
    weights, each get their own weights' gradients, every time."""
    problems = [minchar_problem(13, 8, 10, 1.0, seed=s, dtype=np.float64) for s in range(4)]
    wants = [_ref_minchar(i, t, p) for i, t, p in problems]
    # the single-thread results, to compare the threaded ones with bit for bit
    alone = [dropin.min_char_rnn_loss(i, t, p["hprev"], *(p[n] for n in MINCHAR_NAMES),
                                      backend=trainer) for i, t, p in problems]
    for got, want in zip(alone, wants):
        assert _worst(got, want) <= 1e-10
    errors, barrier = [], threading.Barrier(len(problems))

    def work(k):
        inputs, targets, p = problems[k]
        barrier.wait()
        for _ in range(25):
            got = dropin.min_char_rnn_loss(inputs, targets, p["hprev"],
                                           *(p[n] for n in MINCHAR_NAMES), backend=trainer)
            if got[0] != alone[k][0] or not all(np.array_equal(g, a)
                                                for g, a in zip(got[1:], alone[k][1:])):
                errors.append(k)
                return

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(problems))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_the_benchmark_times_the_tutorials_own_functions():
    """fastrnn bench dropin's baselines are the tutorials' functions: in
    float64 exactly test_dropin's references (which follow the originals)."""
    from fastrnn.bench.dropin import tutorial_bptt, tutorial_loss_fun
    inputs, targets, p = minchar_problem(13, 8, 25, 1.2, seed=3, dtype=np.float64)
    args = [p["hprev"]] + [p[n] for n in MINCHAR_NAMES]
    for g, w in zip(tutorial_loss_fun(inputs, targets, *args),
                    ref_min_char_rnn_loss(inputs, targets, *args)):
        np.testing.assert_array_equal(g, w)
    x, y, U, V, W = wildml_problem(30, 12, 20, 2.0, seed=1, dtype=np.float64)
    for g, w in zip(tutorial_bptt(x, y, U, V, W, 4), ref_wildml_bptt(x, y, U, V, W, 4)):
        np.testing.assert_array_equal(g, w)


# ------------------------------------------------ fastrnn._core.TrainGradients

_core = pytest.importorskip("fastrnn._core")

NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_hy", "bias_y")


def _split_call(spec, theta, inputs, targets, h0, c0=None, resets=None):
    """TrainGradients on the layout's parameters as separate arrays, with
    the arrays the C backend would pass."""
    lay = spec.layout
    T, B = inputs.shape[:2]
    dtype = theta.dtype
    e = np.zeros(0, dtype)
    P = lay.views(theta.copy())
    weights = tuple(np.ascontiguousarray(P[n]) if n in P else e for n in NAMES)
    grads = tuple(np.full_like(w, np.nan) for w in weights)  # every element must be written
    h = h0.copy()
    c = c0.copy() if c0 is not None else np.zeros((0, 0), dtype)
    losses = np.zeros(spec.num_updates(T))
    x = np.zeros((0, 0, 0), dtype) if spec.index_input else inputs
    idx = inputs if spec.index_input else np.zeros((0, 0), np.int64)
    if spec.head == "softmax_ce":
        target_idx, target = targets.reshape(-1), e
    else:
        target_idx, target = np.zeros(0, np.int64), targets.reshape(-1)
    g = _core.TrainGradients(spec.trainer_config(T, B), dtype)
    stopped = g(weights, grads, x, idx, target_idx, target, h, c, losses,
                None if resets is None else resets.view(np.uint8))
    return stopped, dict(zip(NAMES, grads)), h, c, losses


@pytest.mark.parametrize("case", ["lstm-dense-tbptt-resets", "gru-index-depth", "rnn-ih-mse"])
def test_train_gradients_is_the_flat_trainer_bit_for_bit(case, dtype):
    rng = np.random.default_rng(3)
    T, B, In, H, O = 9, 3, 5, 4, 6
    if case.startswith("lstm"):
        lay = tr.Layout("lstm", In, H, O)
        spec = tr.TrainSpec(lay, head="sigmoid_bce", k1=3, k2=4, clip=tr.Clip("norm", 0.5))
        inputs = rng.standard_normal((T, B, In)).astype(dtype)
        targets = (rng.random((T, B, O)) > 0.5).astype(dtype)
        resets = rng.random((T, B)) < 0.2
    elif case.startswith("gru"):
        lay = tr.Layout("gru", In, H, O, head_bias=False)
        spec = tr.TrainSpec(lay, head="softmax_ce", index_input=True, depth=2,
                            clip=tr.Clip("value", 0.05))
        inputs, targets, resets = rng.integers(0, In, (T, B)), rng.integers(0, O, (T, B)), None
    else:
        lay = tr.Layout("rnn_tanh", In, H, O, bias="ih")
        spec = tr.TrainSpec(lay, head="mse", k1=2, reduction="mean")
        inputs = rng.standard_normal((T, B, In)).astype(dtype)
        targets, resets = rng.standard_normal((T, B, O)).astype(dtype), None
    theta = lay.init(dtype, seed=5)
    h0 = rng.standard_normal((B, H)).astype(dtype)
    c0 = rng.standard_normal((B, H)).astype(dtype) if lay.spec.has_cell_state else None
    flat = tr.sequence_gradients(spec, theta, inputs, targets, h0=h0, c0=c0, resets=resets,
                                 backend="c")
    stopped, grads, h, c, losses = _split_call(spec, theta, inputs, targets, h0, c0, resets)
    assert stopped is None
    want = lay.views(flat.grad)
    assert set(want) == {n for n in NAMES if grads[n].size}
    for name, g in want.items():
        assert grads[name].tobytes() == g.tobytes(), name
    assert h.tobytes() == flat.h_n.tobytes() and losses.tobytes() == flat.losses.tobytes()
    if c0 is not None:
        assert c.tobytes() == flat.c_n.tobytes()
    assert np.abs(flat.grad).max() > 0


def test_train_gradients_refuses_what_it_cannot_run():
    lay = tr.Layout("rnn_tanh", 3, 4, 2)
    spec = tr.TrainSpec(lay, k1=2, optimizer=tr.SGD(0.1))
    with pytest.raises(ValueError, match="optimizer must be None"):
        _core.TrainGradients(spec.trainer_config(4, 1), np.float64)
    plain = tr.TrainSpec(lay, k1=2)
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        _core.TrainGradients(plain.trainer_config(4, 1), np.int64)
    config = plain.trainer_config(4, 1)
    object.__setattr__(config, "windows", 3)
    with pytest.raises(ValueError, match="config.windows must be the number of windows 2"):
        _core.TrainGradients(config, np.float64)


@pytest.mark.parametrize("name,bad,match", [
    ("x", lambda a: a[:, :, :2].copy(), r"x must have shape \(T, B, In\) = \(4, 1, 3\)"),
    ("idx", lambda a: np.zeros((4, 1), np.int64), r"idx must be empty for dense input"),
    ("target", lambda a: a[:-1], r"target must have shape \(T\*B\*O,\) = \(8,\)"),
    ("target_idx", lambda a: np.zeros(3, np.int64), r"target_idx must be empty for head 'mse'"),
    ("h", lambda a: np.zeros((2, 4)), r"h must have shape \(B, H\) = \(1, 4\)"),
    ("c", lambda a: np.zeros((1, 4)), r"c must be empty for cell 'rnn_tanh'"),
    ("resets", lambda a: np.zeros((1, 4), np.uint8), r"resets must have shape \(T, B\)"),
])
def test_train_gradients_checks_the_data_as_train_does(name, bad, match):
    """The sequence data goes through the same check as _core.train's
    (_sequence_arrays), with the same messages under TrainGradients' name."""
    rng = np.random.default_rng(1)
    lay = tr.Layout("rnn_tanh", 3, 4, 2)
    g = _core.TrainGradients(tr.TrainSpec(lay, head="mse", k1=2).trainer_config(4, 1),
                             np.float64)
    P = lay.views(lay.init(np.float64, seed=0))
    weights = tuple(np.ascontiguousarray(P[n]) for n in NAMES)
    a = dict(x=rng.standard_normal((4, 1, 3)), idx=np.zeros((0, 0), np.int64),
             target_idx=np.zeros(0, np.int64), target=rng.standard_normal(8),
             h=np.zeros((1, 4)), c=np.zeros((0, 0)), resets=np.zeros((4, 1), np.uint8))
    a[name] = bad(a[name])
    with pytest.raises(ValueError, match="fastrnn._core.TrainGradients: " + match):
        g(weights, tuple(np.zeros_like(w) for w in weights), a["x"], a["idx"],
          a["target_idx"], a["target"], a["h"], a["c"], np.zeros(2), a["resets"])


def test_train_gradients_checks_every_array():
    rng = np.random.default_rng(0)
    lay = tr.Layout("rnn_tanh", 3, 4, 2)
    spec = tr.TrainSpec(lay, head="mse", k1=2)
    g = _core.TrainGradients(spec.trainer_config(4, 1), np.float64)
    P = lay.views(lay.init(np.float64, seed=0))

    def arrays():
        weights = [np.ascontiguousarray(P[n]) for n in NAMES]
        return dict(weights=weights, grads=[np.zeros_like(w) for w in weights],
                    x=rng.standard_normal((4, 1, 3)), idx=np.zeros((0, 0), np.int64),
                    target_idx=np.zeros(0, np.int64), target=rng.standard_normal(8),
                    h=np.zeros((1, 4)), c=np.zeros((0, 0)), losses=np.zeros(2))

    def call(a):
        return g(tuple(a["weights"]), tuple(a["grads"]), a["x"], a["idx"], a["target_idx"],
                 a["target"], a["h"], a["c"], a["losses"])

    assert call(arrays()) is None
    a = arrays()
    a["weights"][1] = np.zeros((4, 5))
    with pytest.raises(ValueError, match=r"weight_hh must have shape \(G\*H, H\) = \(4, 4\)"):
        call(a)
    a = arrays()
    a["grads"][5] = np.zeros(0)
    with pytest.raises(ValueError, match=r"grad bias_y must have shape"):
        call(a)
    a = arrays()
    a["grads"][0] = a["weights"][0]  # the gradient written over the weight it reads
    with pytest.raises(ValueError, match="grad weight_ih must not overlap weight_ih"):
        call(a)
    a = arrays()
    a["losses"] = np.zeros(1)
    with pytest.raises(ValueError, match="losses must have room for every window: 2"):
        call(a)
    a = arrays()
    a["weights"] = a["weights"][:5]
    with pytest.raises(ValueError, match="6-tuples"):
        call(a)
    a = arrays()
    a["h"] = None
    with pytest.raises(TypeError, match="h must be an array"):
        call(a)
    a = arrays()
    a["weights"][4] = np.asfortranarray(rng.standard_normal((2, 4)))  # F-order, not C
    with pytest.raises(ValueError, match="contiguous"):
        call(a)
    a = arrays()
    a["weights"] = [w.astype(np.float32) for w in a["weights"]]
    with pytest.raises(ValueError, match="dtype mismatch"):
        call(a)

"""Regression tests for the training API's findings in issue 9.

Each test here failed on fastrnn 0.1.0, which accepted the argument and then
trained a copy, produced NaN, or (depth = 2**61) crashed in the C trainer:

* theta given as a list was converted, trained, and thrown away;
* optimizer states aliasing each other or theta were accepted;
* optimizer hyperparameters were not range-checked (SGD(nan), Adam(beta1=1));
* Layout accepted non-integer sizes (int(2.5) passes);
* a per-output depth far beyond T was allocated as asked (and 2**61
  overflowed the C trainer's size products);
* a window whose loss turned non-finite was applied like any other.

Expected values come from independent runs: the clamped depth against the
depth T - 1 run (the same gradient by definition, docs/TRAINING.md), the
stopped run against a run over only the good windows.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fastrnn import training as tr

from conftest import rel_err


def _problem(dtype=np.float64, T=12, B=2, I=3, H=4, O=3, cell="gru", seed=0):
    rng = np.random.default_rng(seed)
    lay = tr.Layout(cell, I, H, O)
    theta = lay.init(dtype, seed=seed)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    y = rng.integers(0, O, (T, B))
    return lay, theta, x, y


def test_theta_must_be_an_ndarray_not_a_list():
    lay, theta, x, y = _problem()
    spec = tr.TrainSpec(lay, k1=4, optimizer=tr.SGD(0.1))
    with pytest.raises(TypeError, match="theta must be a float32 or float64 numpy array"):
        tr.fit_sequence(spec, theta.tolist(), x, y)
    with pytest.raises(TypeError, match="theta must be"):
        tr.sequence_gradients(tr.TrainSpec(lay, k1=4), tuple(theta), x, y)


@pytest.mark.parametrize("make", [
    pytest.param(lambda theta, z: tr.OptimizerState(z, z), id="m-is-v"),
    pytest.param(lambda theta, z: tr.OptimizerState(z[:-1], z[1:]), id="m-overlaps-v"),
])
def test_optimizer_state_arrays_must_not_alias_each_other(make):
    lay, theta, x, y = _problem()
    with pytest.raises(ValueError, match="share memory"):
        make(theta, np.zeros(theta.size + 1))


@pytest.mark.parametrize("which", ["m", "v"])
def test_optimizer_state_must_not_alias_theta(which):
    lay, theta, x, y = _problem()
    spec = tr.TrainSpec(lay, k1=4, optimizer=tr.Adam(1e-2))
    arrays = {"m": np.zeros_like(theta), "v": np.zeros_like(theta), which: theta}
    state = tr.OptimizerState(arrays["m"], arrays["v"])
    before = theta.copy()
    with pytest.raises(ValueError, match=f"state.{which} shares memory with theta"):
        tr.fit_sequence(spec, theta, x, y, state=state)
    np.testing.assert_array_equal(theta, before)  # refused before anything ran


def test_optimizer_state_replaced_after_construction_is_checked():
    lay, theta, x, y = _problem()
    state = tr.OptimizerState.zeros_like(theta)
    state.v = state.m
    with pytest.raises(ValueError, match="share memory"):
        tr.fit_sequence(tr.TrainSpec(lay, k1=4, optimizer=tr.Adam(1e-2)), theta, x, y, state=state)


@pytest.mark.parametrize("make,exc,match", [
    (lambda: tr.SGD(float("nan")), ValueError, "SGD.lr must be a finite number > 0, got nan"),
    (lambda: tr.SGD(-0.1), ValueError, "SGD.lr"),
    (lambda: tr.SGD(0.1, momentum=1.0), ValueError, r"SGD.momentum must be a finite number in \[0, 1\)"),
    (lambda: tr.SGD(0.1, nesterov=True), ValueError, "nesterov needs momentum > 0"),
    (lambda: tr.SGD("0.1"), TypeError, "SGD.lr must be a finite number > 0, got (str|bool)"),
    (lambda: tr.SGD(True), TypeError, "SGD.lr must be a finite number > 0, got (str|bool)"),
    (lambda: tr.Adam(1e-3, beta1=1.0), ValueError, "Adam.beta1"),
    (lambda: tr.Adam(1e-3, beta2=-0.1), ValueError, "Adam.beta2"),
    (lambda: tr.Adam(float("inf")), ValueError, "Adam.lr"),
    (lambda: tr.Adagrad(0.1, eps=0), ValueError, "Adagrad.eps"),
    (lambda: tr.RMSprop(0.1, alpha=1.5), ValueError, "RMSprop.alpha"),
    (lambda: tr.RMSprop(0.1, eps=float("nan")), ValueError, "RMSprop.eps"),
    (lambda: tr.Clip("norm", float("inf")), ValueError, "Clip.value"),
    (lambda: tr.Clip("value", float("nan")), ValueError, "Clip.value"),
])
def test_hyperparameters_are_checked_where_constructed(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


def test_valid_hyperparameters_are_kept_as_floats():
    opt = tr.Adam(np.float32(0.5), beta1=0, beta2=np.float64(0.25), eps=1)
    assert (opt.lr, opt.beta1, opt.beta2, opt.eps) == (0.5, 0.0, 0.25, 1.0)
    assert all(type(x) is float for x in (opt.lr, opt.beta1, opt.beta2, opt.eps))


@pytest.mark.parametrize("kwargs,exc", [
    ({"hidden_size": 2.5}, TypeError), ({"input_size": True}, TypeError),
    ({"output_size": "3"}, TypeError), ({"hidden_size": 0}, ValueError),
    ({"bias": 1}, TypeError), ({"bias": "hh"}, ValueError), ({"bias": "both"}, ValueError),
    ({"bias": None}, TypeError),
])
def test_layout_sizes_must_be_integers(kwargs, exc):
    args = {"cell": "gru", "input_size": 4, "hidden_size": 2, "output_size": 4, **kwargs}
    with pytest.raises(exc, match=next(iter(kwargs))):
        tr.Layout(**args)


def test_one_bias_layout_has_bias_ih_alone():
    """Layout(bias="ih"): theta is [weight_ih, weight_hh, bias_ih, weight_hy, bias_y],
    GH elements shorter than torch's two-bias layout (sizes written out by hand:
    GRU, G = 3, I = 4, H = 2, O = 5)."""
    one = tr.Layout("gru", 4, 2, 5, bias="ih")
    assert list(one.shapes()) == ["weight_ih", "weight_hh", "bias_ih", "weight_hy", "bias_y"]
    assert one.offsets()["bias_ih"] == (24 + 12, 24 + 12 + 6)
    assert one.size == 24 + 12 + 6 + 10 + 5
    assert tr.Layout("gru", 4, 2, 5).size == one.size + 6
    assert tr.Layout("gru", 4, 2, 5, bias=False).size == one.size - 6
    assert (one.has_bias_ih, one.has_bias_hh) == (True, False)


@pytest.mark.parametrize("kwargs,exc", [
    ({"depth": 2.0}, TypeError), ({"depth": -1}, ValueError), ({"k1": 0}, ValueError),
    ({"k1": 5, "k2": 4}, ValueError), ({"k1": True}, TypeError), ({"many_to_one": 1}, TypeError),
    ({"clip": 5.0}, TypeError), ({"optimizer": "adam"}, TypeError),
])
def test_train_spec_fields_are_checked(kwargs, exc):
    lay = tr.Layout("gru", 3, 4, 3)
    with pytest.raises(exc):
        tr.TrainSpec(lay, **kwargs)


@pytest.mark.parametrize("depth", [12, 10**6, 2**61, 2**63])
def test_depth_beyond_the_sequence_is_the_full_depth(trainer, depth):
    """depth >= T - 1 reaches every step: the gradient is the depth T - 1 one,
    and the trainers are handed the clamped depth (bounded memory, no size
    overflow: 0.1.0 segfaulted at 2**61 and allocated 605 MB at 10**6)."""
    lay, theta, x, y = _problem(T=12)
    want = tr.sequence_gradients(tr.TrainSpec(lay, depth=11), theta, x, y, backend=trainer)
    spec = tr.TrainSpec(lay, depth=depth)
    assert spec.for_length(12).depth == 11
    got = tr.sequence_gradients(spec, theta, x, y, backend=trainer)
    np.testing.assert_array_equal(got.grad, want.grad)
    np.testing.assert_array_equal(got.losses, want.losses)


def _nan_in_window_2(dtype):
    """Windows of 3 steps over T = 12; a NaN input at step 7 (window 2)."""
    lay, theta, x, y = _problem(dtype, T=12, cell="lstm")
    x[7, 1, 0] = np.nan
    return lay, theta, x, y


@pytest.mark.parametrize("opt", [tr.SGD(0.1, momentum=0.5), tr.Adam(1e-2)], ids=["sgd", "adam"])
def test_a_non_finite_window_stops_training_before_its_update(trainer, dtype, opt):
    lay, theta, x, y = _nan_in_window_2(dtype)
    spec = tr.TrainSpec(lay, k1=3, clip=tr.Clip("norm", 1.0), optimizer=opt)
    h0 = np.full((2, 4), 0.25, dtype)
    c0 = np.full((2, 4), -0.5, dtype)
    h0_before, c0_before = h0.copy(), c0.copy()

    want_theta, want_state = theta.copy(), tr.OptimizerState.zeros_like(theta)
    want = tr.fit_sequence(spec, want_theta, x[:6], y[:6], h0=h0, c0=c0, state=want_state,
                           backend=trainer)  # the two good windows alone

    state = tr.OptimizerState.zeros_like(theta)
    with pytest.raises(tr.TrainingDivergedError, match=r"loss of window 2 \(steps 6-8\) is not "
                                                       "finite") as info:
        tr.fit_sequence(spec, theta, x, y, h0=h0, c0=c0, state=state, backend=trainer)
    err = info.value
    assert isinstance(err, FloatingPointError)
    assert (err.window, err.first_step, err.last_step, err.updates) == (2, 6, 9, 2)
    assert np.isnan(err.loss)
    np.testing.assert_array_equal(theta, want_theta)
    np.testing.assert_array_equal(state.m, want_state.m)
    np.testing.assert_array_equal(state.v, want_state.v)
    assert state.step == want_state.step == 2
    np.testing.assert_array_equal(h0, h0_before)  # the caller's state is never written
    np.testing.assert_array_equal(c0, c0_before)
    assert np.all(np.isfinite(want.losses))


def test_non_finite_gradients_stop_sequence_gradients_too(trainer):
    lay, theta, x, y = _nan_in_window_2(np.float64)
    with pytest.raises(tr.TrainingDivergedError, match="window 2"):
        tr.sequence_gradients(tr.TrainSpec(lay, k1=3), theta, x, y, backend=trainer)


def test_non_finite_parameters_stop_at_the_first_window(trainer):
    lay, theta, x, y = _problem()
    theta[3] = np.nan  # (an inf weight may only saturate a gate: finite loss)
    before = theta.copy()
    state = tr.OptimizerState.zeros_like(theta)
    with pytest.raises(tr.TrainingDivergedError, match="window 0") as info:
        tr.fit_sequence(tr.TrainSpec(lay, k1=4, optimizer=tr.SGD(0.1)), theta, x, y,
                        state=state, backend=trainer)
    assert info.value.updates == 0 and state.step == 0
    np.testing.assert_array_equal(theta, before)


# ---- state resets (fit_sequence / sequence_gradients resets=) ---------------

def _reset_problem(cell="lstm", T=7, B=3, seed=0):
    rng = np.random.default_rng(seed)
    lay = tr.Layout(cell, 3, 4, 2)
    spec = tr.TrainSpec(lay, head="mse", k1=3, k2=4, optimizer=tr.SGD(0.1))
    theta = lay.init(np.float64, seed=seed)
    x = rng.standard_normal((T, B, 3))
    y = rng.standard_normal((T, B, 2))
    h0 = rng.standard_normal((B, 4))
    c0 = rng.standard_normal((B, 4)) if cell == "lstm" else None
    return spec, theta, x, y, h0, c0


@pytest.mark.parametrize("resets,exc,match", [
    (np.zeros((7, 3), np.int64), TypeError, r"resets must be a bool array of shape \(T, batch\) = \(7, 3\)"),
    (np.zeros((7, 3), np.float64), TypeError, "resets must be a bool array"),
    (np.zeros((3, 7), bool), ValueError, r"resets must have shape \(T, batch\) = \(7, 3\), got \(3, 7\)"),
    (np.zeros(7, bool), ValueError, "resets must have shape"),
])
def test_resets_are_checked(resets, exc, match):
    spec, theta, x, y, h0, c0 = _reset_problem()
    with pytest.raises(exc, match=match):
        tr.fit_sequence(spec, theta, x, y, h0=h0, c0=c0, resets=resets)
    grad_spec = dataclasses.replace(spec, optimizer=None)
    with pytest.raises(exc, match=match):
        tr.sequence_gradients(grad_spec, theta, x, y, h0=h0, c0=c0, resets=resets)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_no_reset_is_the_plain_run_bitwise(trainer, cell):
    """All-False resets are no resets: the results are bitwise those of
    resets=None (every trainer takes its plain path)."""
    spec, theta, x, y, h0, c0 = _reset_problem(cell)
    plain, masked = theta.copy(), theta.copy()
    a = tr.fit_sequence(spec, plain, x, y, h0=h0, c0=c0, backend=trainer)
    b = tr.fit_sequence(spec, masked, x, y, h0=h0, c0=c0, resets=np.zeros((7, 3), bool),
                        backend=trainer)
    assert np.array_equal(plain, masked) and np.array_equal(a.losses, b.losses)
    assert np.array_equal(a.h_n, b.h_n) and np.array_equal(a.grad, b.grad)


@pytest.mark.parametrize("cell", ["rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("depth", [None, 2])
def test_a_reset_at_step_0_is_a_zero_initial_state(trainer, cell, depth):
    """Resetting every row before step 0 discards h0 / c0: the same run as a
    zero initial state (to rounding: the reset path sums dW_hh in one product)."""
    spec, theta, x, y, h0, c0 = _reset_problem(cell)
    if depth is not None:
        spec = dataclasses.replace(spec, depth=depth)
    resets = np.zeros((7, 3), bool)
    resets[0] = True
    zero, reset = theta.copy(), theta.copy()
    a = tr.fit_sequence(spec, zero, x, y, backend=trainer)
    b = tr.fit_sequence(spec, reset, x, y, h0=h0, c0=c0, resets=resets, backend=trainer)
    for got, want in ((reset, zero), (b.losses, a.losses), (b.h_n, a.h_n), (b.grad, a.grad)):
        assert rel_err(got, want) <= 1e-13


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_a_reset_row_is_a_new_sequence(trainer, cell):
    """A reset at step 2 of a one-row window (gradients only, summed loss)
    splits it into two sequences: the loss and gradient are the sums of the
    pieces' (steps 0-1 from h0, steps 2-5 from a zero state), the final state
    the second piece's."""
    spec, theta, x, y, h0, c0 = _reset_problem(cell, T=6, B=1)
    spec = tr.TrainSpec(spec.layout, head="mse", k1=6, optimizer=None)
    resets = np.zeros((6, 1), bool)
    resets[2, 0] = True
    whole = tr.sequence_gradients(spec, theta, x, y, h0=h0, c0=c0, resets=resets, backend=trainer)
    first = tr.sequence_gradients(spec, theta, x[:2], y[:2], h0=h0, c0=c0, backend=trainer)
    second = tr.sequence_gradients(spec, theta, x[2:], y[2:], backend=trainer)
    assert rel_err(whole.grad, first.grad + second.grad) <= 1e-12
    assert abs(whole.losses[0] - first.losses[0] - second.losses[0]) <= 1e-12 * whole.losses[0]
    assert rel_err(whole.h_n, second.h_n) <= 1e-13


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_a_reset_drops_a_nonfinite_state(trainer, cell):
    """A reset replaces the state, it does not multiply it by zero: an inf /
    NaN h0 (c0) in rows reset before step 0 leaves no trace (0 * inf would be
    NaN), and the run equals one from a zero state."""
    spec, theta, x, y, h0, c0 = _reset_problem(cell)
    h0[:] = np.inf
    if c0 is not None:
        c0[:] = np.nan
    resets = np.zeros((7, 3), bool)
    resets[0] = True
    zero, reset = theta.copy(), theta.copy()
    a = tr.fit_sequence(spec, zero, x, y, backend=trainer)
    b = tr.fit_sequence(spec, reset, x, y, h0=h0, c0=c0, resets=resets, backend=trainer)
    assert np.isfinite(reset).all() and np.isfinite(b.grad).all()
    for got, want in ((reset, zero), (b.losses, a.losses), (b.h_n, a.h_n), (b.grad, a.grad)):
        assert rel_err(got, want) <= 1e-13

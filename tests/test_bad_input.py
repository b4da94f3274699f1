"""Bad input: a clear exception naming the argument, or a documented behaviour.

Documented behaviours tested here: non-contiguous and read-only inputs are
accepted (copied / only read); T = 0 and B = 0 give empty results with the
state passed through; NaN propagates. Everything else raises.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

from conftest import random_problem


def lstm_args(dtype=np.float64, T=3, B=2, I=4, H=5):
    p = random_problem("lstm", T, B, I, H, dtype)
    return p, (p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])


def test_unknown_cell():
    p, args = lstm_args()
    with pytest.raises(ValueError, match="cell must be one of"):
        F.forward("lstmm", *args)


@pytest.mark.parametrize("name,shape,match", [
    ("x", (3, 2), r"x must be a 3-D array"),
    ("x", (3, 2, 4, 1), r"x must be a 3-D array"),
    ("weight_ih", (20, 3), r"weight_ih must have shape .*\(20, 4\)"),
    ("weight_hh", (20, 4), r"weight_hh must have shape \(gates\*hidden_size, hidden_size\)"),
    ("weight_hh", (15, 5), r"weight_hh must have shape .* for cell 'lstm'"),
    ("bias_ih", (19,), r"bias_ih must have shape .*\(20,\)"),
    ("bias_hh", (20, 1), r"bias_hh must be a 1-D array"),
    ("h0", (3, 5), r"h0 must have shape \(batch, hidden_size\) = \(2, 5\)"),
    ("c0", (2, 4), r"c0 must have shape"),
])
def test_wrong_shapes_name_the_argument(name, shape, match):
    p, _ = lstm_args()
    p[name] = np.zeros(shape)
    with pytest.raises(ValueError, match=match):
        F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                  p["h0"], p["c0"])


@pytest.mark.parametrize("name", ["weight_ih", "weight_hh", "bias_ih", "h0", "c0"])
def test_mixed_dtypes_are_rejected(name):
    p, _ = lstm_args(np.float64)
    p[name] = p[name].astype(np.float32)
    with pytest.raises(TypeError, match=f"{name} has dtype float32 but x has dtype float64"):
        F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                  p["h0"], p["c0"])


@pytest.mark.parametrize("bad_dtype", [np.int64, np.int32, np.bool_, np.float16, np.complex128])
def test_non_float_dtypes_are_rejected(bad_dtype):
    p, args = lstm_args()
    with pytest.raises(TypeError, match="x must be a float32 or float64 array"):
        F.forward("lstm", p["x"].astype(bad_dtype), *args[1:])


def test_python_lists_of_ints_are_rejected_not_cast():
    with pytest.raises(TypeError, match="integer arrays are not converted"):
        F.forward("rnn_tanh", [[[1, 2]]], np.ones((1, 2)), np.ones((1, 1)))


def test_c0_for_non_lstm_and_d_c_n_for_non_lstm():
    p = random_problem("gru", 2, 1, 3, 4, np.float64)
    with pytest.raises(ValueError, match="c0 is only meaningful for cell 'lstm'"):
        F.forward("gru", p["x"], p["weight_ih"], p["weight_hh"], c0=np.zeros((1, 4)))
    res = F.forward("gru", p["x"], p["weight_ih"], p["weight_hh"], training=True)
    with pytest.raises(ValueError, match="d_c_n is only meaningful"):
        F.backward(res, d_c_n=np.zeros((1, 4)))


def test_zero_sizes_other_than_T_and_B_are_rejected():
    with pytest.raises(ValueError, match="input_size >= 1"):
        F.forward("rnn_tanh", np.zeros((2, 1, 0)), np.zeros((3, 0)), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="H >= 1"):
        F.forward("rnn_tanh", np.zeros((2, 1, 2)), np.zeros((0, 2)), np.zeros((0, 0)))


def test_backward_needs_training_forward():
    p, args = lstm_args()
    res = F.forward("lstm", *args)
    with pytest.raises(ValueError, match="training=True"):
        F.backward(res)
    with pytest.raises(TypeError, match="ForwardResult"):
        F.backward((res.output, res.h_n))


def test_backward_upstream_gradients_are_checked():
    p, args = lstm_args()
    res = F.forward("lstm", *args, training=True)
    with pytest.raises(ValueError, match=r"d_output must have shape \(T, batch, hidden_size\)"):
        F.backward(res, d_output=np.zeros((3, 2, 4)))
    with pytest.raises(TypeError, match="d_h_n has dtype float32"):
        F.backward(res, d_h_n=np.zeros((2, 5), np.float32))


def test_caller_output_array_is_checked(backend):
    p, args = lstm_args()
    with pytest.raises(ValueError, match="out must have shape"):
        F.forward("lstm", *args, out=np.empty((3, 2, 4)))
    with pytest.raises(TypeError, match="out must have dtype float64"):
        F.forward("lstm", *args, out=np.empty((3, 2, 5), np.float32))
    with pytest.raises(ValueError, match="out must be C-contiguous"):
        F.forward("lstm", *args, out=np.empty((5, 2, 3)).T)
    ro = np.empty((3, 2, 5))
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        F.forward("lstm", *args, out=ro)
    with pytest.raises(TypeError, match="out must be a numpy.ndarray"):
        F.forward("lstm", *args, out=[[0.0]])
    buf = np.empty((3, 2, 5))
    res = F.forward("lstm", *args, out=buf, backend=backend)
    assert res.output is buf


def test_output_may_not_overlap_an_input():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 5))
    with pytest.raises(ValueError, match="must not overlap the input x"):
        F.forward("rnn_tanh", x, rng.standard_normal((5, 5)), rng.standard_normal((5, 5)), out=x)


def test_non_contiguous_and_read_only_inputs_are_accepted(backend):
    p, args = lstm_args()
    ref = F.forward("lstm", *args, p["h0"], p["c0"], backend=backend)
    x_f = np.asfortranarray(p["x"])
    w = p["weight_hh"].copy()
    w.flags.writeable = False
    strided = np.zeros((3, 2, 8))
    strided[:, :, ::2] = p["x"]
    res1 = F.forward("lstm", x_f, p["weight_ih"], w, p["bias_ih"], p["bias_hh"], p["h0"],
                     p["c0"], backend=backend)
    res2 = F.forward("lstm", strided[:, :, ::2], p["weight_ih"], w, p["bias_ih"], p["bias_hh"],
                     p["h0"], p["c0"], backend=backend)
    np.testing.assert_array_equal(res1.output, ref.output)
    np.testing.assert_array_equal(res2.output, ref.output)


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_empty_time_returns_state_unchanged(cell, backend):
    p = random_problem(cell, 0, 2, 3, 4, np.float64)
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True)
    assert res.output.shape == (0, 2, 4)
    np.testing.assert_array_equal(res.h_n, p["h0"])
    grads = F.backward(res, d_h_n=p["d_h_n"], d_c_n=p["d_c_n"])
    np.testing.assert_array_equal(grads.h0, p["d_h_n"])
    assert grads.x.shape == (0, 2, 3)
    assert not grads.weight_hh.any() and not grads.bias_ih.any()
    if cell == "lstm":
        np.testing.assert_array_equal(res.c_n, p["c0"])
        np.testing.assert_array_equal(grads.c0, p["d_c_n"])


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_empty_batch(cell, backend):
    p = random_problem(cell, 3, 0, 2, 4, np.float32)
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], backend=backend, training=True)
    assert res.output.shape == (3, 0, 4) and res.h_n.shape == (0, 4)
    grads = F.backward(res)
    assert grads.weight_ih.shape == p["weight_ih"].shape and not grads.weight_ih.any()


@pytest.mark.parametrize("cell", fastrnn.CELLS)
def test_nan_propagates_instead_of_crashing(cell, backend):
    p = random_problem(cell, 4, 2, 3, 4, np.float64)
    p["x"][1, 0, 2] = np.nan
    res = F.forward(cell, p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    p["h0"], p["c0"], backend=backend, training=True)
    assert np.isfinite(res.output[0]).all()          # before the NaN: untouched
    assert np.isnan(res.output[1, 0]).any()          # the batch row that saw it
    assert np.isfinite(res.output[:, 1]).all()       # the other batch row: untouched
    grads = F.backward(res, p["d_output"])
    assert np.isnan(grads.weight_ih).any()


def test_step_checks_its_state(backend):
    p = random_problem("lstm", 1, 2, 3, 4, np.float64)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, input_size\)"):
        F.step("lstm", p["x"], p["weight_ih"], p["weight_hh"], backend=backend)
    with pytest.raises(ValueError, match=r"h must have shape \(batch, hidden_size\)"):
        F.step("lstm", p["x"][0], p["weight_ih"], p["weight_hh"], h=np.zeros((3, 4)))
    with pytest.raises(ValueError, match="c_out is only meaningful"):
        F.step("gru", np.zeros((2, 3)), np.zeros((12, 3)), np.zeros((12, 4)), c_out=np.zeros((2, 4)))


def test_finite_results_are_unaffected_by_large_inputs(backend):
    """Saturating gates must give saturated, finite values, not NaN/inf."""
    p = random_problem("lstm", 3, 2, 3, 4, np.float32)
    p["x"] *= 1e30
    res = F.forward("lstm", p["x"], p["weight_ih"], p["weight_hh"], p["bias_ih"],
                    p["bias_hh"], backend=backend)
    assert np.isfinite(res.output).all() and np.abs(res.output).max() <= 1

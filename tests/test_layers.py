"""The layer objects: initialisation, parameters, state dicts, step in place."""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F

from conftest import TOLERANCE, rel_err


@pytest.mark.parametrize("cls,gates", [(fastrnn.RNN, 1), (fastrnn.LSTM, 4), (fastrnn.GRU, 3)])
def test_parameter_shapes_and_torch_default_init(cls, gates, dtype):
    layer = cls(7, 16, dtype=dtype, seed=3)
    assert layer.weight_ih.shape == (gates * 16, 7) and layer.weight_hh.shape == (gates * 16, 16)
    assert layer.bias_ih.shape == layer.bias_hh.shape == (gates * 16,)
    bound = 1 / np.sqrt(16)
    for arr in layer.parameters().values():
        assert arr.dtype == dtype and np.abs(arr).max() <= bound
    # seeded: same seed, same parameters; different seed, different ones
    again = cls(7, 16, dtype=dtype, seed=3)
    other = cls(7, 16, dtype=dtype, seed=4)
    assert np.array_equal(layer.weight_hh, again.weight_hh)
    assert not np.array_equal(layer.weight_hh, other.weight_hh)


def test_bias_false_has_no_bias_and_no_bias_gradient(backend):
    layer = fastrnn.GRU(3, 4, bias=False, dtype=np.float64, backend=backend)
    assert set(layer.parameters()) == {"weight_ih", "weight_hh"}
    res = layer(np.ones((2, 1, 3)), training=True)
    grads = layer.backward(res, d_output=np.ones((2, 1, 4)))
    assert grads.bias_ih is None and grads.bias_hh is None


def test_layer_matches_functional(backend, dtype):
    layer = fastrnn.LSTM(5, 6, dtype=dtype, seed=1, backend=backend)
    x = np.random.default_rng(0).standard_normal((4, 3, 5)).astype(dtype)
    a = layer(x)
    b = F.forward("lstm", x, layer.weight_ih, layer.weight_hh, layer.bias_ih, layer.bias_hh,
                  backend=backend)
    np.testing.assert_array_equal(a.output, b.output)
    np.testing.assert_array_equal(a.c_n, b.c_n)


def test_state_dict_round_trip():
    a = fastrnn.RNN(3, 5, nonlinearity="relu", seed=0)
    sd = a.state_dict()
    assert set(sd) == {"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"}
    b = fastrnn.RNN(3, 5, nonlinearity="relu", seed=1)
    b.load_state_dict(sd)
    for k in sd:
        np.testing.assert_array_equal(b.state_dict()[k], sd[k])
    with pytest.raises(ValueError, match=r"weight_hh_l0 must have shape \(5, 5\)"):
        b.load_state_dict({**sd, "weight_hh_l0": np.zeros((5, 4))})
    with pytest.raises(KeyError, match="bias_hh_l0"):
        b.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l0"})


def test_constructor_errors():
    with pytest.raises(ValueError, match="nonlinearity must be"):
        fastrnn.RNN(3, 4, nonlinearity="gelu")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        fastrnn.LSTM(3, 4, dtype=np.float16)
    with pytest.raises(ValueError, match="hidden_size must be a positive integer, got 0"):
        fastrnn.GRU(3, 0)


@pytest.mark.parametrize("cls", [fastrnn.RNN, fastrnn.LSTM, fastrnn.GRU])
def test_step_in_place_equals_sequence(cls, backend, dtype):
    """step with h_out=h (and c_out=c) updates the state in place, and T such
    steps reproduce forward over the whole sequence."""
    layer = cls(4, 6, dtype=dtype, seed=2, backend=backend)
    x = np.random.default_rng(1).standard_normal((5, 3, 4)).astype(dtype)
    full = layer(x)
    h = np.zeros((3, 6), dtype)
    c = np.zeros((3, 6), dtype)
    for t in range(5):
        if cls is fastrnn.LSTM:
            h2, c2 = layer.step(x[t], h, c, h_out=h, c_out=c)
            assert h2 is h and c2 is c
        else:
            assert layer.step(x[t], h, h_out=h) is h
    assert rel_err(h, full.h_n) <= TOLERANCE[dtype]
    if cls is fastrnn.LSTM:
        assert rel_err(c, full.c_n) <= TOLERANCE[dtype]


def test_float32_stays_float32_everywhere(backend):
    layer = fastrnn.LSTM(3, 4, dtype=np.float32, backend=backend)
    res = layer(np.ones((2, 2, 3), np.float32), training=True)
    grads = layer.backward(res, np.ones((2, 2, 4), np.float32))
    arrays = [res.output, res.h_n, res.c_n, res.saved.workspace] + [
        getattr(grads, n) for n in ("x", "weight_ih", "weight_hh", "bias_ih", "bias_hh", "h0", "c0")]
    assert all(a.dtype == np.float32 for a in arrays)


def test_workspace_is_interchangeable_between_backends():
    """The saved workspace layout is part of the contract: a forward on one
    backend can be differentiated by another."""
    backends = fastrnn.available_backends()
    layer = fastrnn.GRU(3, 5, dtype=np.float64, seed=0)
    x = np.random.default_rng(2).standard_normal((6, 2, 3))
    ref = None
    for name in backends:
        res = F.forward("gru", x, *layer.parameters().values(), backend=name, training=True)
        for other in backends:
            g = F.backward(res, np.ones_like(res.output), backend=other)
            if ref is None:
                ref = g.weight_hh
            assert rel_err(g.weight_hh, ref) <= 1e-12

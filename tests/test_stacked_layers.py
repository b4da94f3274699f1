"""Stacked, bidirectional, batch-first and unbatched layers (fastrnn.RNN / LSTM / GRU).

What the torch vectors (test_layer_vectors.py) cannot show: gradients
against float64 central finite differences, dropout against a hand-applied
mask, the parameters' names and initialisation, stepping a stack, and the
errors for states, lengths and layouts that do not fit the layer.
"""
from __future__ import annotations

import numpy as np
import pytest

import fastrnn
from fastrnn import functional as F
from fastrnn.backends import available_backends

from conftest import rel_err

LAYERS = {"rnn_tanh": (fastrnn.RNN, {}), "rnn_sigmoid": (fastrnn.RNN, {"nonlinearity": "sigmoid"}),
          "lstm": (fastrnn.LSTM, {}), "gru": (fastrnn.GRU, {})}
LENGTH_BACKENDS = available_backends("lengths")


def make(cell, I, H, **kwargs):
    cls, extra = LAYERS[cell]
    return cls(I, H, **extra, **kwargs)


def loss_and_grads(layer, x, hx, lengths, weights, training=True):
    """L = <output, dO> + <h_n, dH> (+ <c_n, dC>) and, with training, its gradients."""
    r = layer(x, hx, lengths=lengths, training=training)
    dO, dH, dC = weights
    loss = np.sum(r.output * dO) + np.sum(r.h_n * dH)
    if r.c_n is not None:
        loss += np.sum(r.c_n * dC)
    g = layer.backward(r, dO, dH, dC if r.c_n is not None else None) if training else None
    return loss, r, g


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("backend", LENGTH_BACKENDS)
def test_finite_differences_two_layers_bidirectional_with_lengths(cell, backend):
    """Every gradient of a 2-layer bidirectional layer with rows of length T,
    0 and between, batch-first, against float64 central differences."""
    rng = np.random.default_rng(7)
    T, B, I, H = 5, 4, 3, 2
    layer = make(cell, I, H, num_layers=2, bidirectional=True, batch_first=True,
                 dtype=np.float64, seed=1, backend=backend)
    x = rng.standard_normal((B, T, I))
    lengths = np.array([2, 5, 0, 4])
    h0 = rng.standard_normal((4, B, H))
    hx = (h0, rng.standard_normal((4, B, H))) if cell == "lstm" else h0
    weights = (rng.standard_normal((B, T, 2 * H)), rng.standard_normal((4, B, H)),
               rng.standard_normal((4, B, H)))
    _, _, g = loss_and_grads(layer, x, hx, lengths, weights)

    def numeric(array, index, eps=1e-6):
        keep = array[index]
        array[index] = keep + eps
        up = loss_and_grads(layer, x, hx, lengths, weights, training=False)[0]
        array[index] = keep - eps
        down = loss_and_grads(layer, x, hx, lengths, weights, training=False)[0]
        array[index] = keep
        return (up - down) / (2 * eps)

    checks = [("x", x, g.x), ("h0", h0, g.h0)]
    if cell == "lstm":
        checks.append(("c0", hx[1], g.c0))
    checks += [(name, p, g.params[name]) for name, p in layer.named_parameters().items()]
    for name, array, grad in checks:
        assert grad.shape == array.shape, name
        for index in np.ndindex(array.shape):
            want = numeric(array, index)
            assert abs(grad[index] - want) <= 1e-7 * (1 + abs(want)), (
                f"{name}{index}: backward {grad[index]!r}, finite difference {want!r}")
    # a row of length 0: output 0, its state passes straight through, x gets no gradient
    assert np.all(g.x[2] == 0)
    np.testing.assert_array_equal(g.h0[:, 2], weights[1][:, 2])


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_dropout_is_a_hand_applied_mask(cell, backend):
    """With dropout p and training=True, layer l > 0 reads mask * output of
    layer l-1, mask in {0, 1/(1-p)} from the layer's seeded generator; the
    result and every gradient equal the layers run by hand with that mask."""
    rng = np.random.default_rng(3)
    T, B, I, H, p = 4, 3, 2, 5, 0.4
    layer = make(cell, I, H, num_layers=3, dropout=p, dtype=np.float64, seed=2,
                 backend=backend)
    x = rng.standard_normal((T, B, I))
    dO = rng.standard_normal((T, B, H))
    r = layer(x, training=True)
    g = layer.backward(r, dO)
    masks = r.dropout_masks
    assert masks[0] is None and all(m.shape == (T, B, H) for m in masks[1:])
    for m in masks[1:]:
        assert set(np.unique(m)) <= {0.0, 1 / (1 - p)}
    # by hand: one functional layer after another, the mask in between
    params = layer.named_parameters()

    def w(l):
        return [params[f"{n}_l{l}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]

    inputs, runs = [x], []
    for l in range(3):
        seq = inputs[-1] if l == 0 else inputs[-1] * masks[l]
        runs.append(F.forward(cell, seq, *w(l), backend=backend, training=True))
        inputs.append(runs[-1].output)
    np.testing.assert_array_equal(r.output, runs[-1].output)
    d = dO
    for l in (2, 1, 0):
        gl = F.backward(runs[l], d)
        np.testing.assert_array_equal(g.params[f"weight_hh_l{l}"], gl.weight_hh)
        d = gl.x * masks[l] if l > 0 else gl.x
    np.testing.assert_array_equal(g.x, d)
    # inference applies no dropout: it equals the same weights with dropout 0
    plain = make(cell, I, H, num_layers=3, dtype=np.float64, backend=backend)
    plain.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(layer(x).output, plain(x).output)


def test_dropout_masks_are_reproducible_and_drop_about_p():
    a = fastrnn.LSTM(4, 64, num_layers=2, dropout=0.3, seed=5, dtype=np.float64)
    b = fastrnn.LSTM(4, 64, num_layers=2, dropout=0.3, seed=5, dtype=np.float64)
    x = np.ones((50, 8, 4))
    ma, mb = a(x, training=True).dropout_masks[1], b(x, training=True).dropout_masks[1]
    np.testing.assert_array_equal(ma, mb)  # same seed, same masks
    assert not np.array_equal(ma, a(x, training=True).dropout_masks[1])  # the stream advances
    dropped = np.mean(ma == 0)  # 25,600 Bernoulli(0.3) draws: 0.3 +- 0.009 at 3 sigma
    assert abs(dropped - 0.3) < 0.012


def test_parameters_have_torch_names_order_shapes_and_init():
    layer = fastrnn.GRU(3, 4, num_layers=2, bidirectional=True, seed=0)
    names = [f"{k}_l{l}{s}" for l in range(2) for s in ("", "_reverse")
             for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    assert list(layer.named_parameters()) == names == list(layer.state_dict())
    shapes = {n: a.shape for n, a in layer.named_parameters().items()}
    assert shapes["weight_ih_l0"] == (12, 3) and shapes["weight_ih_l1_reverse"] == (12, 8)
    assert shapes["weight_hh_l1"] == (12, 4) and shapes["bias_hh_l0_reverse"] == (12,)
    for a in layer.named_parameters().values():
        assert a.dtype == np.float32 and np.abs(a).max() <= 0.5  # U(-1/sqrt(H), 1/sqrt(H))
    assert layer.weight_hh_l1_reverse is layer.named_parameters()["weight_hh_l1_reverse"]
    # the first layer is drawn as a one-layer layer's is: torch's order
    one = fastrnn.GRU(3, 4, seed=0)
    np.testing.assert_array_equal(one.weight_ih, layer.weight_ih_l0)
    with pytest.raises(AttributeError, match="weight_ih_l0"):
        layer.weight_ih
    with pytest.raises(ValueError, match="named_parameters"):
        layer.parameters()
    no_bias = fastrnn.LSTM(3, 4, num_layers=2, bias=False)
    assert list(no_bias.named_parameters()) == ["weight_ih_l0", "weight_hh_l0",
                                                "weight_ih_l1", "weight_hh_l1"]


def test_load_state_dict_is_strict_and_atomic():
    layer = fastrnn.LSTM(3, 4, num_layers=2, dtype=np.float64, seed=0)
    sd = {k: v + 1 for k, v in layer.state_dict().items()}
    before = layer.weight_hh_l1.copy()
    with pytest.raises(KeyError, match="bias_hh_l1"):
        layer.load_state_dict({k: v for k, v in sd.items() if k != "bias_hh_l1"})
    with pytest.raises(KeyError, match="weight_ih_l2"):
        layer.load_state_dict({**sd, "weight_ih_l2": np.zeros((16, 4))})
    with pytest.raises(ValueError, match=r"weight_ih_l1 must have shape \(16, 4\)"):
        layer.load_state_dict({**sd, "weight_ih_l1": np.zeros((16, 3))})
    np.testing.assert_array_equal(layer.weight_hh_l1, before)  # nothing half-loaded
    layer.load_state_dict({k: v.tolist() for k, v in sd.items()})  # array-likes
    np.testing.assert_array_equal(layer.weight_hh_l1, before + 1)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_shapes_in_every_layout(cell, backend):
    """Time-major, batch-first and unbatched calls give the same numbers in
    torch's shapes; gradients come back in the shapes passed."""
    rng = np.random.default_rng(0)
    T, B, I, H = 4, 3, 2, 5
    kw = dict(num_layers=2, bidirectional=True, dtype=np.float64, seed=4, backend=backend)
    tm, bf = make(cell, I, H, **kw), make(cell, I, H, batch_first=True, **kw)
    x = rng.standard_normal((T, B, I))
    a = tm(x, training=True)
    b = bf(x.transpose(1, 0, 2), training=True)
    assert a.output.shape == (T, B, 2 * H) and b.output.shape == (B, T, 2 * H)
    assert a.h_n.shape == b.h_n.shape == (4, B, H)
    np.testing.assert_allclose(b.output, a.output.transpose(1, 0, 2), rtol=0, atol=1e-15)
    dO = rng.standard_normal((T, B, 2 * H))
    ga, gb = tm.backward(a, dO), bf.backward(b, dO.transpose(1, 0, 2))
    assert ga.x.shape == (T, B, I) and gb.x.shape == (B, T, I) and ga.h0.shape == (4, B, H)
    np.testing.assert_allclose(gb.x, ga.x.transpose(1, 0, 2), rtol=0, atol=1e-14)
    # unbatched: the batch of one without its axis
    u = tm(x[:, 1], training=True)
    assert u.output.shape == (T, 2 * H) and u.h_n.shape == (4, H)
    np.testing.assert_allclose(u.output, a.output[:, 1], rtol=0, atol=1e-15)
    gu = tm.backward(u, dO[:, 1])
    assert gu.x.shape == (T, I) and gu.h0.shape == (4, H)
    if cell == "lstm":
        assert u.c_n.shape == (4, H) and gu.c0.shape == (4, H)


def test_one_layer_keeps_its_shapes_and_a_3d_state_gives_torchs():
    layer = fastrnn.LSTM(2, 3, dtype=np.float64, seed=0)
    x = np.random.default_rng(1).standard_normal((4, 2, 2))
    legacy = layer(x, np.zeros((2, 3)), np.zeros((2, 3)), training=True)
    assert legacy.h_n.shape == (2, 3) and type(legacy) is F.ForwardResult
    g = layer.backward(legacy, np.ones((4, 2, 3)))
    assert g.weight_hh is g.params["weight_hh_l0"] and g.h0.shape == (2, 3)
    torch_like = layer(x, (np.zeros((1, 2, 3)), np.zeros((1, 2, 3))))
    assert torch_like.h_n.shape == (1, 2, 3)
    np.testing.assert_array_equal(torch_like.h_n[0], legacy.h_n)
    np.testing.assert_array_equal(torch_like.output, legacy.output)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm"])
def test_stepping_a_stack_equals_its_forward(cell, backend):
    layer = make(cell, 3, 4, num_layers=3, dtype=np.float64, seed=1, backend=backend)
    x = np.random.default_rng(2).standard_normal((5, 2, 3))
    full = layer(x)
    h = np.zeros((3, 2, 4))
    c = np.zeros((3, 2, 4)) if cell == "lstm" else None
    for t in range(5):
        if cell == "lstm":
            h, c = layer.step(x[t], h, c)
        else:
            h = layer.step(x[t], h)
    assert rel_err(h, full.h_n) <= 1e-12
    if cell == "lstm":
        assert rel_err(c, full.c_n) <= 1e-12


def test_length_zero_passes_every_state_gradient_through(backend):
    if backend not in LENGTH_BACKENDS:
        pytest.skip(f"{backend} has no lengths")
    layer = fastrnn.LSTM(2, 3, num_layers=2, bidirectional=True, dtype=np.float64,
                         backend=backend, seed=0)
    rng = np.random.default_rng(0)
    h0, c0 = rng.standard_normal((4, 3, 3)), rng.standard_normal((4, 3, 3))
    r = layer(rng.standard_normal((4, 3, 2)), (h0, c0), lengths=[4, 0, 2], training=True)
    np.testing.assert_array_equal(r.output[:, 1], 0)
    np.testing.assert_array_equal(r.h_n[:, 1], h0[:, 1])
    np.testing.assert_array_equal(r.c_n[:, 1], c0[:, 1])
    dh, dc = rng.standard_normal((4, 3, 3)), rng.standard_normal((4, 3, 3))
    g = layer.backward(r, np.ones((4, 3, 6)), dh, dc)
    np.testing.assert_array_equal(g.h0[:, 1], dh[:, 1])
    np.testing.assert_array_equal(g.c0[:, 1], dc[:, 1])


# -- bad input: each a clear error naming the argument and what was expected --

def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match=r"dropout must be a finite number in \[0, 1\)"):
        fastrnn.GRU(3, 4, num_layers=2, dropout=1.0)
    with pytest.raises(ValueError, match="num_layers must be a positive integer"):
        fastrnn.LSTM(3, 4, num_layers=0)
    with pytest.raises(TypeError, match="bidirectional must be a bool"):
        fastrnn.LSTM(3, 4, bidirectional=1)
    with pytest.warns(UserWarning, match="num_layers=1"):
        fastrnn.GRU(3, 4, dropout=0.5)
    with pytest.warns(FutureWarning, match="nonlinearity= by keyword"):
        assert fastrnn.RNN(3, 4, "relu").cell == "rnn_relu"


@pytest.mark.parametrize("call, error, words", [
    (lambda l, x: l(x, np.zeros((2, 3, 4))), ValueError,
     r"h0 must have shape \(num_layers\*num_directions, batch, hidden_size\) = \(4, 3, 4\)"),
    (lambda l, x: l(x, np.zeros((4, 3, 4)), np.zeros((4, 2, 4))), ValueError,
     r"c0 must have shape .* = \(4, 3, 4\)"),
    (lambda l, x: l(x, np.zeros((4, 4))), ValueError, r"h0 must be a 3-D array"),
    (lambda l, x: l(x, (np.zeros((4, 3, 4)),)), ValueError, r"pair \(h0, c0\)"),
    (lambda l, x: l(x.astype(np.float32)), TypeError, "dtype float32 but the layer has"),
    (lambda l, x: l(x[:, :, :2]), ValueError, "input_size = 5"),
    (lambda l, x: l(x, lengths=[1, 2]), ValueError, r"lengths must have shape \(batch,\) = \(3,\)"),
    (lambda l, x: l(x, lengths=[1, 7, 2]), ValueError, r"lengths must be in \[0, T\] = \[0, 6\]"),
    (lambda l, x: l(x, lengths=[1.0, 2.0, 3.0]), TypeError, "never rounded"),
    (lambda l, x: l(x, out=np.zeros((6, 3, 8))), ValueError, "out= is only taken"),
    (lambda l, x: l.backward(l(x)), ValueError, r"training=True"),
    (lambda l, x: l.backward(l(x, training=True), np.zeros((3, 6, 8))), ValueError,
     r"d_output must have shape \(T, batch, D\*hidden_size\) = \(6, 3, 8\)"),
    (lambda l, x: l.backward(l(x, training=True), None, np.zeros((2, 3, 4))), ValueError,
     r"d_h_n must have shape .* = \(4, 3, 4\)"),
    (lambda l, x: l.step(x[0]), ValueError, "bidirectional layer cannot be stepped"),
    (lambda l, x: l.stream(), ValueError, "one-layer, one-direction"),
])
def test_bad_calls_are_clear_errors(call, error, words):
    layer = fastrnn.LSTM(5, 4, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.zeros((6, 3, 5))
    with pytest.raises(error, match=words):
        call(layer, x)


def test_batch_first_mismatches_name_the_layout():
    layer = fastrnn.GRU(5, 4, num_layers=2, batch_first=True, dtype=np.float64)
    x = np.zeros((3, 6, 5))  # (batch, T, input_size)
    with pytest.raises(ValueError, match=r"lengths must have shape \(batch,\) = \(3,\).*batch_first"):
        layer(x, lengths=[1, 2, 3, 4, 5, 6])
    r = layer(x, training=True)
    with pytest.raises(ValueError, match=r"d_output must have shape \(batch, T, D\*hidden_size\) "
                                         r"\(batch_first\) = \(3, 6, 4\)"):
        layer.backward(r, np.zeros((6, 3, 4)))
    with pytest.raises(ValueError, match="result must come from this layer"):
        fastrnn.GRU(5, 4, num_layers=3, dtype=np.float64).backward(r)
